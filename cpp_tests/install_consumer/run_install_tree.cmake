# ctest test install_tree (cmake -P; the fixture the install_* tests need): installs the
# build tree with `cmake --install --strip` into a scratch prefix, checks that every file
# is there, and checks the shared library (installed_library.cmake): versioned SONAME, the
# .so -> .so.N -> .so.N.N.N links, stripped, and under 10 MB when the crate was built
# with the release profile (a debug build is checked stripped only: its code alone is
# larger; corrosion_consumer checks the size of a release install).
#
# Inputs (-D): HD_BUILD_DIR HD_CONFIG HD_PREFIX HD_LIBDIR HD_PROFILE

set(HD_TEST_NAME install_tree)
set(STDOUT_ONLY ON)
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/installed_library.cmake")

file(REMOVE_RECURSE "${HD_PREFIX}")
set(config_args "")
if(HD_CONFIG)
  set(config_args --config "${HD_CONFIG}")
endif()
run_step("cmake --install --strip" "${CMAKE_COMMAND}" --install "${HD_BUILD_DIR}" --prefix "${HD_PREFIX}"
         --strip ${config_args})

foreach(f "${HD_LIBDIR}/libharmonics_dataset.so" "${HD_LIBDIR}/libharmonics_dataset.a"
          bin/cache_cli bin/harmonics-clear-cache
          include/harmonics_dataset.h include/harmonics/dataset.hpp
          "${HD_LIBDIR}/cmake/harmonics_dataset/harmonics_datasetConfig.cmake"
          "${HD_LIBDIR}/cmake/harmonics_dataset/harmonics_datasetConfigVersion.cmake"
          "${HD_LIBDIR}/pkgconfig/harmonics_dataset.pc"
          "${HD_LIBDIR}/pkgconfig/harmonics_dataset_static.pc")
  if(NOT EXISTS "${HD_PREFIX}/${f}")
    message(FATAL_ERROR "install_tree: ${f} was not installed")
  endif()
endforeach()

set(max_bytes 0)
if(HD_PROFILE STREQUAL "release")
  set(max_bytes 10485760)
endif()
hd_check_installed_library("${HD_PREFIX}" "${HD_LIBDIR}" ${max_bytes})
if(NOT max_bytes)
  message(STATUS "(the ${HD_PROFILE} library: its size is not checked here)")
endif()
message("install_tree: installed and stripped into ${HD_PREFIX}")
