//===- PassManager.cpp - Runs a pipeline with instrumentation ------------===//
#include "wopt/Pass/PassManager.h"
#include "wopt/IR/Verifier.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/Format.h"
#include <chrono>

using namespace wopt;
using llvm::Error;
using llvm::StringRef;

void PassManager::addPass(std::unique_ptr<Pass> P) {
  assert(P && "adding a null pass");
  Passes.push_back(std::move(P));
}

void PassManager::printAsTextualPipeline(llvm::raw_ostream &OS) const {
  bool First = true;
  for (const std::unique_ptr<Pass> &P : Passes) {
    if (!First)
      OS << ',';
    P->printAsTextualPipeline(OS);
    First = false;
  }
}

void PassManager::printAsPipelineFile(llvm::raw_ostream &OS,
                                      StringRef Header) const {
  llvm::SmallVector<StringRef, 8> Lines;
  Header.rtrim().split(Lines, '\n');
  for (StringRef L : Lines)
    OS << (L.empty() ? "//" : "// ") << L << '\n';
  unsigned Use = 0;
  for (const std::unique_ptr<Pass> &P : Passes) {
    if (P->isImplicit()) {
      OS << "// (implied by the target: ";
      P->printAsTextualPipeline(OS);
      OS << ")\n";
      Use = 0;
      continue;
    }
    if (!P->pipelineUse()) {
      P->printAsPipelineFileEntry(OS);
      Use = 0;
      continue;
    }
    if (P->pipelineUse() != Use)
      OS << P->topPipeline() << "\n";
    Use = P->pipelineUse();
    std::string Entry;
    llvm::raw_string_ostream ES(Entry);
    P->printAsPipelineFileEntry(ES);
    llvm::SmallVector<StringRef, 8> Lines;
    StringRef(Entry).rtrim('\n').split(Lines, '\n');
    for (StringRef L : Lines)
      OS << "//   " << L << '\n';
  }
}

namespace {

/// What a run records for the reports printed at its end.
struct PassTiming {
  std::string Name;
  double Seconds;
};

/// The IR as the dumps print it, for -print-ir-after-change.
std::string printToString(const Checkpoint &C, const PrintOptions &Opts) {
  std::string S;
  llvm::raw_string_ostream OS(S);
  printCheckpoint(C, OS, Opts);
  return S;
}

void printBanner(llvm::raw_ostream &OS, StringRef Title) {
  OS << "===" << std::string(73, '-') << "===\n";
  size_t Pad = Title.size() < 79 ? (79 - Title.size()) / 2 : 0;
  OS << std::string(Pad, ' ') << Title << "\n";
  OS << "===" << std::string(73, '-') << "===\n";
}

void printTimingReport(llvm::raw_ostream &OS,
                       llvm::ArrayRef<PassTiming> Timings, double Total) {
  printBanner(OS, "... Pass execution timing report ...");
  OS << llvm::format("  Total Execution Time: %.4f seconds\n\n", Total);
  OS << "  ----Wall Time----  ----Name----\n";
  auto Row = [&](double S, StringRef Name) {
    double Pct = Total > 0 ? 100.0 * S / Total : 100.0;
    OS << llvm::format("  %8.4f (%5.1f%%)  ", S, Pct) << Name << '\n';
  };
  for (const PassTiming &T : Timings)
    Row(T.Seconds, T.Name);
  Row(Total, "Total");
}

void printStatistics(llvm::raw_ostream &OS,
                     llvm::ArrayRef<std::unique_ptr<Pass>> Passes) {
  printBanner(OS, "... Pass statistics report ...");
  for (const std::unique_ptr<Pass> &P : Passes) {
    OS << "'" << P->argument() << "'\n";
    for (const Statistic *S : P->statistics())
      OS << "  (S) " << S->value() << ' ' << S->name() << " - " << S->desc()
         << '\n';
  }
}

/// How long each tensor's history was before the run, so the rename table
/// shows only this run's steps.
using HistoryMarks = llvm::DenseMap<const TensorValue *, size_t>;

HistoryMarks markHistories(const Checkpoint &C) {
  HistoryMarks Marks;
  C.forEachTensor(
      [&](TensorValue &T) { Marks[&T] = T.provenance().History.size(); });
  return Marks;
}

void printRenameTable(llvm::raw_ostream &OS, const Checkpoint &C,
                      const HistoryMarks &Marks) {
  struct Row {
    std::string From, To, By;
  };
  std::vector<Row> Rows;
  C.forEachTensor([&](TensorValue &T) {
    const auto &History = T.provenance().History;
    auto It = Marks.find(&T);
    size_t Start = It == Marks.end() ? 0 : It->second;
    Row R;
    for (size_t I = Start; I < History.size(); ++I) {
      const Provenance::Step &S = History[I];
      if (S.From == S.To)
        continue; // a data rewrite, not a rename
      if (R.From.empty())
        R.From = S.From;
      R.To = S.To;
      R.By += (R.By.empty() ? "" : ", ") + S.Pass;
    }
    if (!R.From.empty() && R.From != R.To)
      Rows.push_back(std::move(R));
  });
  OS << "// ----- Rename table: " << Rows.size()
     << (Rows.size() == 1 ? " tensor" : " tensors") << " renamed ----- //\n";
  for (const Row &R : Rows)
    OS << R.From << " -> " << R.To << "  (" << R.By << ")\n";
}

} // namespace

