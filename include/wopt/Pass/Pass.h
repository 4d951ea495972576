//===- Pass.h - The pass base class, options and statistics ----*- C++ -*-===//
#ifndef WOPT_PASS_PASS_H
#define WOPT_PASS_PASS_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wopt {

class Pass;
class Target;

/// What the registry knows of a pass before making one.
struct PassInfo {
  llvm::StringRef Argument; ///< "flatten-chunks"
  llvm::StringRef Summary;  ///< one line, for --help
  std::function<std::unique_ptr<Pass>(const PassInfo &)> Factory;
};

/// Whether a pipeline that names the pass must set the option. A missing
/// required option is a parse error with a caret under the pass name, so
/// `rename` without rules fails before any input is read.
enum class Presence { Optional, Required };

/// A typed pass option. Options register themselves with their pass.
class OptionBase {
public:
  OptionBase(Pass &P, llvm::StringRef Name, llvm::StringRef Help,
             Presence Need = Presence::Optional);
  virtual ~OptionBase() = default;
  llvm::StringRef name() const { return Name; }
  llvm::StringRef help() const { return Help; }
  bool isRequired() const { return Need == Presence::Required; }
  /// "string", "int", "bool", "list", or an enum's values "a|b|c"
  virtual llvm::StringRef typeName() const = 0;
  /// Parses Text into the option. The error says what was expected
  /// ("expected an integer, got 'x'"); the caller adds the place.
  virtual llvm::Error parse(llvm::StringRef Text) = 0;
  /// The value as pipeline text would spell it (quoted where needed).
  virtual std::string print() const = 0;
  /// The value as separate `name=value` settings would spell it: one per
  /// item for a list (repeating a list option appends), else print().
  virtual std::vector<std::string> printEach() const { return {print()}; }
  bool wasSet() const { return Set; }

protected:
  bool Set = false;

private:
  std::string Name, Help;
  Presence Need;
};

template <typename T> class Option;

template <> class Option<std::string> : public OptionBase {
public:
  Option(Pass &P, llvm::StringRef Name, llvm::StringRef Help,
         std::string Default = "", Presence Need = Presence::Optional)
      : OptionBase(P, Name, Help, Need), V(std::move(Default)) {}
  llvm::StringRef typeName() const override { return "string"; }
  llvm::Error parse(llvm::StringRef Text) override;
  std::string print() const override;
  const std::string &operator*() const { return V; }
  const std::string *operator->() const { return &V; }
  operator llvm::StringRef() const { return V; }
  void setValue(std::string S) {
    V = std::move(S);
    Set = true;
  }

private:
  std::string V;
};

/// An integer; values below Min are parse errors ("expected an integer
/// >= 1, got '-3'").
template <> class Option<int64_t> : public OptionBase {
public:
  Option(Pass &P, llvm::StringRef Name, llvm::StringRef Help, int64_t D = 0,
         int64_t Min = INT64_MIN)
      : OptionBase(P, Name, Help), V(D), Min(Min) {}
  llvm::StringRef typeName() const override { return "int"; }
  llvm::Error parse(llvm::StringRef Text) override;
  std::string print() const override;
  int64_t operator*() const { return V; }
  operator int64_t() const { return V; }

private:
  int64_t V;
  int64_t Min;
};

/// A string from a fixed set (`to=timm|original|mmdet`); anything else is a
/// parse error that lists the values and suggests the nearest one.
class EnumOption : public Option<std::string> {
public:
  EnumOption(Pass &P, llvm::StringRef Name, llvm::StringRef Help,
             std::vector<std::string> Values, std::string Default = "",
             Presence Need = Presence::Optional);
  llvm::StringRef typeName() const override { return Spelled; }
  llvm::Error parse(llvm::StringRef Text) override;
  const std::vector<std::string> &values() const { return Values; }

private:
  std::vector<std::string> Values;
  std::string Spelled; ///< "a|b|c"
};

template <> class Option<bool> : public OptionBase {
public:
  Option(Pass &P, llvm::StringRef Name, llvm::StringRef Help, bool D = false)
      : OptionBase(P, Name, Help), V(D) {}
  llvm::StringRef typeName() const override { return "bool"; }
  /// true/false/1/0; an empty value ("{ema}") means true.
  llvm::Error parse(llvm::StringRef Text) override;
  std::string print() const override;
  bool operator*() const { return V; }
  operator bool() const { return V; }

private:
  bool V;
};

