# The third-party dependencies of wopt's libraries, in one place.
#
# The build includes this file, and so does the installed WoptConfig.cmake:
# a consumer finds and links exactly what wopt was built against. To add a
# dependency, add its find below and its target (or archive) to the
# Wopt::Deps link list; nothing else needs to change.
#
# In the build every find is REQUIRED. In WoptConfig.cmake
# (WOPT_FINDING_PACKAGE set), find_dependency reports a missing dependency
# through Wopt_FOUND instead, and this file returns early.

macro(_wopt_find_dependency)
  if(WOPT_FINDING_PACKAGE)
    find_dependency(${ARGN})
  else()
    find_package(${ARGN} REQUIRED)
  endif()
endmacro()

if(NOT WOPT_FINDING_PACKAGE)
  include(CMakeFindDependencyMacro)
endif()

# Debian's LLVM 19: its version file wants MAJOR.MINOR. The installed
# package hints at the LLVM the build used (_WOPT_LLVM_DIR).
_wopt_find_dependency(LLVM 19.1 CONFIG
  HINTS ${_WOPT_LLVM_DIR} /usr/lib/llvm-19/lib/cmake/llvm)
_wopt_find_dependency(ZLIB)
_wopt_find_dependency(Threads)

# wopt links LLVMSupport and LLVMDemangle as static archives, by path: the
# LLVM dylib costs ~48 MiB of resident memory and 60-100 ms of relocation at
# every start (docs/Performance.md), and LLVM's imported LLVMSupport target
# would drag in interface dependencies (zstd, z3) that what wopt uses of
# Support does not need: zlib (llvm::crc32), threads and libdl.
# A missing dependency: find_package(Wopt) reports it as not found, the
# build stops. A macro, so that return() leaves the including file.
macro(_wopt_missing msg)
  if(WOPT_FINDING_PACKAGE)
    set(Wopt_NOT_FOUND_MESSAGE "${msg}")
    set(Wopt_FOUND FALSE)
    return()
  endif()
  message(FATAL_ERROR "${msg}")
endmacro()

set(_wopt_llvm_archives
  ${LLVM_LIBRARY_DIR}/libLLVMSupport.a
  ${LLVM_LIBRARY_DIR}/libLLVMDemangle.a)
foreach(_wopt_archive IN LISTS _wopt_llvm_archives)
  if(NOT EXISTS ${_wopt_archive})
    _wopt_missing("wopt needs ${_wopt_archive} (Debian: llvm-19-dev)")
  endif()
endforeach()

# libdeflate (Debian libdeflate-dev) computes the CRC-32 of the bytes
# wopt's writers produce (lib/Serialization/ZipWriter.cpp). Version 1.14 has
# no CMake package; its static archive is linked by path, like LLVM's, so
# neither wopt nor a consumer needs libdeflate.so at run time. Only the build
# needs the header; a consumer needs the archive.
find_library(WOPT_LIBDEFLATE_LIBRARY NAMES libdeflate.a)
if(NOT WOPT_FINDING_PACKAGE)
  find_path(WOPT_LIBDEFLATE_INCLUDE_DIR libdeflate.h)
endif()
if(NOT WOPT_LIBDEFLATE_LIBRARY OR
   (NOT WOPT_FINDING_PACKAGE AND NOT WOPT_LIBDEFLATE_INCLUDE_DIR))
  _wopt_missing("wopt needs libdeflate.a and libdeflate.h (Debian: libdeflate-dev)")
endif()

# Usage requirements every wopt library passes on: LLVM's headers and
# definitions, and the link line above. GLOBAL so that a project that adds
# wopt with add_subdirectory sees it from its own directories.
if(NOT TARGET Wopt::Deps)
  if(WOPT_FINDING_PACKAGE)
    add_library(Wopt::Deps INTERFACE IMPORTED)
  else()
    add_library(Wopt::Deps INTERFACE IMPORTED GLOBAL)
  endif()
  separate_arguments(_wopt_llvm_defs UNIX_COMMAND "${LLVM_DEFINITIONS}")
  target_include_directories(Wopt::Deps SYSTEM INTERFACE ${LLVM_INCLUDE_DIRS})
  target_compile_definitions(Wopt::Deps INTERFACE ${_wopt_llvm_defs})
  target_link_libraries(Wopt::Deps INTERFACE
    ${_wopt_llvm_archives}
    ${WOPT_LIBDEFLATE_LIBRARY}
    ZLIB::ZLIB
    Threads::Threads
    ${CMAKE_DL_LIBS})
endif()

# Wopt::Torch, the LibTorch bridge: Debian's libtorch-dev
# (/usr/lib/x86_64-linux-gnu/cmake/Torch). Only when asked for, since
# TorchConfig.cmake is slow and pulls protobuf, glog and gflags.
# In WoptConfig.cmake a missing LibTorch only leaves Wopt::Torch out; the
# config decides whether that is an error (the component was required).
macro(wopt_find_torch)
  if(WOPT_FINDING_PACKAGE)
    find_package(Torch QUIET)
  else()
    find_package(Torch REQUIRED)
  endif()
endmacro()
