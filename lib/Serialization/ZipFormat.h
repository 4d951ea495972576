//===- ZipFormat.h - Zip record signatures and sizes ------------*- C++ -*-===//
//
// The facts of the zip format that both the reader and the writer rely on
// (APPNOTE.TXT): record signatures and fixed record sizes.
//
//===----------------------------------------------------------------------===//
#ifndef WOPT_LIB_SERIALIZATION_ZIPFORMAT_H
#define WOPT_LIB_SERIALIZATION_ZIPFORMAT_H

#include <cstdint>

namespace wopt {
namespace zip {

constexpr uint32_t LocalHeaderSig = 0x04034b50;
constexpr uint32_t CentralHeaderSig = 0x02014b50;
constexpr uint32_t DataDescriptorSig = 0x08074b50;
constexpr uint32_t EndSig = 0x06054b50;
constexpr uint32_t Zip64EndSig = 0x06064b50;
constexpr uint32_t Zip64LocatorSig = 0x07064b50;

constexpr uint64_t LocalHeaderSize = 30;
constexpr uint64_t CentralHeaderSize = 46;
constexpr uint64_t EndSize = 22;
constexpr uint64_t Zip64EndSize = 56;
constexpr uint64_t Zip64LocatorSize = 20;

} // namespace zip
} // namespace wopt

#endif