/// A comma-separated list of strings: `also=a,b`. Repeating the option
/// appends (`rule=a rule=b`).
class ListOption : public OptionBase {
public:
  ListOption(Pass &P, llvm::StringRef Name, llvm::StringRef Help,
             Presence Need = Presence::Optional)
      : OptionBase(P, Name, Help, Need) {}
  llvm::StringRef typeName() const override { return "list"; }
  llvm::Error parse(llvm::StringRef Text) override;
  std::string print() const override;
  std::vector<std::string> printEach() const override;
  const std::vector<std::string> &operator*() const { return V; }
  const std::vector<std::string> *operator->() const { return &V; }
  auto begin() const { return V.begin(); }
  auto end() const { return V.end(); }
  bool empty() const { return V.empty(); }

private:
  std::vector<std::string> V;
};

/// A list option whose items are compiled as they are parsed (regex rules,
/// shape rules), so a bad item gets a caret before any input is read.
template <typename T> class CompiledListOption : public ListOption {
public:
  using CompileFn = llvm::Expected<T> (*)(llvm::StringRef);
  CompiledListOption(Pass &P, llvm::StringRef Name, llvm::StringRef Help,
                     CompileFn Compile, Presence Need = Presence::Optional)
      : ListOption(P, Name, Help, Need), Compile(Compile) {}
  llvm::Error parse(llvm::StringRef Text) override {
    size_t Old = (*this)->size();
    if (llvm::Error Err = ListOption::parse(Text))
      return Err;
    for (size_t I = Old; I < (*this)->size(); ++I) {
      llvm::Expected<T> Item = Compile((**this)[I]);
      if (!Item)
        return Item.takeError();
      Compiled.push_back(std::move(*Item));
    }
    return llvm::Error::success();
  }
  /// One compiled item per list item, in order.
  const std::vector<T> &compiled() const { return Compiled; }

private:
  CompileFn Compile;
  std::vector<T> Compiled;
};

/// A counter a pass reports with -pass-statistics.
class Statistic {
public:
  Statistic(Pass &P, llvm::StringRef Name, llvm::StringRef Desc);
  llvm::StringRef name() const { return Name; }
  llvm::StringRef desc() const { return Desc; }
  uint64_t value() const { return V; }
  Statistic &operator++() {
    ++V;
    return *this;
  }
  Statistic &operator+=(uint64_t N) {
    V += N;
    return *this;
  }
  void operator=(uint64_t N) { V = N; }

private:
  std::string Name, Desc;
  uint64_t V = 0;
};

/// A remark or warning a pass emits about a tensor or the whole checkpoint.
struct Diagnostic {
  enum class Severity { Remark, Warning };
  Severity Sev;
  std::string PassArgument;
  std::string Message;
  std::string Subject; ///< the key concerned, "" for the whole checkpoint
  Provenance Origin;   ///< where the subject came from (may be empty)
};
using DiagnosticHandler = std::function<void(const Diagnostic &)>;

class Pass {
public:
  explicit Pass(const PassInfo &Info) : Info(Info) {}
  virtual ~Pass();
  Pass(const Pass &) = delete;
  Pass &operator=(const Pass &) = delete;

  llvm::StringRef argument() const { return Info.Argument; }
  llvm::StringRef summary() const { return Info.Summary; }
  /// Longer help: what it does, when to use it (for --help-pass / docs).
  virtual llvm::StringRef description() const { return ""; }

  /// Runs on the checkpoint. Input problems are Errors, never asserts.
  virtual llvm::Error run(Checkpoint &C) = 0;

  /// Sets option Name from pipeline text. Errors: "unknown option 'x' for
  /// pass 'p'", or the option's parse error.
  llvm::Error setOption(llvm::StringRef Name, llvm::StringRef Text);
  const std::vector<OptionBase *> &options() const { return Options; }
  const std::vector<Statistic *> &statistics() const { return Stats; }
  /// `arg{opt=val ...}` with the options that were set.
  void printAsTextualPipeline(llvm::raw_ostream &OS) const;
  /// The same for a .wpipe file: on one line when it fits in Width
  /// columns, else one option setting per line inside the braces.
  void printAsPipelineFileEntry(llvm::raw_ostream &OS,
                                size_t Width = 100) const;

