# Install rules: the shared library (libharmonics_dataset.so.<version> and its links) and
# the static one, the C header and the C++ wrapper, the tools (bin/cache_cli,
# bin/harmonics-clear-cache), the CMake package `harmonics_dataset` (targets
# harmonics::dataset and harmonics::dataset_static) and the pkg-config modules
# `harmonics_dataset` and `harmonics_dataset_static`. `cmake --install --strip` strips the
# libraries and the tool (HARMONICS_SPLIT_DEBUG_INFO keeps the library's debug info apart).
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

option(HARMONICS_SPLIT_DEBUG_INFO
       "With cmake --install --strip, keep the library's debug info in <libdir>/libharmonics_dataset.so.<version>.debug (objcopy), linked from the stripped library" OFF)

# The shared library is installed under its full version with the usual links:
#   libharmonics_dataset.so -> libharmonics_dataset.so.<major> -> libharmonics_dataset.so.<version>
# (the SONAME is .so.<major>, build.rs). The links are made at configure time in the build
# directory and installed as links.
set(HARMONICS_SHARED_LIBRARY_NAME
    "${CMAKE_SHARED_LIBRARY_PREFIX}harmonics_dataset${CMAKE_SHARED_LIBRARY_SUFFIX}")
set(HARMONICS_SHARED_LIBRARY_FILE "${HARMONICS_SHARED_LIBRARY_NAME}.${PROJECT_VERSION}")
set(HARMONICS_STATIC_LIBRARY_NAME
    "${CMAKE_STATIC_LIBRARY_PREFIX}harmonics_dataset${CMAKE_STATIC_LIBRARY_SUFFIX}")
set(_hd_links "${PROJECT_BINARY_DIR}/harmonics_install_links")
file(MAKE_DIRECTORY "${_hd_links}")
file(CREATE_LINK "${HARMONICS_SHARED_LIBRARY_FILE}" "${_hd_links}/${HARMONICS_SONAME}" SYMBOLIC)
file(CREATE_LINK "${HARMONICS_SONAME}" "${_hd_links}/${HARMONICS_SHARED_LIBRARY_NAME}" SYMBOLIC)

install(FILES "$<TARGET_FILE:${_hd_shared_target}>"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" RENAME "${HARMONICS_SHARED_LIBRARY_FILE}"
        PERMISSIONS ${_hd_lib_permissions} COMPONENT harmonics_dataset_runtime)
install(FILES "${_hd_links}/${HARMONICS_SONAME}"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT harmonics_dataset_runtime)
install(FILES "${_hd_links}/${HARMONICS_SHARED_LIBRARY_NAME}"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT harmonics_dataset_development)
install(FILES "$<TARGET_FILE:${_hd_static_target}>"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT harmonics_dataset_development)
install(FILES "${HARMONICS_INCLUDE_DIR}/harmonics_dataset.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT harmonics_dataset_development)
install(DIRECTORY "${HARMONICS_INCLUDE_DIR}/harmonics"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT harmonics_dataset_development
        FILES_MATCHING PATTERN "*.hpp")

# `cmake --install --strip` strips what install(TARGETS) installs; cargo's files are
# installed with install(FILES), so they are stripped here: the shared library and the
# tool fully (the exported symbols stay in .dynsym), the static library of its debug
# info only (its symbols are what a program links against).
#
# hd_installed_path(<out> <dir> <file>): the installed path, as the install script sees it.
function(hd_installed_path out dir file)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "\$ENV{DESTDIR}${dir}/${file}" PARENT_SCOPE)
  else()
    set(${out} "\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${dir}/${file}" PARENT_SCOPE)
  endif()
endfunction()
# hd_install_when_stripping(<component> <command>...): install code that runs each
# ;-separated command (its arguments separated by '|') when installing with --strip.
function(hd_install_when_stripping component)
  set(code "if(CMAKE_INSTALL_DO_STRIP)\n")
  foreach(command IN LISTS ARGN)
    string(REPLACE "|" "\" \"" quoted "${command}")
    string(REPLACE "|" " " shown "${command}")
    string(APPEND code "  execute_process(COMMAND \"${quoted}\" RESULT_VARIABLE rc)\n"
                       "  if(NOT rc EQUAL 0)\n"
                       "    message(FATAL_ERROR \"harmonics_dataset: failed (\${rc}): ${shown}\")\n"
                       "  endif()\n")
  endforeach()
  string(APPEND code "endif()\n")
  install(CODE "${code}" COMPONENT ${component})
endfunction()
hd_installed_path(_hd_so_installed "${CMAKE_INSTALL_LIBDIR}" "${HARMONICS_SHARED_LIBRARY_FILE}")
hd_installed_path(_hd_a_installed "${CMAKE_INSTALL_LIBDIR}" "${HARMONICS_STATIC_LIBRARY_NAME}")
if(NOT CMAKE_STRIP)
  message(STATUS "harmonics_dataset: no strip program: cmake --install --strip will not strip the libraries")
else()
  if(HARMONICS_SPLIT_DEBUG_INFO)
    if(NOT CMAKE_OBJCOPY)
      message(FATAL_ERROR "HARMONICS_SPLIT_DEBUG_INFO needs objcopy (CMAKE_OBJCOPY is not set)")
    endif()
    # The debug info beside the library, where gdb looks for a .gnu_debuglink target.
    hd_install_when_stripping(harmonics_dataset_runtime
      "${CMAKE_OBJCOPY}|--only-keep-debug|${_hd_so_installed}|${_hd_so_installed}.debug"
      "${CMAKE_STRIP}|--strip-unneeded|${_hd_so_installed}"
      "${CMAKE_OBJCOPY}|--add-gnu-debuglink=${_hd_so_installed}.debug|${_hd_so_installed}")
  else()
    hd_install_when_stripping(harmonics_dataset_runtime "${CMAKE_STRIP}|--strip-unneeded|${_hd_so_installed}")
  endif()
  hd_install_when_stripping(harmonics_dataset_development "${CMAKE_STRIP}|--strip-debug|${_hd_a_installed}")
endif()

# The tools: cache_cli (list, verify, prune, clear) and scripts/clear-cache.sh as
# harmonics-clear-cache.
if(_hd_cli_target)
  install(PROGRAMS "$<TARGET_FILE:${_hd_cli_target}>"
          DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT harmonics_dataset_runtime)
  if(CMAKE_STRIP)
    hd_installed_path(_hd_cli_installed "${CMAKE_INSTALL_BINDIR}" "cache_cli${CMAKE_EXECUTABLE_SUFFIX}")
    hd_install_when_stripping(harmonics_dataset_runtime "${CMAKE_STRIP}|${_hd_cli_installed}")
  endif()
endif()
install(PROGRAMS "${PROJECT_SOURCE_DIR}/scripts/clear-cache.sh"
        DESTINATION "${CMAKE_INSTALL_BINDIR}" RENAME harmonics-clear-cache
        COMPONENT harmonics_dataset_runtime)

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
# harmonics_dataset: the shared library (Libs.private: what a fully static link, -static,
# needs). harmonics_dataset_static: the archive itself, the rest of the program linked as
# usual (pkg-config cannot make -lharmonics_dataset pick the .a over the .so).
foreach(_hd_pc harmonics_dataset harmonics_dataset_static)
  configure_file("${CMAKE_CURRENT_LIST_DIR}/${_hd_pc}.pc.in" "${PROJECT_BINARY_DIR}/${_hd_pc}.pc" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/${_hd_pc}.pc"
          DESTINATION "${_hd_pc_dir}" COMPONENT harmonics_dataset_development)
endforeach()
