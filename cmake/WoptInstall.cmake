# Install rules and the Wopt CMake package (find_package(Wopt CONFIG)).
#
#   <prefix>/bin/wopt
#   <prefix>/include/wopt/...            public headers (+ the generated Version.h)
#   <prefix>/lib/libWopt*.a
#   <prefix>/lib/cmake/Wopt/             WoptConfig.cmake, WoptConfigVersion.cmake,
#                                        WoptDependencies.cmake, Wopt*Targets.cmake
#
# The same package is also written into the build tree, so a consumer can
# point Wopt_DIR at a build without installing it.
include(CMakePackageConfigHelpers)

# Only headers: generated ones (the FlatBuffers schema code) live in the
# build tree and stay private to lib/Serialization.
set(_wopt_header_excludes)
if(NOT WOPT_ENABLE_TORCH)
  set(_wopt_header_excludes PATTERN Torch EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/wopt
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h" PATTERN "*.def" ${_wopt_header_excludes})
install(FILES ${PROJECT_BINARY_DIR}/include/wopt/Version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/wopt)

configure_file(${CMAKE_CURRENT_LIST_DIR}/WoptConfig.cmake.in
  ${PROJECT_BINARY_DIR}/WoptConfig.cmake @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/WoptDependencies.cmake
  ${PROJECT_BINARY_DIR}/WoptDependencies.cmake COPYONLY)
# 0.x: a minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/WoptConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)

install(EXPORT WoptTargets NAMESPACE Wopt:: DESTINATION ${WOPT_INSTALL_CMAKEDIR})
export(EXPORT WoptTargets NAMESPACE Wopt:: FILE ${PROJECT_BINARY_DIR}/WoptTargets.cmake)
if(WOPT_ENABLE_TORCH)
  install(EXPORT WoptTorchTargets NAMESPACE Wopt:: DESTINATION ${WOPT_INSTALL_CMAKEDIR})
  export(EXPORT WoptTorchTargets NAMESPACE Wopt::
    FILE ${PROJECT_BINARY_DIR}/WoptTorchTargets.cmake)
endif()
install(FILES
  ${PROJECT_BINARY_DIR}/WoptConfig.cmake
  ${PROJECT_BINARY_DIR}/WoptConfigVersion.cmake
  ${PROJECT_BINARY_DIR}/WoptDependencies.cmake
  DESTINATION ${WOPT_INSTALL_CMAKEDIR})