static void printDump(llvm::raw_ostream &OS, StringRef When, StringRef Pass,
                      StringRef IR) {
  OS << "// -----// IR Dump " << When << ' ' << Pass << " //----- //\n" << IR;
  OS.flush();
}

Error PassManager::run(Checkpoint &C) {
  llvm::raw_ostream &OS = Out ? *Out : llvm::errs();
  std::vector<PassTiming> Timings;
  HistoryMarks Marks;
  if (Instr.PrintRenameTable)
    Marks = markHistories(C);
  auto Start = std::chrono::steady_clock::now();

  for (std::unique_ptr<Pass> &P : Passes) {
    StringRef Arg = P->argument();
    P->setDiagnosticHandler(Handler);
    P->setTarget(TheTarget);
    if (Instr.PrintBefore.count(Arg))
      printDump(OS, "Before", Arg, printToString(C, Instr.IRPrinting));
    bool DumpAfter = Instr.PrintAfterAll || Instr.PrintAfterChange ||
                     Instr.PrintAfter.count(Arg);
    std::string BeforeIR;
    if (DumpAfter && Instr.PrintAfterChange)
      BeforeIR = printToString(C, Instr.IRPrinting);

    auto PassStart = std::chrono::steady_clock::now();
    Error Err = P->run(C);
    std::chrono::duration<double> Took =
        std::chrono::steady_clock::now() - PassStart;
    Timings.push_back({Arg.str(), Took.count()});
    if (Err) {
      // A manifest mismatch keeps its type: the driver exits 1 for it.
      if (Err.isA<VerificationFailure>())
        return Err;
      std::string Msg = llvm::toString(std::move(Err));
      // "pipeline 'x' does not fit": the pass speaks for its pipeline.
      if (!StringRef(Msg).starts_with(("pass '" + Arg + "'").str()) &&
          !(StringRef(Msg).starts_with("pipeline '" + P->pipelineName().str() +
                                       "'") &&
            !P->pipelineName().empty()))
        Msg = ("pass '" + Arg + "': ").str() + Msg;
      return llvm::createStringError(Msg);
    }

    if (DumpAfter) {
      std::string AfterIR = printToString(C, Instr.IRPrinting);
      if (!Instr.PrintAfterChange || AfterIR != BeforeIR)
        printDump(OS, "After", Arg, AfterIR);
    }
    if (Instr.VerifyEach)
      if (Error VErr = verifyCheckpoint(C))
        return llvm::createStringError(
            ("pass '" + Arg + "' left invalid IR: ").str() +
            llvm::toString(std::move(VErr)));
  }

  std::chrono::duration<double> Total =
      std::chrono::steady_clock::now() - Start;
  if (Instr.TimePasses)
    printTimingReport(OS, Timings, Total.count());
  if (Instr.PassStatistics)
    printStatistics(OS, Passes);
  if (Instr.PrintRenameTable)
    printRenameTable(OS, C, Marks);
  OS.flush();
  return Error::success();
}
