# Install rules: the shared and static libraries, the C header and the C++ wrapper,
# the tools (bin/cache_cli, bin/harmonics-clear-cache),
# the CMake package `harmonics_dataset` (targets harmonics::dataset and
# harmonics::dataset_static) and the pkg-config module `harmonics_dataset`.
#
# The libraries are built by cargo, not by CMake, so there is no install(EXPORT): the
# package config declares the IMPORTED targets itself, relative to its own location,
# and the pkg-config file locates the prefix from ${pcfiledir}. Both stay correct under
# `cmake --install --prefix` and when the installed tree is moved.

include(CMakePackageConfigHelpers)
include("${CMAKE_CURRENT_LIST_DIR}/HarmonicsNativeLibs.cmake")

set(HARMONICS_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/harmonics_dataset" CACHE STRING
    "Where the CMake package files are installed (relative to the prefix)")

set(_hd_lib_permissions OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                        WORLD_READ WORLD_EXECUTE)
install(FILES "$<TARGET_FILE:${_hd_shared_target}>"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" PERMISSIONS ${_hd_lib_permissions}
        COMPONENT harmonics_dataset_runtime)
install(FILES "$<TARGET_FILE:${_hd_static_target}>"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT harmonics_dataset_development)
install(FILES "${HARMONICS_INCLUDE_DIR}/harmonics_dataset.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT harmonics_dataset_development)
install(DIRECTORY "${HARMONICS_INCLUDE_DIR}/harmonics"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT harmonics_dataset_development
        FILES_MATCHING PATTERN "*.hpp")

# The tools: cache_cli (list, verify, prune, clear) and scripts/clear-cache.sh as
# harmonics-clear-cache.
if(_hd_cli_target)
  install(PROGRAMS "$<TARGET_FILE:${_hd_cli_target}>"
          DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT harmonics_dataset_runtime)
endif()
install(PROGRAMS "${PROJECT_SOURCE_DIR}/scripts/clear-cache.sh"
        DESTINATION "${CMAKE_INSTALL_BINDIR}" RENAME harmonics-clear-cache
        COMPONENT harmonics_dataset_runtime)

# The names of the installed files, for the config template.
set(HARMONICS_SHARED_LIBRARY_NAME
    "${CMAKE_SHARED_LIBRARY_PREFIX}harmonics_dataset${CMAKE_SHARED_LIBRARY_SUFFIX}")
set(HARMONICS_STATIC_LIBRARY_NAME
    "${CMAKE_STATIC_LIBRARY_PREFIX}harmonics_dataset${CMAKE_STATIC_LIBRARY_SUFFIX}")

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/harmonics_datasetConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/harmonics_datasetConfig.cmake"
  INSTALL_DESTINATION "${HARMONICS_INSTALL_CMAKEDIR}"
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
# 0.x: a minor version bump may break the API.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/harmonics_datasetConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/harmonics_datasetConfig.cmake"
              "${PROJECT_BINARY_DIR}/harmonics_datasetConfigVersion.cmake"
        DESTINATION "${HARMONICS_INSTALL_CMAKEDIR}" COMPONENT harmonics_dataset_development)

# pkg-config: relocatable through ${pcfiledir} unless the dirs were given as absolute paths.
set(_hd_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(HARMONICS_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(HARMONICS_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(HARMONICS_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _hd_pc_up "/prefix/${_hd_pc_dir}" "/prefix")
  string(REGEX REPLACE "/$" "" _hd_pc_up "${_hd_pc_up}")
  set(HARMONICS_PC_PREFIX "\${pcfiledir}/${_hd_pc_up}")
  set(HARMONICS_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(HARMONICS_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
string(REPLACE ";" " " HARMONICS_PC_LIBS_PRIVATE "${HARMONICS_NATIVE_STATIC_LIBS}")
configure_file("${CMAKE_CURRENT_LIST_DIR}/harmonics_dataset.pc.in"
               "${PROJECT_BINARY_DIR}/harmonics_dataset.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/harmonics_dataset.pc"
        DESTINATION "${_hd_pc_dir}" COMPONENT harmonics_dataset_development)
