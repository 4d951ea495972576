//===- Serialization.cpp - Format detection and dispatch ------------------===//
#include "wopt/Serialization/Serialization.h"
#include "DataCopy.h"
#include "wopt/IR/TextIR.h"
#include "wopt/Serialization/FlatBuffers.h"
#include "wopt/Serialization/PickleReader.h"
#include "wopt/Serialization/Safetensors.h"
#include "wopt/Serialization/Shards.h"
#include "wopt/Serialization/Torch.h"
#include "wopt/Serialization/ZipWriter.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace wopt;
using namespace llvm;

StringRef wopt::formatName(FileFormat F) {
  switch (F) {
  case FileFormat::Unknown:
    return "unknown";
  case FileFormat::TorchZip:
    return "torch-zip";
  case FileFormat::TorchLegacy:
    return "torch-legacy";
  case FileFormat::TorchScript:
    return "torchscript";
  case FileFormat::TextIR:
    return "wir";
  case FileFormat::Safetensors:
    return "safetensors";
  case FileFormat::FlatBuffers:
    return "wopt-flatbuffers";
  case FileFormat::ShardIndex:
    return "shard-index";
  }
  llvm_unreachable("bad format");
}

/// safetensors: a u64 header length, then JSON. Recognised by a length
/// whose top three bytes are zero (no text file starts with three NULs at
/// bytes 5..7; headers are at most 100 MB) or, whatever the length, by a
/// JSON object at byte 8, so that a malformed file gets the safetensors
/// rule it breaks rather than a generic error.
static bool isSafetensors(StringRef S) {
  if (S.size() < 8)
    return false;
  uint64_t N = support::endian::read64le(S.data());
  if (N < (1ull << 40))
    return true;
  StringRef Rest = S.drop_front(8).ltrim(" \t\r\n");
  return Rest.starts_with("{");
}

FileFormat wopt::detectFormat(ArrayRef<uint8_t> Bytes) {
  StringRef S(reinterpret_cast<const char *>(Bytes.data()), Bytes.size());
  if (S.starts_with("PK\x03\x04") || S.starts_with("PK\x05\x06"))
    return FileFormat::TorchZip; // importTorch refuses TorchScript archives
  if (looksLikeLegacyTorch(Bytes))
    return FileFormat::TorchLegacy;
  if (S.size() >= 8 && S.substr(4, 4) == "WOPT")
    return FileFormat::FlatBuffers;
  if (looksLikeShardIndex(S))
    return FileFormat::ShardIndex;
  if (looksLikeTextIR(S))
    return FileFormat::TextIR;
  if (isSafetensors(S))
    return FileFormat::Safetensors;
  return FileFormat::Unknown;
}

static Expected<std::unique_ptr<Checkpoint>>
importText(std::shared_ptr<SourceFile> Source) {
  StringRef Text(reinterpret_cast<const char *>(Source->bytes().data()),
                 Source->size());
  auto C = parseCheckpoint(MemoryBufferRef(Text, Source->path()));
  if (!C)
    return C.takeError();
  // The parser keeps the format the header names (a print of a .pth says
  // torch-zip); without one it is "wir".
  (*C)->SourcePath = Source->path().str();
  return C;
}

Expected<std::unique_ptr<Checkpoint>> wopt::importFile(StringRef Path) {
  if (Path != "-" && sys::fs::is_directory(Path))
    return importShardDirectory(Path);
  auto Source = SourceFile::open(Path);
  if (!Source)
    return Source.takeError();
  std::shared_ptr<SourceFile> S = std::move(*Source);
  switch (detectFormat(S->bytes())) {
  case FileFormat::TorchZip:
  case FileFormat::TorchLegacy:
  case FileFormat::TorchScript:
    return importTorch(S);
  case FileFormat::TextIR:
    return importText(S);
  case FileFormat::Safetensors:
    return importSafetensors(S);
  case FileFormat::FlatBuffers:
    return importFlatBuffers(S);
  case FileFormat::ShardIndex:
    if (Path == "-")
      return createStringError(inconvertibleErrorCode(),
                               "<stdin>: a shard index names files beside "
                               "it; give its path, not stdin");
    return importShardIndex(Path);
  case FileFormat::Unknown:
    break;
  }
  if (S->size() == 0)
    return createStringError(inconvertibleErrorCode(),
                             Path + ": file is empty");
  return createStringError(
      inconvertibleErrorCode(),
      Path + ": not a checkpoint wopt can read (expected a torch.save zip or "
             "legacy file, safetensors, .wopt, a shard index (.index.json) or "
             ".wir text)");
}

std::optional<EmitKind> wopt::parseEmitKind(StringRef Name) {
  return StringSwitch<std::optional<EmitKind>>(Name)
      .Cases("text", "wir", EmitKind::Text)
      .Cases("torch", "pth", EmitKind::Torch)
      .Case("safetensors", EmitKind::Safetensors)
      .Cases("flatbuffers", "wopt", EmitKind::FlatBuffers)
      .Case("summary", EmitKind::Summary)
      .Case("manifest", EmitKind::Manifest)
      .Case("diff", EmitKind::Diff)
      .Default(std::nullopt);
}

std::optional<EmitKind> wopt::emitKindForPath(StringRef Path) {
  StringRef Ext = sys::path::extension(Path);
  return StringSwitch<std::optional<EmitKind>>(Ext.lower())
      .Cases(".pth", ".pt", ".bin", ".ckpt", ".tar", EmitKind::Torch)
      .Case(".wir", EmitKind::Text)
      .Case(".safetensors", EmitKind::Safetensors)
      .Case(".wopt", EmitKind::FlatBuffers)
      .Case(".json", EmitKind::Manifest)
      .Default(std::nullopt);
}

Error wopt::verifySourceCRCs(const Checkpoint &C) {
  bool Any = false;
  for (const StorageRef &S : C.storages()) {
    if (!S->sourceCRC())
      continue;
    Any = true;
    uint32_t CRC;
    if (S->source()->fd() < 0) {
      CRC = crc32Update(0, S->bytes());
    } else {
      Expected<uint32_t> Got = detail::crcOfFileRange(
          S->source()->fd(), S->sourceOffset(), S->numBytes());
      if (!Got)
        return createStringError(inconvertibleErrorCode(),
                                 S->source()->path() + ": " +
                                     toString(Got.takeError()));
      CRC = *Got;
    }
    if (Error E = detail::checkSourceCRC(*S, CRC))
      return E;
  }
  return Any ? Error::success() : detail::nothingToVerify();
}
