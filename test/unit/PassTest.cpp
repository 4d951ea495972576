//===- PassTest.cpp - Pipeline parser, options, pass manager -------------===//
#include "wopt/Pass/PassManager.h"
#include "wopt/Pass/PassRegistry.h"
#include "gtest/gtest.h"

using namespace wopt;

namespace {

/// A pass with one option of every type, to drive the parser.
class ProbePass : public Pass {
public:
  using Pass::Pass;
  llvm::Error run(Checkpoint &) override {
    ++Runs;
    return llvm::Error::success();
  }
  Option<std::string> Str{*this, "str", "a string", "dflt"};
  Option<int64_t> Int{*this, "int", "an int", 7};
  Option<bool> Flag{*this, "flag", "a bool"};
  ListOption List{*this, "list", "a list"};
  Statistic Runs{*this, "runs", "times run"};
};

/// Options checked at parse time: an enumeration, a bounded int and a
/// required list.
class StrictPass : public Pass {
public:
  using Pass::Pass;
  llvm::Error run(Checkpoint &) override { return llvm::Error::success(); }
  EnumOption Mode{*this, "mode", "a mode", {"fast", "exact"}, "fast"};
  Option<int64_t> Count{*this, "count", "a count", 1, /*Min=*/1};
  ListOption Items{*this, "items", "what to do", Presence::Required};
};

class FailingPass : public Pass {
public:
  using Pass::Pass;
  llvm::Error run(Checkpoint &) override {
    return llvm::createStringError("it broke");
  }
};

class PipelineTest : public ::testing::Test {
protected:
  void SetUp() override {
    R.registerPass({"probe", "probe pass", [](const PassInfo &I) {
                      return std::make_unique<ProbePass>(I);
                    }});
    R.registerPass({"fail", "failing pass", [](const PassInfo &I) {
                      return std::make_unique<FailingPass>(I);
                    }});
    R.registerPass({"strict", "strict pass", [](const PassInfo &I) {
                      return std::make_unique<StrictPass>(I);
                    }});
    R.registerPipeline({"two-probes", "probe,probe{int=2}", "two probes", ""});
    R.registerPipelineFile("filed",
                           "// Two passes from a file.\n"
                           "//\n// More text.\nprobe{int=4}\nfail\n",
                           "filed.wpipe");
  }

  /// Parses Text; returns the error message, "" on success.
  std::string parse(llvm::StringRef Text) {
    PM = PassManager();
    if (llvm::Error E = R.parsePipeline(Text, PM))
      return llvm::toString(std::move(E));
    return "";
  }

  /// Parses Text as a .wpipe file named r.wpipe.
  std::string parseFile(llvm::StringRef Text) {
    PM = PassManager();
    if (llvm::Error E = R.parsePipelineFile(Text, "r.wpipe", PM))
      return llvm::toString(std::move(E));
    return "";
  }

  std::string printedFile() {
    std::string S;
    llvm::raw_string_ostream OS(S);
    PM.printAsPipelineFile(OS, "head");
    return S;
  }

  ProbePass &probe(size_t I) {
    return *static_cast<ProbePass *>(PM.passes()[I].get());
  }

  std::string printed() {
    std::string S;
    llvm::raw_string_ostream OS(S);
    PM.printAsTextualPipeline(OS);
    return S;
  }

