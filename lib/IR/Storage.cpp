//===- Storage.cpp - Storages and mapped source files ---------------------===//
#include "wopt/IR/Storage.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Process.h"
#include <cassert>
#include <cstring>
#include <unistd.h>

using namespace wopt;
using namespace llvm;

Expected<std::shared_ptr<SourceFile>> SourceFile::open(StringRef Path) {
  std::shared_ptr<SourceFile> F(new SourceFile());
  F->Path = Path.str();
  if (Path == "-") {
    auto Buf = MemoryBuffer::getSTDIN();
    if (!Buf)
      return createStringError(Buf.getError(), "<stdin>: cannot read: " +
                                                   Buf.getError().message());
    F->Buffer = std::move(*Buf);
    return F;
  }
  int FD;
  if (std::error_code EC = sys::fs::openFileForRead(Path, FD))
    return createStringError(EC, Path + ": cannot open: " + EC.message());
  sys::fs::file_status Status;
  if (std::error_code EC = sys::fs::status(FD, Status)) {
    ::close(FD);
    return createStringError(EC, Path + ": cannot stat: " + EC.message());
  }
  if (Status.type() == sys::fs::file_type::directory_file) {
    ::close(FD);
    return createStringError(inconvertibleErrorCode(),
                             Path + ": is a directory");
  }
  // Not volatile, no null terminator: large files are mapped, not read.
  auto Buf = MemoryBuffer::getOpenFile(sys::fs::convertFDToNativeFile(FD), Path,
                                       Status.getSize(),
                                       /*RequiresNullTerminator=*/false);
  if (!Buf) {
    ::close(FD);
    return createStringError(
        Buf.getError(), Path + ": cannot map: " + Buf.getError().message());
  }
  F->Buffer = std::move(*Buf);
  F->FD = FD;
  return F;
}

std::shared_ptr<SourceFile>
SourceFile::fromBuffer(std::unique_ptr<MemoryBuffer> Buffer, StringRef Name) {
  std::shared_ptr<SourceFile> F(new SourceFile());
  F->Path = Name.str();
  F->Buffer = std::move(Buffer);
  return F;
}

SourceFile::~SourceFile() {
  if (FD >= 0)
    ::close(FD);
}

std::shared_ptr<Storage> Storage::mapped(std::string Key, DType ElemType,
                                         std::shared_ptr<SourceFile> Source,
                                         uint64_t Offset, uint64_t NumBytes) {
  assert(Source && Offset <= Source->size() &&
         NumBytes <= Source->size() - Offset && "unchecked storage range");
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->NumBytes = NumBytes;
  S->Kind = DataKind::Mapped;
  S->Source = std::move(Source);
  S->SourceOffset = Offset;
  return S;
}

std::shared_ptr<Storage> Storage::owned(std::string Key, DType ElemType,
                                        std::vector<uint8_t> Bytes) {
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->setOwnedBytes(std::move(Bytes));
  return S;
}

std::shared_ptr<Storage> Storage::elided(std::string Key, DType ElemType,
                                         uint64_t NumBytes) {
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->NumBytes = NumBytes;
  return S;
}

std::shared_ptr<Storage> Storage::computed(std::string Key, DType ElemType,
                                           uint64_t NumBytes,
                                           Producer Produce) {
  std::shared_ptr<Storage> S(new Storage());
  S->Key = std::move(Key);
  S->ElemType = ElemType;
  S->NumBytes = NumBytes;
  S->Kind = DataKind::Computed;
  S->Produce = std::move(Produce);
  return S;
}

ArrayRef<uint8_t> Storage::bytes() const {
  switch (Kind) {
  case DataKind::Elided:
    return {};
  case DataKind::Owned:
    return Owned;
  case DataKind::Mapped:
    return Source->bytes().slice(SourceOffset, NumBytes);
  case DataKind::Computed:
    std::call_once(Materialized, [this] {
      Cache.resize(NumBytes);
      // A producer fails only on a bug or an I/O error of its own source;
      // bytes() has no error channel, so that is fatal here.
      if (Error E = Produce(0, Cache))
        report_fatal_error(std::move(E));
    });
    return Cache;
  }
  llvm_unreachable("bad storage kind");
}

Error Storage::read(uint64_t Offset, MutableArrayRef<uint8_t> Out) const {
  assert(Offset <= NumBytes && Out.size() <= NumBytes - Offset &&
         "read past the end of a storage");
  if (Out.empty())
    return Error::success();
  switch (Kind) {
  case DataKind::Elided:
    return createStringError(inconvertibleErrorCode(),
                             "storage '" + Key + "' has no data (elided)");
  case DataKind::Computed:
    return Produce(Offset, Out);
  case DataKind::Owned:
  case DataKind::Mapped:
    if (!Out.empty())
      std::memcpy(Out.data(), bytes().data() + Offset, Out.size());
    return Error::success();
  }
  llvm_unreachable("bad storage kind");
}

void Storage::setOwnedBytes(std::vector<uint8_t> Bytes) {
  Owned = std::move(Bytes);
  NumBytes = Owned.size();
  Kind = DataKind::Owned;
  Produce = nullptr;
  Source.reset();
  SourceOffset = 0;
  SourceRecordName.clear();
  SourceCRC.reset();
}

void Storage::setSourceRecord(std::string Name, uint32_t CRC) {
  assert(Kind == DataKind::Mapped && "only mapped bytes come from a record");
  SourceRecordName = std::move(Name);
  SourceCRC = CRC ? std::optional<uint32_t>(CRC) : std::nullopt;
}