  void setDiagnosticHandler(DiagnosticHandler H) { Handler = std::move(H); }

  /// What the model that will load the result expects (-target=), or null.
  /// Passes keep the keys it expects, cast to its dtypes, verify against
  /// it. Set by PassManager::setTarget.
  const Target *target() const { return TheTarget.get(); }
  void setTarget(std::shared_ptr<const Target> T) { TheTarget = std::move(T); }

  /// A one-line conclusion a checking pass reached in its last run, for a
  /// driver that prints no IR ("matches m.json (119 tensors)"); "" for
  /// passes that transform.
  virtual std::string verdict() const { return ""; }

  /// Added by the driver rather than written by the user (the verification
  /// a -target implies): -o-pipeline leaves it out, since the target comes
  /// back with the next -target.
  bool isImplicit() const { return Implicit; }
  void setImplicit(bool I = true) { Implicit = I; }

  /// The named pipeline the pass came from ("" when named directly); the
  /// innermost one when pipelines nest. Set by the pipeline parser.
  llvm::StringRef pipelineName() const { return PipelineName; }
  void setPipelineName(llvm::StringRef N) { PipelineName = N.str(); }
  /// The outermost named pipeline the pass was expanded from, and which
  /// use of it (a number unique in the process; 0 for none): consecutive
  /// passes of one use are written back as the pipeline's name.
  llvm::StringRef topPipeline() const { return TopPipeline; }
  unsigned pipelineUse() const { return PipelineUse; }
  void setTopPipeline(llvm::StringRef Name, unsigned Use) {
    TopPipeline = Name.str();
    PipelineUse = Use;
  }

protected:
  /// Emits a remark about a tensor (or, with T null, the checkpoint).
  void remark(llvm::StringRef Key, const TensorValue *T,
              const llvm::Twine &Msg);
  void warning(llvm::StringRef Key, const TensorValue *T,
               const llvm::Twine &Msg);
  /// Records that this pass removed state-dict entry Key (value V) from C,
  /// why, and which option would have kept it (Checkpoint::Removed).
  void recordRemoved(Checkpoint &C, llvm::StringRef Key, const ValuePtr &V,
                     const llvm::Twine &Reason, const llvm::Twine &Keep = "");
  /// An option matched nothing (a glob, a rule, a prefix): a warning when
  /// the user wrote the option, where it is most likely a typo; a remark
  /// when a named pipeline did, whose options cover variants of a layout
  /// that a given file need not all have.
  void matchedNothing(const llvm::Twine &Msg);
  /// The shared error for passes that need a state dict at the root:
  /// "pass 'p' needs a state dict at the root; run unwrap first" plus a
  /// note naming the root's keys.
  llvm::Error needsStateDict(const Checkpoint &C) const;
  /// An error "pass 'p': <Msg>".
  llvm::Error error(const llvm::Twine &Msg) const;

private:
  friend class OptionBase;
  friend class Statistic;
  const PassInfo &Info;
  std::vector<OptionBase *> Options;
  std::vector<Statistic *> Stats;
  DiagnosticHandler Handler;
  std::string PipelineName, TopPipeline;
  unsigned PipelineUse = 0;
  std::shared_ptr<const Target> TheTarget;
  bool Implicit = false;
};

/// Verification against a manifest found mismatches: the driver exits 1,
/// not 2. The message is the full report.
class VerificationFailure : public llvm::ErrorInfo<VerificationFailure> {
public:
  static char ID;
  explicit VerificationFailure(std::string Report)
      : Report(std::move(Report)) {}
  void log(llvm::raw_ostream &OS) const override { OS << Report; }
  std::error_code convertToErrorCode() const override;
  const std::string &report() const { return Report; }

private:
  std::string Report;
};

} // namespace wopt

/// Defines the factory Passes.def names for CLASS (a class in an anonymous
/// namespace with a `CLASS(const PassInfo &)` constructor).
#define WOPT_DEFINE_PASS_FACTORY(NAME, CLASS)                                  \
  std::unique_ptr<wopt::Pass> wopt::create##NAME##Pass(const PassInfo &Info) { \
    return std::make_unique<CLASS>(Info);                                      \
  }

#endif