  PassRegistry R;
  PassManager PM;
};

TEST_F(PipelineTest, EmptyTextIsNoPasses) {
  EXPECT_EQ(parse(""), "");
  EXPECT_TRUE(PM.empty());
  EXPECT_EQ(parse("   "), "");
  EXPECT_TRUE(PM.empty());
}

TEST_F(PipelineTest, OptionsOfEveryType) {
  ASSERT_EQ(parse("probe{str=abc int=-3 flag list=a,b}"), "");
  ASSERT_EQ(PM.passes().size(), 1u);
  EXPECT_EQ(*probe(0).Str, "abc");
  EXPECT_EQ(*probe(0).Int, -3);
  EXPECT_TRUE(probe(0).Flag);
  EXPECT_EQ(*probe(0).List, (std::vector<std::string>{"a", "b"}));
}

TEST_F(PipelineTest, DefaultsWhenNotSet) {
  ASSERT_EQ(parse("probe"), "");
  EXPECT_EQ(*probe(0).Str, "dflt");
  EXPECT_EQ(*probe(0).Int, 7);
  EXPECT_FALSE(probe(0).Flag);
  EXPECT_TRUE(probe(0).List.empty());
  EXPECT_EQ(printed(), "probe");
}

TEST_F(PipelineTest, QuotedAndBracedValues) {
  ASSERT_EQ(parse("probe{str='a b,c}' list=\"x, y\"}"), "");
  EXPECT_EQ(*probe(0).Str, "a b,c}");
  EXPECT_EQ(*probe(0).List, std::vector<std::string>{"x, y"});
  ASSERT_EQ(parse("probe{str={x {y} z}}"), "");
  EXPECT_EQ(*probe(0).Str, "x {y} z");
  ASSERT_EQ(parse("probe{list={a,b}}"), "");
  EXPECT_EQ(*probe(0).List, (std::vector<std::string>{"a", "b"}));
}

TEST_F(PipelineTest, RegexLikeBareValues) {
  // Brackets nest, so commas and braces inside a regex stay in one item.
  ASSERT_EQ(parse("probe{list=a\\.(\\d{1,2})=>b$1,c=>d}"), "");
  EXPECT_EQ(*probe(0).List,
            (std::vector<std::string>{"a\\.(\\d{1,2})=>b$1", "c=>d"}));
}

TEST_F(PipelineTest, RepeatedListOptionAppends) {
  ASSERT_EQ(parse("probe{list=a list=b,c}"), "");
  EXPECT_EQ(*probe(0).List, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(PipelineTest, BoolSpellings) {
  ASSERT_EQ(parse("probe{flag=false},probe{flag=1},probe{flag=true}"), "");
  EXPECT_FALSE(probe(0).Flag);
  EXPECT_TRUE(probe(1).Flag);
  EXPECT_TRUE(probe(2).Flag);
}

TEST_F(PipelineTest, PrintRoundTrips) {
  ASSERT_EQ(parse("probe{str='a b' int=3 list=x,'y z'},fail"), "");
  std::string Text = printed();
  EXPECT_EQ(Text, "probe{str='a b' int=3 list=x,'y z'},fail");
  ASSERT_EQ(parse(Text), "");
  EXPECT_EQ(printed(), Text);
}

TEST_F(PipelineTest, NamedPipelineExpands) {
  ASSERT_EQ(parse("two-probes,fail"), "");
  ASSERT_EQ(PM.passes().size(), 3u);
  EXPECT_EQ(*probe(1).Int, 2);
  EXPECT_EQ(PM.passes()[2]->argument(), "fail");
}

TEST_F(PipelineTest, UnknownPassHasCaretAndSuggestion) {
  EXPECT_EQ(parse("probe,prube"), "unknown pass or pipeline 'prube'\n"
                                  "probe,prube\n"
                                  "      ^\n"
                                  "note: did you mean 'probe'?");
}

TEST_F(PipelineTest, UnknownOption) {
  std::string E = parse("probe{bogus=1}");
  EXPECT_EQ(E.substr(0, E.find("\nnote")),
            "unknown option 'bogus' for pass 'probe'\n"
            "probe{bogus=1}\n"
            "      ^");
}

TEST_F(PipelineTest, BadValueCaretAtValue) {
  EXPECT_EQ(parse("probe{int=x1}"),
            "bad value for option 'int' of pass 'probe': expected an "
            "integer, got 'x1'\n"
            "probe{int=x1}\n"
            "          ^");
  EXPECT_NE(parse("probe{flag=maybe}").find("expected true, false"),
            std::string::npos);
}

TEST_F(PipelineTest, MissingBrace) {
  EXPECT_EQ(parse("fail,probe{int=1"),
            "missing '}' to close the options of 'probe'\n"
            "fail,probe{int=1\n"
            "          ^");
}

TEST_F(PipelineTest, EmptyElements) {
  EXPECT_EQ(parse("probe,,fail"), "empty pipeline element\n"
                                  "probe,,fail\n"
                                  "      ^");
  EXPECT_EQ(parse("probe,"), "empty pipeline element\n"
                             "probe,\n"
                             "      ^");
  EXPECT_EQ(parse(",probe"), "empty pipeline element\n"
                             ",probe\n"
                             "^");
}

TEST_F(PipelineTest, GarbageBetweenElements) {
  EXPECT_EQ(parse("probe fail"),
            "expected ',' or the end of the pipeline, got 'f'\n"
            "probe fail\n"
            "      ^");
}

TEST_F(PipelineTest, UnterminatedQuote) {
  EXPECT_EQ(parse("probe{str='abc}"), "unterminated quote in the value of "
                                      "'str'\n"
                                      "probe{str='abc}\n"
                                      "          ^");
}

TEST_F(PipelineTest, EnumIntAndRequiredOptionsAtParseTime) {
  ASSERT_EQ(parse("strict{items=a mode=exact count=3}"), "");
  EXPECT_EQ(parse("strict{items=a mode=exakt}"),
            "bad value for option 'mode' of pass 'strict': expected one of "
            "fast, exact, got 'exakt' (did you mean 'exact'?)\n"
            "strict{items=a mode=exakt}\n"
            "                    ^");
  EXPECT_EQ(parse("strict{items=a count=0}"),
            "bad value for option 'count' of pass 'strict': expected an "
            "integer >= 1, got '0'\n"
            "strict{items=a count=0}\n"
            "                     ^");
  EXPECT_EQ(parse("probe,strict{mode=fast}"),
            "pass 'strict' needs option 'items' (list)\n"
            "probe,strict{mode=fast}\n"
            "      ^\n"
            "note: strict{items=...}: what to do");
}

TEST_F(PipelineTest, PipelineFileOnePassPerLine) {
  ASSERT_EQ(parseFile("// a recipe\n"
                      "probe{str=a//b}   // a//b is a value, this a comment\n"
                      "\n"
                      "  probe{\n"
                      "    int=5      // one option per line\n"
                      "    list=x,y\n"
                      "    list='z // not a comment'\n"
                      "  },\n"
                      "fail\n"),
            "");
  ASSERT_EQ(PM.passes().size(), 3u);
  EXPECT_EQ(*probe(0).Str, "a//b");
  EXPECT_EQ(*probe(1).Int, 5);
  EXPECT_EQ(*probe(1).List,
            (std::vector<std::string>{"x", "y", "z // not a comment"}));
  EXPECT_EQ(PM.passes()[2]->argument(), "fail");
}

TEST_F(PipelineTest, PipelineFileErrorsHaveLineAndColumn) {
  EXPECT_EQ(parseFile("probe\n// comment\n  probe{int=x}\n"),
            "r.wpipe:3:13: bad value for option 'int' of pass 'probe': "
            "expected an integer, got 'x'\n"
            "  probe{int=x}\n"
            "            ^");
  EXPECT_EQ(parseFile("probe fail\n"),
            "r.wpipe:1:7: expected a new line or ',' after a pass, got 'f'\n"
            "probe fail\n"
            "      ^\n"
            "note: a .wpipe file has one pass per line");
  EXPECT_EQ(parseFile("probe\nprobe{int=1\n"),
            "r.wpipe:2:6: missing '}' to close the options of 'probe'\n"
            "probe{int=1\n"
            "     ^");
  EXPECT_EQ(parseFile("probe,\n"), "r.wpipe:2:1: empty pipeline element\n"
                                   "\n"
                                   "^");
  EXPECT_EQ(parseFile("// only comments\n\n"), "");
  EXPECT_TRUE(PM.empty());
}

TEST_F(PipelineTest, PipelineFileSummaryAndNamedUse) {
  const PipelineInfo *P = R.lookupPipeline("filed");
  ASSERT_TRUE(P);
  EXPECT_EQ(P->Summary, "Two passes from a file.");
  EXPECT_EQ(pipelineFileSummary("// a\n// b\n//\n// c\nx"), "a b");
  EXPECT_EQ(pipelineFileSummary("x\n// a"), "");
  ASSERT_EQ(parse("probe,filed,filed"), "");
  ASSERT_EQ(PM.passes().size(), 5u);
  EXPECT_EQ(*probe(1).Int, 4);
  EXPECT_EQ(PM.passes()[1]->pipelineName(), "filed");
  EXPECT_TRUE(PM.passes()[0]->pipelineName().empty());
}

TEST_F(PipelineTest, PipelineFileRoundTrips) {
  ASSERT_EQ(parse("probe{list=a,'b c' str=x},filed,filed,two-probes"), "");
  std::string File = printedFile();
  EXPECT_EQ(File, "// head\n"
                  "probe{str=x list=a,'b c'}\n"
                  "filed\n"
                  "//   probe{int=4}\n"
                  "//   fail\n"
                  "filed\n"
                  "//   probe{int=4}\n"
                  "//   fail\n"
                  "two-probes\n"
                  "//   probe\n"
                  "//   probe{int=2}\n");
  std::string Line = printed();
  ASSERT_EQ(parseFile(File), "");
  EXPECT_EQ(printed(), Line);
}

TEST_F(PipelineTest, LongEntriesSpanLines) {
  std::string Long(60, 'x');
  ASSERT_EQ(parse("probe{str=" + Long + " list=" + Long + ",'b c'}"), "");
  std::string File = printedFile();
  EXPECT_EQ(File, "// head\nprobe{\n  str=" + Long + "\n  list=" + Long +
                      "\n  list='b c'\n}\n");
  std::string Line = printed();
  ASSERT_EQ(parseFile(File), "");
  EXPECT_EQ(printed(), Line);
}

TEST_F(PipelineTest, FailedParseAddsNothing) {
  EXPECT_NE(parse("probe,nope"), "");
  EXPECT_TRUE(PM.empty());
}

TEST_F(PipelineTest, PipelineRejectsOtherOptions) {
  std::string E = parse("two-probes{int=1}");
  EXPECT_EQ(E.substr(0, E.find("\nnote")),
            "unknown option 'int' for pipeline 'two-probes'\n"
            "two-probes{int=1}\n"
            "           ^");
}

TEST_F(PipelineTest, ManifestNeedsVerifyPass) {
  std::string E = parse("two-probes{manifest=m.json}");
  EXPECT_NE(E.find("needs the verify-against-manifest pass"), std::string::npos)
      << E;
}

TEST_F(PipelineTest, ManifestAppendsVerifyPass) {
  R.registerPass({"verify-against-manifest", "verify", [](const PassInfo &I) {
                    return std::make_unique<ProbePass>(I);
                  }});
  // ProbePass has no `manifest` option, so forwarding reports it — which
  // proves the forwarded options reach the appended pass.
  std::string E = parse("two-probes{manifest=m.json}");
  EXPECT_NE(E.find("unknown option 'manifest' for pass "
                   "'verify-against-manifest'"),
            std::string::npos)
      << E;
}

TEST_F(PipelineTest, RunPrefixesErrorsWithPassName) {
  ASSERT_EQ(parse("probe,fail,probe"), "");
  Checkpoint C;
  llvm::Error E = PM.run(C);
  EXPECT_EQ(llvm::toString(std::move(E)), "pass 'fail': it broke");
  EXPECT_EQ(probe(0).Runs.value(), 1u);
  EXPECT_EQ(probe(2).Runs.value(), 0u);
}

TEST_F(PipelineTest, StatisticsReport) {
  ASSERT_EQ(parse("probe"), "");
  InstrumentationOptions O;
  O.PassStatistics = true;
  PM.setInstrumentation(O);
  std::string S;
  llvm::raw_string_ostream OS(S);
  PM.setOutputStream(OS);
  Checkpoint C;
  ASSERT_FALSE(llvm::errorToBool(PM.run(C)));
  EXPECT_NE(S.find("'probe'\n  (S) 1 runs - times run"), std::string::npos)
      << S;
}

TEST(OptionTest, SetOptionDirectly) {
  PassInfo Info{"probe", "", nullptr};
  ProbePass P(Info);
  EXPECT_FALSE(llvm::errorToBool(P.setOption("int", "0x10")));
  EXPECT_EQ(*P.Int, 16);
  EXPECT_EQ(llvm::toString(P.setOption("nope", "1")),
            "unknown option 'nope' for pass 'probe'");
  EXPECT_TRUE(P.Int.wasSet());
  EXPECT_FALSE(P.Str.wasSet());
}

TEST(OptionTest, NeedsStateDictNamesRootKeys) {
  struct NeedsSD : Pass {
    using Pass::Pass;
    llvm::Error run(Checkpoint &C) override { return needsStateDict(C); }
  };
  PassInfo Info{"probe", "", nullptr};
  NeedsSD P(Info);
  auto Root = std::make_shared<DictValue>();
  Root->set("teacher", std::make_shared<DictValue>());
  Root->set("iteration", makeInt(3));
  Checkpoint C(Root);
  EXPECT_EQ(llvm::toString(P.run(C)),
            "pass 'probe' needs a state dict at the root; run unwrap first\n"
            "note: the root is a dict with keys 'teacher', 'iteration'");
}

} // namespace
