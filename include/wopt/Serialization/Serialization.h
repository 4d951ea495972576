//===- Serialization.h - Reading and writing checkpoint files ---*- C++ -*-===//
//
// The entry points the driver and library users call. Formats are detected
// from content on import and chosen by name or file extension on export.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_SERIALIZATION_SERIALIZATION_H
#define WOPT_SERIALIZATION_SERIALIZATION_H

#include "wopt/IR/Checkpoint.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"
#include <memory>

namespace wopt {

enum class FileFormat {
  Unknown,
  TorchZip,    ///< torch.save (PyTorch >= 1.6)
  TorchLegacy, ///< torch.save(_use_new_zipfile_serialization=False)
  TorchScript, ///< a zip with constants.pkl: refused
  TextIR,      ///< .wir
  Safetensors,
  FlatBuffers, ///< .wopt
  ShardIndex,  ///< model.safetensors.index.json: a set of shards
};

llvm::StringRef formatName(FileFormat F);
/// Looks at the first bytes (and, for zips, the record names).
FileFormat detectFormat(llvm::ArrayRef<uint8_t> Bytes);

/// Maps Path and imports it. Errors start with the file name:
/// "in.pth: data.pkl: opcode 0xff at byte 1234 is not a pickle opcode".
/// A shard index or a folder holding one imports the whole set
/// (wopt/Serialization/Shards.h).
llvm::Expected<std::unique_ptr<Checkpoint>> importFile(llvm::StringRef Path);

/// -verify-input-crc where nothing is copied into zip records (safetensors,
/// .wopt, text and no output): reads every storage reachable from C that is
/// still the data of an input zip record and checks it against the CRC-32
/// the input's central directory gives. Fails naming the first corrupt
/// record, or when no storage has a CRC to check. (A torch export checks
/// while it copies: TorchExportOptions::VerifyInputCRC.)
llvm::Error verifySourceCRCs(const Checkpoint &C);

/// Export formats; Summary and Manifest are views, not checkpoints.
enum class EmitKind {
  Text,
  Torch,
  Safetensors,
  FlatBuffers,
  Summary,
  Manifest,
  Diff ///< values against a -target checkpoint (lib/Manifest/Diff.h)
};
std::optional<EmitKind> parseEmitKind(llvm::StringRef Name);
/// From the extension of Path (.pth/.pt/.bin -> Torch, .wir -> Text, ...).
std::optional<EmitKind> emitKindForPath(llvm::StringRef Path);

/// The -emit=summary view: tensor count, bytes, dtypes, top-level
/// structure, opaque globals found.
void writeSummary(const Checkpoint &C, llvm::raw_ostream &OS);

/// Limits that bound the work and memory an untrusted file can cause.
struct ReaderLimits {
  uint64_t MaxStackDepth = 1u << 20;
  uint64_t MaxMemoSize = 1u << 24;
  uint64_t MaxNesting = MaxGraphDepth;
  uint64_t MaxOpcodes = 1ull << 31;
  uint64_t MaxValueNodes = 1ull << 26;
};

} // namespace wopt

#endif
