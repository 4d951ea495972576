//===- WoptMain.cpp - The driver's logic as a library --------------------===//
//
// The command line is parsed here by hand, from a table built inside
// woptMain: llvm::cl would register options process-wide and its --help
// would show every option the LLVM dylib carries, while this driver's help
// has to teach the pipeline syntax and list the registered passes.
//
//===----------------------------------------------------------------------===//
#include "wopt/Tools/WoptMain.h"
#include "wopt/IR/TextIR.h"
#include "wopt/IR/Verifier.h"
#include "wopt/Manifest/Diff.h"
#include "wopt/Manifest/Manifest.h"
#include "wopt/Manifest/Target.h"
#include "wopt/Pass/PassManager.h"
#include "wopt/Serialization/FlatBuffers.h"
#include "wopt/Serialization/Output.h"
#include "wopt/Serialization/Safetensors.h"
#include "wopt/Serialization/Serialization.h"
#include "wopt/Serialization/Shards.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Synth/Synthesize.h"
#include "wopt/Version.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"
#include <csignal>
#include <functional>

using namespace wopt;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

namespace {

constexpr StringRef Usage = "wopt [options] <input>... [-o <output>]";
constexpr uint64_t DefaultPrintDataLimit = 4096;

struct DriverOptions {
  std::string Input;
  std::optional<std::string> Output;
  std::string Pipeline;
  /// -pass-pipeline was given (an empty one runs nothing; none with a
  /// -target asks synthesis for one).
  bool PipelineGiven = false;
  /// -pass-pipeline=@FILE: the file's name; Pipeline holds its contents.
  std::string PipelineFile;
  std::optional<std::string> OutputPipeline;
  /// -target=FILE and what it read.
  std::optional<std::string> TargetPath;
  std::shared_ptr<const Target> TheTarget;
  std::optional<std::string> Emit;
  bool PrintData = false;
  std::optional<uint64_t> PrintDataLimit;
  bool PrintProvenance = false;
  bool SplitInputFile = false;
  bool Remarks = false;
  bool WarningsAsErrors = false;
  bool DumpPipeline = false;
  bool VerifyInputCRC = false;
  /// Shard sets: more inputs joined into one state dict, and the shard
  /// output options (the output is a folder or an .index.json).
  std::vector<std::string> MoreInputs;
  std::optional<std::string> MaxShardSize;
  std::optional<unsigned> Jobs;
  std::vector<unsigned> WriteShards;
  bool WriteIndex = false;
  bool PrintShardCount = false;
  /// Resolved from -o and the options above before the input is read.
  std::optional<ShardTarget> ShardOut;
  ShardExportOptions ShardOpts;
  InstrumentationOptions Instr;
  bool Help = false;
  bool Version = false;
  std::optional<std::string> HelpPass;
};

/// One command-line option. Flags take no value; the others take one, as
/// `-name=value` or `-name value`.
struct OptionSpec {
  StringRef Name;
  StringRef MetaVar; ///< empty for a flag
  StringRef Group;
  StringRef Help;
  std::function<Error(DriverOptions &, StringRef)> Apply;
};

Error usageError(const llvm::Twine &Msg) {
  return llvm::createStringError(Msg.str());
}

/// Adds comma-separated pass names to Set.
void addNames(llvm::StringSet<> &Set, StringRef List) {
  llvm::SmallVector<StringRef, 4> Names;
  List.split(Names, ',', -1, /*KeepEmpty=*/false);
  for (StringRef N : Names)
    Set.insert(N.trim());
}

/// "1,3,5-8" -> {1, 3, 5, 6, 7, 8}.
Error parseShardList(StringRef List, std::vector<unsigned> &Out) {
  llvm::SmallVector<StringRef, 8> Items;
  List.split(Items, ',', -1, /*KeepEmpty=*/false);
  auto Bad = [&] {
    return usageError("-write-shards expects shard numbers from 1 and ranges "
                      "(1,3,5-8), got '" +
                      List + "'");
  };
  if (Items.empty())
    return Bad();
  for (StringRef Item : Items) {
    auto [A, B] = Item.trim().split('-');
    unsigned Lo, Hi;
    if (A.getAsInteger(10, Lo) || Lo == 0)
      return Bad();
    Hi = Lo;
    if (Item.contains('-') && (B.getAsInteger(10, Hi) || Hi < Lo))
      return Bad();
    if (Hi - Lo > 1000000)
      return Bad();
    for (unsigned N = Lo; N <= Hi; ++N)
      Out.push_back(N);
  }
  return Error::success();
}

std::vector<OptionSpec> buildOptionTable() {
  using O = DriverOptions &;
  auto Flag = [](bool DriverOptions::*M) {
    return [M](O D, StringRef) {
      D.*M = true;
      return Error::success();
    };
  };
  auto Text = [](std::optional<std::string> DriverOptions::*M) {
    return [M](O D, StringRef V) {
      D.*M = V.str();
      return Error::success();
    };
  };
  auto InstrFlag = [](bool InstrumentationOptions::*M) {
    return [M](O D, StringRef) {
      D.Instr.*M = true;
      return Error::success();
    };
  };
  return {
      {"o", "file", "Input and output",
       "Write the result to <file> ('-' for stdout), atomically",
       Text(&DriverOptions::Output)},
      {"emit", "kind", "Input and output",
       "Output format: text, torch, safetensors, flatbuffers, summary, "
       "manifest, diff (values against a -target checkpoint; exit 1 when "
       "anything differs) (default: from the -o extension, else text)",
       Text(&DriverOptions::Emit)},
      {"verify-input-crc", "", "Input and output",
       "Check the CRC-32 of every zip record whose data the output copies "
       "(otherwise it is reused unchecked); exit 2 naming a corrupt record",
       Flag(&DriverOptions::VerifyInputCRC)},
      {"split-input-file", "", "Input and output",
       "Split a .wir input at '// -----' lines and process each part on its "
       "own",
       Flag(&DriverOptions::SplitInputFile)},
      {"max-shard-size", "size", "Shards",
       "Largest shard of a set written to -o DIR/ or -o NAME.index.json, "
       "e.g. 5GB (default), 500MB, 2GiB",
       Text(&DriverOptions::MaxShardSize)},
      {"j", "N", "Shards", "Shards written at once (default: one per core)",
       [](O D, StringRef V) -> Error {
         unsigned N;
         if (V.getAsInteger(10, N) || N == 0)
           return usageError("-j expects a positive number of jobs, got '" + V +
                             "'");
         D.Jobs = N;
         return Error::success();
       }},
      {"write-shards", "list", "Shards",
       "Write only these shards of the set (1-based, e.g. 1,3,5-8), not the "
       "index: for one task per shard",
       [](O D, StringRef V) { return parseShardList(V, D.WriteShards); }},
      {"write-index", "", "Shards",
       "Write only the index of the set (with -write-shards: those shards "
       "and the index)",
       Flag(&DriverOptions::WriteIndex)},
      {"print-shard-count", "", "Shards",
       "Print how many shards the set will have, write nothing",
       Flag(&DriverOptions::PrintShardCount)},
      {"pass-pipeline", "pipeline", "Pipeline",
       "The passes to run, e.g. 'unwrap{key=teacher},rename{rule=a=>b}', or "
       "@FILE: a .wpipe file, one pass per line, // comments, or 'auto' "
       "(with -target: find the pipeline; auto{allow-missing=...} passes "
       "options to the final verification)",
       [](O D, StringRef V) {
         D.Pipeline = V.str();
         D.PipelineGiven = true;
         return Error::success();
       }},
      {"o-pipeline", "file", "Pipeline",
       "Write the pipeline that ran to <file> as a .wpipe recipe "
       "(-pass-pipeline=@<file> runs it again)",
       Text(&DriverOptions::OutputPipeline)},
      {"target", "file", "Pipeline",
       "What the result must match: a manifest, or any checkpoint of the "
       "model (its state dict). Passes keep the keys it expects, the "
       "pipeline ends in a verification (exit 1 on a mismatch); without -o, "
       "only the verdict is printed. Without -pass-pipeline, wopt finds the "
       "pipeline itself and prints it",
       Text(&DriverOptions::TargetPath)},
      {"dump-pass-pipeline", "", "Pipeline",
       "Print the parsed pipeline to stderr before running it",
       Flag(&DriverOptions::DumpPipeline)},
      {"print-data", "", "Printing",
       "Print tensor data inline for storages up to -print-data-limit bytes",
       Flag(&DriverOptions::PrintData)},
      {"print-data-limit", "N", "Printing",
       "Largest storage, in bytes, whose data is printed (implies "
       "-print-data; default 4096)",
       [](O D, StringRef V) -> Error {
         uint64_t N;
         if (V.getAsInteger(10, N))
           return usageError("-print-data-limit expects a number of bytes, "
                             "got '" +
                             V + "'");
         D.PrintDataLimit = N;
         return Error::success();
       }},
      {"print-provenance", "", "Printing",
       "Print each tensor's origin and rename history",
       Flag(&DriverOptions::PrintProvenance)},
      {"remarks", "", "Printing", "Print the remarks passes make to stderr",
       Flag(&DriverOptions::Remarks)},
      {"Werror", "", "Printing",
       "Treat warnings (an option that matched nothing, ...) as errors: exit "
       "2, no output",
       Flag(&DriverOptions::WarningsAsErrors)},
      {"print-ir-before", "pass", "Instrumentation",
       "Print the IR before each run of these passes (comma-separated)",
       [](O D, StringRef V) {
         addNames(D.Instr.PrintBefore, V);
         return Error::success();
       }},
      {"print-ir-after", "pass", "Instrumentation",
       "Print the IR after each run of these passes (comma-separated)",
       [](O D, StringRef V) {
         addNames(D.Instr.PrintAfter, V);
         return Error::success();
       }},
      {"print-ir-after-all", "", "Instrumentation",
       "Print the IR after every pass",
       InstrFlag(&InstrumentationOptions::PrintAfterAll)},
      {"print-ir-after-change", "", "Instrumentation",
       "Print the IR after every pass that changed it",
       InstrFlag(&InstrumentationOptions::PrintAfterChange)},
      {"time-passes", "", "Instrumentation",
       "Report the wall time of each pass and the total",
       InstrFlag(&InstrumentationOptions::TimePasses)},
      {"pass-statistics", "", "Instrumentation",
       "Report the statistics of each pass",
       InstrFlag(&InstrumentationOptions::PassStatistics)},
      {"verify-each", "", "Instrumentation", "Verify the IR after every pass",
       InstrFlag(&InstrumentationOptions::VerifyEach)},
      {"print-rename-table", "", "Instrumentation",
       "Print old -> new for every tensor the pipeline renamed",
       InstrFlag(&InstrumentationOptions::PrintRenameTable)},
      {"help", "", "Help", "Print this help", Flag(&DriverOptions::Help)},
      {"version", "", "Help", "Print wopt's version",
       Flag(&DriverOptions::Version)},
      {"help-pass", "name", "Help",
       "Describe a pass (its options and statistics) or a pipeline",
       Text(&DriverOptions::HelpPass)},
  };
}

const OptionSpec *findSpec(llvm::ArrayRef<OptionSpec> Table, StringRef Name) {
  for (const OptionSpec &S : Table)
    if (S.Name == Name || (Name == "h" && S.Name == "help"))
      return &S;
  return nullptr;
}

std::string suggestOption(llvm::ArrayRef<OptionSpec> Table, StringRef Name) {
  StringRef Best;
  unsigned BestDist = 4;
  for (const OptionSpec &S : Table) {
    unsigned D = Name.edit_distance(S.Name, true, BestDist);
    if (D < BestDist) {
      BestDist = D;
      Best = S.Name;
    }
  }
  return Best.empty() ? "" : ("\nnote: did you mean '-" + Best + "'?").str();
}

Error parseArgs(int Argc, char **Argv, llvm::ArrayRef<OptionSpec> Table,
                DriverOptions &D) {
  bool OnlyPositional = false;
  std::vector<StringRef> Positional;
  for (int I = 1; I < Argc; ++I) {
    StringRef Arg = Argv[I];
    if (OnlyPositional || Arg == "-" || !Arg.starts_with("-")) {
      Positional.push_back(Arg);
      continue;
    }
    if (Arg == "--") {
      OnlyPositional = true;
      continue;
    }
    StringRef Body = Arg.drop_front(Arg.starts_with("--") ? 2 : 1);
    auto [Name, Value] = Body.split('=');
    bool HasValue = Body.contains('=');
    const OptionSpec *S = findSpec(Table, Name);
    if (!S)
      return usageError("unknown option '" + Arg + "'" +
                        suggestOption(Table, Name) +
                        "\nnote: see 'wopt --help'");
    if (S->MetaVar.empty() && HasValue)
      return usageError("option '-" + Name + "' takes no value");
    if (!S->MetaVar.empty() && !HasValue) {
      if (I + 1 == Argc)
        return usageError("option '-" + Name + "' needs a value: -" + Name +
                          "=<" + S->MetaVar + ">");
      Value = Argv[++I];
    }
    if (Error Err = S->Apply(D, Value))
      return Err;
  }
  if (!Positional.empty())
    D.Input = Positional[0].str();
  for (size_t I = 1; I < Positional.size(); ++I)
    D.MoreInputs.push_back(Positional[I].str());
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Help
//===----------------------------------------------------------------------===//

/// Greedy word wrap with a hanging indent.
void printWrapped(llvm::raw_ostream &OS, StringRef Text, size_t Indent,
                  size_t Column, size_t Width = 80) {
  llvm::SmallVector<StringRef, 32> Words;
  Text.split(Words, ' ', -1, /*KeepEmpty=*/false);
  size_t Col = Column;
  bool First = true;
  for (StringRef W : Words) {
    if (!First && Col + 1 + W.size() > Width) {
      OS << '\n' << std::string(Indent, ' ');
      Col = Indent;
    } else if (!First) {
      OS << ' ';
      ++Col;
    }
    OS << W;
    Col += W.size();
    First = false;
  }
  OS << '\n';
}

void printColumn(llvm::raw_ostream &OS, StringRef Left, StringRef Right,
                 size_t Width = 28) {
  OS << "  " << Left;
  size_t Col = 2 + Left.size();
  if (Col + 2 > Width) {
    OS << '\n';
    Col = 0;
  }
  OS << std::string(Width - Col, ' ');
  printWrapped(OS, Right, Width, Width);
}

void printHelp(llvm::raw_ostream &OS, llvm::ArrayRef<OptionSpec> Table,
               const PassRegistry &R) {
  OS << "OVERVIEW: wopt - import a PyTorch checkpoint, repair it with a pass "
        "pipeline, export it\n\n"
     << "USAGE: " << Usage << "\n\n"
     << "EXAMPLES:\n"
     << "  wopt in.pth                                  print the text IR "
        "(data elided)\n"
     << "  wopt in.pth -pass-pipeline='rename{rule=module\\.(.*)=>$1}' "
        "-o out.pth\n"
     << "  wopt in.pth -pass-pipeline=dinov2-eval{manifest=m.json} "
        "-emit=summary\n\n"
     << "PIPELINES are comma-separated passes or named pipelines, each with "
        "optional\n"
     << "options in braces: 'a{k=v k2=v2},b'. Quote a value ('..' or \"..\") "
        "or brace it\n"
     << "({..}) when it holds blanks, commas or braces. Lists take "
        "comma-separated items.\n";
  StringRef Group;
  for (const OptionSpec &S : Table) {
    if (S.Group != Group) {
      Group = S.Group;
      OS << "\n" << Group.upper() << " OPTIONS:\n";
    }
    std::string Left = ("-" + S.Name).str();
    if (!S.MetaVar.empty())
      Left += (S.Name == "o" ? " <" : "=<") + S.MetaVar.str() + ">";
    printColumn(OS, Left, S.Help);
  }
  OS << "\nPASSES (wopt --help-pass=<name> for options):\n";
  for (const PassInfo &P : R.passes())
    printColumn(OS, P.Argument, P.Summary);
  OS << "\nPIPELINES (options manifest=, allow-missing=, allow-unexpected=, "
        "prune-unexpected=,\nreport= append verify-against-manifest):\n";
  if (R.pipelines().empty())
    OS << "  (none registered)\n";
  for (const PipelineInfo &P : R.pipelines())
    printColumn(OS, P.Name, P.Summary);
  OS << "\nEXIT CODES: 0 success, 1 verification found mismatches, 2 usage "
        "error,\nunreadable input or any other failure.\n";
}

Error printPassHelp(llvm::raw_ostream &OS, StringRef Name,
                    const PassRegistry &R) {
  if (const PipelineInfo *P = R.lookupPipeline(Name)) {
    OS << P->Name << " - " << P->Summary << "\n\nPipeline";
    if (!P->FileName.empty())
      OS << " (" << P->FileName << ")";
    OS << ":\n";
    llvm::SmallVector<StringRef, 16> Lines;
    StringRef(P->Text).rtrim().split(Lines, '\n');
    for (StringRef L : Lines)
      OS << "  " << L << "\n";
    OS << "\nOptions (forwarded to verify-against-manifest):\n"
       << "  manifest, allow-missing, allow-unexpected, prune-unexpected, "
          "report\n";
    return Error::success();
  }
  const PassInfo *Info = R.lookupPass(Name);
  if (!Info)
    return usageError("unknown pass or pipeline '" + Name +
                      "'\nnote: 'wopt --help' lists them");
  std::unique_ptr<Pass> P = Info->Factory(*Info);
  OS << P->argument() << " - " << P->summary() << "\n";
  if (!P->description().empty()) {
    OS << "\n  ";
    printWrapped(OS, P->description(), 2, 2);
  }
  OS << "\nOptions:\n";
  if (P->options().empty())
    OS << "  (none)\n";
  for (const OptionBase *O : P->options()) {
    std::string Help = O->help().str();
    std::string Default = O->print();
    // An empty string says nothing; a help text may name its default itself.
    bool SaysDefault = StringRef(Help).contains("default");
    if (O->typeName() != "list" && !Default.empty() && Default != "''" &&
        !SaysDefault)
      Help += " (default: " + Default + ")";
    printColumn(OS, (O->name() + "=<" + O->typeName() + ">").str(), Help);
  }
  OS << "\nStatistics (-pass-statistics):\n";
  if (P->statistics().empty())
    OS << "  (none)\n";
  for (const Statistic *S : P->statistics())
    printColumn(OS, S->name(), S->desc());
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Diagnostics
//===----------------------------------------------------------------------===//

/// Prints `wopt: <severity>: [<input>: ]<message>`; the message's later
/// lines (notes, carets) follow as they are.
void printDiag(StringRef Severity, StringRef Input, StringRef Msg) {
  auto [First, Rest] = Msg.split('\n');
  std::string Head = First.str();
  // "in.wir:3:5: error: x" from the text parser: one "error:" is enough.
  size_t Dup = Head.find((Severity + ": ").str());
  if (Dup != std::string::npos && Dup > 0 && Head[Dup - 1] == ' ')
    Head.erase(Dup, Severity.size() + 2);
  llvm::raw_ostream &OS = llvm::errs();
  OS << "wopt: " << Severity << ": ";
  bool Located = Input.empty() || StringRef(Head).starts_with(Input) ||
                 (Input == "-" && StringRef(Head).starts_with("<stdin>"));
  if (!Located)
    OS << Input << ": ";
  OS << Head << '\n';
  if (!Rest.empty())
    OS << Rest << '\n';
  OS.flush();
}

/// Prints E and returns the exit code it calls for.
int reportError(StringRef Input, Error E) {
  int Code = 2;
  llvm::handleAllErrors(
      std::move(E),
      [&](const VerificationFailure &V) {
        Code = 1;
        printDiag("error", Input, V.report());
      },
      [&](const llvm::ErrorInfoBase &Info) {
        printDiag("error", Input, Info.message());
      });
  return Code;
}

/// Prints an error of writing the output and returns 2. One that names the
/// output (a full disk, a device that refuses) is about the output, not
/// the input: the input is then not put in front.
int reportOutputError(StringRef Input, StringRef Output, Error E) {
  std::string Msg = llvm::toString(std::move(E));
  StringRef Shown = Output == "-" ? StringRef("<stdout>") : Output;
  printDiag("error", StringRef(Msg).starts_with(Shown) ? "" : Input, Msg);
  return 2;
}

DiagnosticHandler makeDiagnosticHandler(StringRef Input, bool Remarks,
                                        unsigned *NumWarnings) {
  std::string In = Input.str();
  return [In, Remarks, NumWarnings](const Diagnostic &D) {
    bool IsRemark = D.Sev == Diagnostic::Severity::Remark;
    if (!IsRemark)
      ++*NumWarnings;
    if (IsRemark && !Remarks)
      return;
    std::string Msg = D.PassArgument + ": ";
    if (!D.Subject.empty())
      Msg += "'" + D.Subject + "': ";
    Msg += D.Message;
    if (!D.Origin.empty()) {
      Msg += "\nnote: '" + D.Subject + "' comes from ";
      llvm::raw_string_ostream OS(Msg);
      D.Origin.print(OS);
    }
    printDiag(IsRemark ? "remark" : "warning", In, Msg);
  };
}

//===----------------------------------------------------------------------===//
// Running
//===----------------------------------------------------------------------===//

class Driver {
public:
  Driver(const DriverOptions &Opts, const PassRegistry &R, EmitKind Kind)
      : Opts(Opts), R(R), Kind(Kind) {
    Print.InlineDataLimit = Opts.PrintDataLimit.value_or(
        Opts.PrintData ? DefaultPrintDataLimit : 0);
    Print.PrintProvenance = Opts.PrintProvenance;
  }

  /// Verifies the input, runs the pipeline on it.
  Error process(Checkpoint &C) const;
  /// Writes C as a stream format (text, summary, manifest) to OS.
  Error emitToStream(const Checkpoint &C, llvm::raw_ostream &OS) const;
  /// Exports one checkpoint to the output.
  Error emit(const Checkpoint &C) const;
  /// -split-input-file: every part through process + emitToStream.
  int runSplit() const;
  /// The last process() verified and no output was asked for: the
  /// verdict is the whole answer, not the IR.
  bool verifyOnly() const;
  /// "wopt: in.pth matches m.json (119 tensors)", one line per verdict.
  void printVerdicts(llvm::raw_ostream &OS) const;
  /// -emit=diff found a difference (exit 1).
  bool diffFoundDifferences() const { return DiffDiffers; }

private:
  const DriverOptions &Opts;
  const PassRegistry &R;
  EmitKind Kind;
  PrintOptions Print;
  /// Warnings of the current part, for -Werror.
  mutable unsigned NumWarnings = 0;
  /// What the checking passes of the last process() concluded.
  mutable std::vector<std::string> Verdicts;
  mutable bool DiffDiffers = false;

  /// -emit=diff: the values against the target's.
  Error emitDiff(const Checkpoint &C, llvm::raw_ostream &OS) const {
    Expected<DiffResult> R = diffWithTarget(C, *Opts.TheTarget, Opts.Input);
    if (!R)
      return R.takeError();
    printDiff(*R, OS);
    DiffDiffers = DiffDiffers || !R->identical();
    return Error::success();
  }
};

//===----------------------------------------------------------------------===//
// The target (-target=FILE)
//===----------------------------------------------------------------------===//

constexpr StringRef VerifyPass = "verify-against-manifest";

/// Reads -target=FILE; a training checkpoint is unwrapped by the
/// registry's `unwrap` pass, as an input would be.
Error loadDriverTarget(DriverOptions &Opts, const PassRegistry &R) {
  if (!Opts.TargetPath)
    return Error::success();
  Unwrapper Unwrap;
  if (const PassInfo *Info = R.lookupPass("unwrap"))
    Unwrap = [Info](Checkpoint &C) { return Info->Factory(*Info)->run(C); };
  Expected<std::shared_ptr<const Target>> T =
      loadTarget(*Opts.TargetPath, Unwrap);
  if (!T)
    return T.takeError();
  Opts.TheTarget = std::move(*T);
  return Error::success();
}

/// A verification in PM that checks against the run's target: a
/// verify-against-manifest without manifest= of its own.
bool verifiesTarget(const PassManager &PM) {
  return llvm::any_of(PM.passes(), [](const std::unique_ptr<Pass> &P) {
    return P->argument() == VerifyPass &&
           llvm::none_of(P->options(), [](const OptionBase *O) {
             return O->name() == "manifest" && O->wasSet();
           });
  });
}

/// With a target every pass sees it and the pipeline ends in a
/// verification against it, unless the user placed one (to give it
/// allow-missing= and the like).
Error addTarget(const DriverOptions &Opts, const PassRegistry &R,
                PassManager &PM) {
  if (!Opts.TheTarget)
    return Error::success();
  PM.setTarget(Opts.TheTarget);
  // -emit=diff reports keys, dtypes and shapes itself, with the values.
  if (verifiesTarget(PM) || Opts.Emit == "diff")
    return Error::success();
  const PassInfo *Verify = R.lookupPass(VerifyPass);
  if (!Verify)
    return usageError("-target needs the " + VerifyPass +
                      " pass, which this build does not register");
  std::unique_ptr<Pass> P = Verify->Factory(*Verify);
  P->setImplicit();
  PM.addPass(std::move(P));
  return Error::success();
}

/// Parses the -pass-pipeline text, or the file it named with @, and adds
/// what the target implies.
Error parsePipelineOption(const DriverOptions &Opts, const PassRegistry &R,
                          PassManager &PM) {
  if (Error Err =
          !Opts.PipelineFile.empty()
              ? R.parsePipelineFile(Opts.Pipeline, Opts.PipelineFile, PM)
              : R.parsePipeline(Opts.Pipeline, PM))
    return Err;
  return addTarget(Opts, R, PM);
}

/// -pass-pipeline=@FILE: reads FILE into Pipeline.
Error loadPipelineFile(DriverOptions &Opts) {
  if (!StringRef(Opts.Pipeline).starts_with("@"))
    return Error::success();
  Opts.PipelineFile = Opts.Pipeline.substr(1);
  auto Buf = llvm::MemoryBuffer::getFile(Opts.PipelineFile, /*IsText=*/true);
  if (!Buf)
    return usageError(
        "-pass-pipeline=@" + Opts.PipelineFile +
        ": cannot read the pipeline file: " + Buf.getError().message());
  Opts.Pipeline = (*Buf)->getBuffer().str();
  return Error::success();
}

/// -o-pipeline=F: the passes that ran, as a recipe that reproduces them.
Error writePipelineFile(const DriverOptions &Opts, const PassManager &PM) {
  std::string Header = "Pipeline wopt ran on " + Opts.Input +
                       "\n\nRun it again: wopt -pass-pipeline=@" +
                       *Opts.OutputPipeline + " <input>";
  return writeOutputFile(*Opts.OutputPipeline, [&](llvm::raw_ostream &OS) {
    PM.printAsPipelineFile(OS, Header);
    return Error::success();
  });
}

//===----------------------------------------------------------------------===//
// Synthesis (-target without -pass-pipeline, or -pass-pipeline=auto)
//===----------------------------------------------------------------------===//

Error checkParsedPipeline(const DriverOptions &Opts, const PassRegistry &R,
                          const PassManager &PM);

/// -pass-pipeline=auto or auto{verify options}.
bool isAutoSpelling(const DriverOptions &Opts) {
  StringRef P = Opts.Pipeline;
  return Opts.PipelineGiven && Opts.PipelineFile.empty() &&
         (P == "auto" || P.starts_with("auto{"));
}

/// With a target, no pipeline asks synthesis for one; except -emit=diff,
/// which compares the input as it is unless told `auto`.
bool isAutoPipeline(const DriverOptions &Opts) {
  if (!Opts.TargetPath)
    return false;
  if (isAutoSpelling(Opts))
    return true;
  return !Opts.PipelineGiven && Opts.Emit != "diff";
}

/// `{allow-missing=...}` of auto{...}: the final verification's options,
/// with the braces; "" for plain auto.
StringRef autoVerifyOptions(const DriverOptions &Opts) {
  StringRef P = Opts.Pipeline;
  if (!isAutoSpelling(Opts) || !P.consume_front("auto"))
    return "";
  return P;
}

/// auto's options are verify-against-manifest's: parsing them as that
/// pass checks them (with a caret) before the input is read.
Error parseAutoVerify(const DriverOptions &Opts, const PassRegistry &R,
                      PassManager &PM) {
  StringRef Inner = autoVerifyOptions(Opts);
  if (Inner.empty())
    return Error::success();
  return R.parsePipeline((VerifyPass + Inner).str(), PM);
}

Error checkAutoPipeline(const DriverOptions &Opts, const PassRegistry &R) {
  if (!Opts.TargetPath)
    return usageError("-pass-pipeline=" + Opts.Pipeline +
                      ": synthesis needs -target=FILE, the model the result "
                      "must match");
  PassManager PM;
  return parseAutoVerify(Opts, R, PM);
}

/// What the final verification allows, for the search's scoring.
SynthesisOptions synthesisOptions(const PassManager &VerifyPM) {
  SynthesisOptions SO;
  for (const std::unique_ptr<Pass> &P : VerifyPM.passes())
    for (const OptionBase *O : P->options()) {
      if (!O->wasSet())
        continue;
      if (O->name() == "allow-missing")
        SO.AllowMissing = O->printEach();
      else if (O->name() == "allow-unexpected")
        SO.AllowUnexpected = O->printEach();
      else if (O->name() == "prune-unexpected")
        SO.PruneUnexpected = O->print() == "true";
    }
  return SO;
}

/// The chosen pipeline on stderr (always), the reasons with -remarks.
void reportSynthesis(const DriverOptions &Opts, const SynthesisResult &Res) {
  auto Remark = [&](const llvm::Twine &Msg) {
    if (Opts.Remarks)
      printDiag("remark", Opts.Input, ("synthesis: " + Msg).str());
  };
  Remark("the input: " + Res.Before);
  for (size_t I = 0; I < Res.Steps.size(); ++I) {
    const SynthesisStep &S = Res.Steps[I];
    Remark("step " + llvm::Twine(I + 1) + ": " + S.Text + ": " + S.Why +
           "; then " + S.After);
  }
  for (const std::string &N : Res.Notes)
    Remark(N);
  Remark(llvm::Twine(Res.Trials) + " trial runs");
  if (Res.Complete && Res.ambiguous())
    return; // the tie is the error
  std::string P = Res.pipeline();
  if (Res.Complete && P.empty() && !Res.Prune)
    return; // the input fits: the verdict says so
  llvm::errs() << "wopt: synthesized pipeline"
               << (Res.Complete ? ""
                                : " (the best found; it does not reach "
                                  "the target)")
               << ": " << (P.empty() ? "(no pass)" : P) << '\n';
  for (const auto &[Alt, Why] : Res.SetAside)
    printDiag("note", "", Alt + " fits as well; not taken: " + Why);
  if (!Res.Complete && !Res.Ties.empty())
    for (const std::string &T : llvm::drop_begin(Res.Ties))
      printDiag("note", "", "as good: " + T);
  if (Res.Prune) {
    std::vector<std::string> Groups;
    for (const KeyGroup &G : groupKeys(Res.PrunedKeys))
      Groups.push_back(G.Pattern);
    printDiag("note", "",
              std::to_string(Res.PrunedKeys.size()) +
                  " unexpected keys have no place in the target (no missing "
                  "key has their shape); the verification prunes them: " +
                  llvm::join(Groups, ", "));
  }
}

/// Two pipelines fit equally with different results: say so, choose none.
Error tieError(const DriverOptions &Opts, const SynthesisResult &Res) {
  std::string Msg =
      "cannot choose a pipeline: " + std::to_string(Res.Ties.size()) +
      " pipelines make the checkpoint match " + Opts.TheTarget->name().str() +
      " equally well, with different results";
  for (const std::string &T : Res.Ties)
    Msg += "\nnote: " + T;
  Msg += "\nhint: run the one you mean with -pass-pipeline='" +
         Res.Ties.front() + "'";
  return llvm::make_error<VerificationFailure>(Msg);
}

/// The verification that ends a synthesized pipeline: auto's options,
/// plus prune-unexpected=true when synthesis found keys with no place.
std::string synthesizedVerify(const DriverOptions &Opts,
                              const SynthesisResult &Res) {
  std::string Inner = autoVerifyOptions(Opts).str();
  if (!Res.Prune)
    return Inner.empty() ? "" : (VerifyPass + Inner).str();
  if (Inner.empty())
    return (VerifyPass + "{prune-unexpected=true}").str();
  Inner.insert(Inner.size() - 1, " prune-unexpected=true");
  return (VerifyPass + Inner).str();
}

/// Finds a pipeline for C and parses it into PM, as -pass-pipeline would.
Error synthesizeInto(const DriverOptions &Opts, const PassRegistry &R,
                     const Checkpoint &C, PassManager &PM) {
  PassManager VerifyPM;
  if (Error Err = parseAutoVerify(Opts, R, VerifyPM))
    return Err;
  Expected<SynthesisResult> Res =
      synthesizePipeline(C, Opts.TheTarget, R, synthesisOptions(VerifyPM));
  if (!Res)
    return Res.takeError();
  reportSynthesis(Opts, *Res);
  if (Res->Complete && Res->ambiguous())
    return tieError(Opts, *Res);
  std::string Text = Res->pipeline();
  std::string Verify = synthesizedVerify(Opts, *Res);
  if (!Verify.empty())
    Text += (Text.empty() ? "" : ",") + Verify;
  if (Error Err = R.parsePipeline(Text, PM))
    return Err;
  if (Error Err = addTarget(Opts, R, PM))
    return Err;
  return checkParsedPipeline(Opts, R, PM);
}

Error Driver::process(Checkpoint &C) const {
  if (Error Err = verifyCheckpoint(C))
    return usageError("invalid input: " + llvm::toString(std::move(Err)));
  PassManager PM;
  // The pipeline was checked before reading the input; a fresh copy per
  // checkpoint keeps statistics per part with -split-input-file. A
  // synthesized one is found now, for this input.
  if (Error Err = isAutoPipeline(Opts) ? synthesizeInto(Opts, R, C, PM)
                                       : parsePipelineOption(Opts, R, PM))
    return Err;
  InstrumentationOptions Instr = Opts.Instr;
  Instr.IRPrinting = Print;
  PM.setInstrumentation(std::move(Instr));
  PM.setOutputStream(llvm::errs());
  NumWarnings = 0;
  PM.setDiagnosticHandler(
      makeDiagnosticHandler(Opts.Input, Opts.Remarks, &NumWarnings));
  Error RunErr = PM.run(C);
  // A recipe is written for a run that went through, and for one whose
  // verification failed (exit 1): it says what was tried.
  if (Opts.OutputPipeline && (!RunErr || RunErr.isA<VerificationFailure>()))
    if (Error Err = writePipelineFile(Opts, PM))
      return joinErrors(std::move(RunErr), std::move(Err));
  if (RunErr)
    return RunErr;
  if (Opts.WarningsAsErrors && NumWarnings)
    return usageError(llvm::Twine(NumWarnings) +
                      (NumWarnings == 1 ? " warning" : " warnings") +
                      " treated as errors (-Werror); nothing written");
  Verdicts.clear();
  for (const std::unique_ptr<Pass> &P : PM.passes())
    if (!P->verdict().empty())
      Verdicts.push_back(P->verdict());
  return Error::success();
}

bool Driver::verifyOnly() const {
  return !Opts.Output && !Opts.Emit && !Verdicts.empty();
}

void Driver::printVerdicts(llvm::raw_ostream &OS) const {
  for (const std::string &V : Verdicts)
    OS << "wopt: " << Opts.Input << " " << V << "\n";
}

Error Driver::emitToStream(const Checkpoint &C, llvm::raw_ostream &OS) const {
  switch (Kind) {
  case EmitKind::Text:
    printCheckpoint(C, OS, Print);
    return Error::success();
  case EmitKind::Summary:
    writeSummary(C, OS);
    return Error::success();
  case EmitKind::Manifest:
    return emitManifest(C, OS);
  case EmitKind::Diff:
    return emitDiff(C, OS);
  case EmitKind::Torch:
  case EmitKind::Safetensors:
  case EmitKind::FlatBuffers:
    break;
  }
  llvm_unreachable("binary formats are not streamed");
}

StringRef outputPath(const DriverOptions &Opts) {
  return Opts.Output ? StringRef(*Opts.Output) : StringRef("-");
}

Error Driver::emit(const Checkpoint &C) const {
  bool Progress = llvm::sys::Process::StandardErrIsDisplayed();
  if (Opts.ShardOut) {
    ShardExportOptions SO = Opts.ShardOpts;
    SO.Progress = Progress;
    return exportShards(C, *Opts.ShardOut, SO);
  }
  // A torch export checks input CRCs while it copies the records.
  if (Opts.VerifyInputCRC && Kind != EmitKind::Torch)
    if (Error Err = verifySourceCRCs(C))
      return Err;
  switch (Kind) {
  case EmitKind::Torch: {
    TorchExportOptions TO;
    TO.Progress = Progress;
    TO.VerifyInputCRC = Opts.VerifyInputCRC;
    return exportTorch(C, outputPath(Opts), TO);
  }
  case EmitKind::Safetensors: {
    SafetensorsExportOptions SO;
    SO.Progress = Progress;
    return exportSafetensors(C, outputPath(Opts), SO);
  }
  case EmitKind::FlatBuffers: {
    FlatBuffersExportOptions FO;
    FO.Progress = Progress;
    return exportFlatBuffers(C, outputPath(Opts), FO);
  }
  default:
    break;
  }
  return writeOutputFile(outputPath(Opts), [&](llvm::raw_ostream &OS) {
    return emitToStream(C, OS);
  });
}

/// Is Line a `// -----` separator (any number of dashes, at least five)?
bool isSplitMarker(StringRef Line) {
  Line = Line.trim();
  if (!Line.consume_front("//"))
    return false;
  Line = Line.ltrim();
  return Line.size() >= 5 && Line.find_first_not_of('-') == StringRef::npos;
}

/// Parts of Buffer with the line each starts at (1-based).
std::vector<std::pair<StringRef, unsigned>> splitParts(StringRef Buffer) {
  std::vector<std::pair<StringRef, unsigned>> Parts;
  size_t Start = 0, Pos = 0;
  unsigned Line = 1, StartLine = 1;
  while (Pos < Buffer.size()) {
    size_t EOL = Buffer.find('\n', Pos);
    size_t Next = EOL == StringRef::npos ? Buffer.size() : EOL + 1;
    if (isSplitMarker(Buffer.slice(Pos, Next))) {
      Parts.push_back({Buffer.slice(Start, Pos), StartLine});
      Start = Next;
      StartLine = Line + 1;
    }
    Pos = Next;
    ++Line;
  }
  Parts.push_back({Buffer.substr(Start), StartLine});
  return Parts;
}

int Driver::runSplit() const {
  auto Buf = llvm::MemoryBuffer::getFileOrSTDIN(Opts.Input, /*IsText=*/true);
  if (!Buf)
    return reportError(Opts.Input,
                       usageError("cannot read '" + Opts.Input +
                                  "': " + Buf.getError().message()));
  std::string Output;
  int Code = 0;
  bool First = true;
  for (auto [Text, Line] : splitParts((*Buf)->getBuffer())) {
    if (!First)
      Output += "// -----\n";
    First = false;
    // Blank lines in front keep the parser's line numbers those of the file.
    std::string Padded = std::string(Line - 1, '\n') + Text.str();
    auto PartBuf = llvm::MemoryBuffer::getMemBufferCopy(Padded, Opts.Input);
    Expected<std::unique_ptr<Checkpoint>> C =
        parseCheckpoint(PartBuf->getMemBufferRef());
    Error Err = C ? Error::success() : C.takeError();
    if (!Err) {
      (*C)->SourcePath = Opts.Input;
      Err = process(**C);
    }
    if (!Err) {
      llvm::raw_string_ostream OS(Output);
      if (verifyOnly())
        printVerdicts(OS);
      else
        Err = emitToStream(**C, OS);
    }
    if (Err)
      Code = std::max(Code, reportError(Opts.Input, std::move(Err)));
  }
  // A file is only written when every part succeeded; stdout shows what did.
  if (Code && Opts.Output && *Opts.Output != "-")
    return Code;
  if (Error Err = writeOutputFile(outputPath(Opts), [&](llvm::raw_ostream &OS) {
        OS << Output;
        return Error::success();
      }))
    Code = std::max(
        Code, reportOutputError(Opts.Input, outputPath(Opts), std::move(Err)));
  return Code;
}

StringRef emitName(EmitKind K) {
  switch (K) {
  case EmitKind::Text:
    return "text";
  case EmitKind::Torch:
    return "torch";
  case EmitKind::Safetensors:
    return "safetensors";
  case EmitKind::FlatBuffers:
    return "flatbuffers";
  case EmitKind::Summary:
    return "summary";
  case EmitKind::Manifest:
    return "manifest";
  case EmitKind::Diff:
    return "diff";
  }
  llvm_unreachable("covered switch");
}

/// The output format, checked against what this build can write.
Expected<EmitKind> chooseEmitKind(const DriverOptions &Opts) {
  EmitKind Kind = EmitKind::Text;
  if (Opts.Emit) {
    std::optional<EmitKind> K = parseEmitKind(*Opts.Emit);
    if (!K)
      return usageError("unknown -emit kind '" + *Opts.Emit +
                        "'\nnote: expected text, torch, safetensors, "
                        "flatbuffers, summary, manifest or diff");
    Kind = *K;
  } else if (Opts.ShardOut) {
    Kind = Opts.ShardOut->Format;
  } else if (Opts.Output && *Opts.Output != "-") {
    Kind = emitKindForPath(*Opts.Output).value_or(EmitKind::Text);
  }
  bool Binary = Kind == EmitKind::Torch || Kind == EmitKind::Safetensors ||
                Kind == EmitKind::FlatBuffers;
  if (Kind == EmitKind::Diff && !Opts.TheTarget)
    return usageError("-emit=diff compares values with a -target=FILE (a "
                      "checkpoint of the model)");
  if (Binary && !Opts.Output)
    return usageError("-emit=" + emitName(Kind) +
                      " needs -o <file> (-o - writes to stdout)");
  if (Opts.VerifyInputCRC && Opts.SplitInputFile)
    return usageError("-verify-input-crc checks the records of a zip input; "
                      "-split-input-file reads text");
  if (Binary && Opts.SplitInputFile)
    return usageError("-split-input-file writes text, summaries or "
                      "manifests, not -emit=" +
                      emitName(Kind));
  return Kind;
}

/// The shard set options, resolved against -o: a folder or an .index.json
/// output is a set; the options that shape one need such an output.
Error resolveShardOutput(DriverOptions &Opts) {
  bool Asked = Opts.MaxShardSize || Opts.Jobs || !Opts.WriteShards.empty() ||
               Opts.WriteIndex || Opts.PrintShardCount;
  std::optional<EmitKind> Emit;
  if (Opts.Emit)
    Emit = parseEmitKind(*Opts.Emit);
  if (Opts.Output) {
    Expected<std::optional<ShardTarget>> T = shardTargetFor(*Opts.Output, Emit);
    if (!T)
      return usageError("-o " + *Opts.Output + ": " +
                        llvm::toString(T.takeError()));
    Opts.ShardOut = std::move(*T);
  }
  if (!Opts.ShardOut) {
    if (Asked)
      return usageError("the shard options (-max-shard-size, -j, "
                        "-write-shards, -write-index, -print-shard-count) "
                        "need a set as output: -o DIR/ or -o "
                        "model.safetensors.index.json");
    return Error::success();
  }
  if (Opts.SplitInputFile)
    return usageError("-split-input-file writes text, not a shard set");
  ShardExportOptions &SO = Opts.ShardOpts;
  if (Opts.MaxShardSize) {
    Expected<uint64_t> N = parseShardSize(*Opts.MaxShardSize);
    if (!N)
      return usageError("-max-shard-size: " + llvm::toString(N.takeError()));
    SO.MaxShardSize = *N;
  }
  SO.Jobs = Opts.Jobs.value_or(0);
  SO.OnlyShards = Opts.WriteShards;
  SO.VerifyInputCRC = Opts.VerifyInputCRC;
  // -write-shards alone: no index; -write-index alone: no shards.
  SO.WriteShards = !Opts.WriteShards.empty() || !Opts.WriteIndex;
  SO.WriteIndex = Opts.WriteIndex || Opts.WriteShards.empty();
  return Error::success();
}

/// Several inputs are one set of shards.
Error checkInputs(const DriverOptions &Opts) {
  if (Opts.MoreInputs.empty())
    return Error::success();
  if (Opts.SplitInputFile)
    return usageError("-split-input-file takes one input, not " +
                      llvm::Twine(Opts.MoreInputs.size() + 1));
  if (Opts.Input == "-" || llvm::is_contained(Opts.MoreInputs, "-"))
    return usageError("stdin ('-') cannot be one of several inputs");
  return Error::success();
}

/// The input: one file or folder, or several files joined as a set.
Expected<std::unique_ptr<Checkpoint>> importInputs(const DriverOptions &Opts) {
  if (Opts.MoreInputs.empty())
    return importFile(Opts.Input);
  std::vector<std::string> All{Opts.Input};
  All.insert(All.end(), Opts.MoreInputs.begin(), Opts.MoreInputs.end());
  return importShardFiles(All);
}

/// The label diagnostics start with: the input, or none for several (each
/// message names the files it is about).
StringRef inputLabel(const DriverOptions &Opts) {
  return Opts.MoreInputs.empty() ? StringRef(Opts.Input) : StringRef();
}

/// -print-ir-before/-after name passes: an unknown name is an error (a typo
/// would otherwise print nothing, silently); a pass the pipeline does not
/// run is a warning.
Error checkPrintIRNames(const DriverOptions &Opts, const PassRegistry &R,
                        const PassManager &PM) {
  for (auto [Flag, Names] :
       {std::make_pair("print-ir-before", &Opts.Instr.PrintBefore),
        std::make_pair("print-ir-after", &Opts.Instr.PrintAfter)}) {
    for (const auto &N : *Names) {
      StringRef Name = N.getKey();
      if (R.lookupPipeline(Name))
        return usageError("-" + llvm::Twine(Flag) + "=" + Name + ": '" + Name +
                          "' is a pipeline; name one of its passes");
      if (!R.lookupPass(Name)) {
        std::string Hint = R.suggest(Name, /*PassesOnly=*/true);
        return usageError("-" + llvm::Twine(Flag) + "=" + Name +
                          ": unknown pass '" + Name + "'" +
                          (Hint.empty() ? "" : "\nnote: " + Hint));
      }
      bool Runs = llvm::any_of(
          PM.passes(), [&](const auto &P) { return P->argument() == Name; });
      if (Runs)
        continue;
      std::string Msg = "-" + std::string(Flag) + "=" + Name.str() +
                        ": the pipeline does not run '" + Name.str() + "'";
      if (Opts.WarningsAsErrors)
        return usageError(Msg + " (-Werror)");
      printDiag("warning", "", Msg);
    }
  }
  return Error::success();
}

/// What every parsed pipeline, given or synthesized, goes through: the
/// -print-ir-* names checked against it, and -dump-pass-pipeline.
Error checkParsedPipeline(const DriverOptions &Opts, const PassRegistry &R,
                          const PassManager &PM) {
  if (Error Err = checkPrintIRNames(Opts, R, PM))
    return Err;
  if (Opts.DumpPipeline) {
    PM.printAsTextualPipeline(llvm::errs());
    llvm::errs() << '\n';
  }
  return Error::success();
}

/// Everything before reading the input: a usage error costs no I/O.
Expected<EmitKind> checkUsage(const DriverOptions &Opts,
                              const PassRegistry &R) {
  if (Opts.Input.empty())
    return usageError("no input file\nnote: usage: " + Usage.str() +
                      "\nnote: see 'wopt --help'");
  if (Error Err = checkInputs(Opts))
    return Err;
  Expected<EmitKind> Kind = chooseEmitKind(Opts);
  if (!Kind)
    return Kind.takeError();
  PassManager PM;
  if (isAutoPipeline(Opts) || isAutoSpelling(Opts)) {
    if (Error Err = checkAutoPipeline(Opts, R))
      return Err;
    return Kind;
  }
  if (Error Err = parsePipelineOption(Opts, R, PM))
    return Err;
  if (Error Err = checkParsedPipeline(Opts, R, PM))
    return Err;
  return Kind;
}

} // namespace

int wopt::woptMain(int Argc, char **Argv, const PassRegistry &Registry) {
  std::vector<OptionSpec> Table = buildOptionTable();
  DriverOptions Opts;
  if (Error Err = parseArgs(Argc, Argv, Table, Opts))
    return reportError("", std::move(Err));
  if (Opts.Help) {
    printHelp(llvm::outs(), Table, Registry);
    return 0;
  }
  if (Opts.Version) {
    llvm::outs() << "wopt version " WOPT_VERSION_STRING "\n";
    return 0;
  }
  if (Opts.HelpPass) {
    if (Error Err = printPassHelp(llvm::outs(), *Opts.HelpPass, Registry))
      return reportError("", std::move(Err));
    return 0;
  }
  if (Error Err = loadPipelineFile(Opts))
    return reportError("", std::move(Err));
  if (Error Err = loadDriverTarget(Opts, Registry))
    return reportError("", std::move(Err));
  if (Error Err = resolveShardOutput(Opts))
    return reportError("", std::move(Err));
  Expected<EmitKind> Kind = checkUsage(Opts, Registry);
  if (!Kind)
    return reportError("", Kind.takeError());
  // Before any work: a directory, an unwritable place or the input itself
  // as the output costs no import and no export.
  // (A shard set checks its folder itself and replaces it as a whole.)
  if (!Opts.ShardOut)
    if (Error Err = checkOutputPath(outputPath(Opts), Opts.Input))
      return reportError("", std::move(Err));
  // Past `ulimit -f`, write() then fails with EFBIG (a clean error, no
  // partial file) instead of SIGXFSZ killing the process.
  std::signal(SIGXFSZ, SIG_IGN);

  Driver D(Opts, Registry, *Kind);
  if (Opts.SplitInputFile)
    return D.runSplit();
  StringRef Label = inputLabel(Opts);
  Expected<std::unique_ptr<Checkpoint>> C = importInputs(Opts);
  if (!C)
    return reportError(Label, C.takeError());
  if (Error Err = D.process(**C))
    return reportError(Label, std::move(Err));
  if (Opts.PrintShardCount) {
    Expected<unsigned> N =
        countShards(**C, *Opts.ShardOut, Opts.ShardOpts.MaxShardSize);
    if (!N)
      return reportError(Label, N.takeError());
    llvm::outs() << *N << "\n";
    return 0;
  }
  if (D.verifyOnly()) {
    D.printVerdicts(llvm::outs());
    return 0;
  }
  if (Error Err = D.emit(**C))
    return reportOutputError(Label, outputPath(Opts), std::move(Err));
  return D.diffFoundDifferences() ? 1 : 0;
}
