# ctest test install_consumer_static_pkgconfig (cmake -P): the consumer compiled with
# `pkg-config --static --cflags --libs harmonics_dataset_static` against the installed tree
# (fixture install_tree) has no libharmonics_dataset.so among its libraries (ldd) and runs
# with no rpath and no LD_LIBRARY_PATH.
#
# Inputs (-D): HD_PREFIX HD_LIBDIR HD_CONSUMER_SOURCE HD_WORK_DIR HD_CXX_COMPILER

set(HD_TEST_NAME install_consumer_static_pkgconfig)
set(STDOUT_ONLY ON)
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/installed_library.cmake")

file(REMOVE_RECURSE "${HD_WORK_DIR}")
file(MAKE_DIRECTORY "${HD_WORK_DIR}")
hd_pkg_config_flags(pc_flags "${HD_PREFIX}" "${HD_LIBDIR}" --static --cflags --libs harmonics_dataset_static)
set(exe "${HD_WORK_DIR}/consumer_static_pkgconfig")
run_step("compiling the static pkg-config consumer"
  "${HD_CXX_COMPILER}" -std=c++17 -Wall -Wextra -Werror "${HD_CONSUMER_SOURCE}/main.cpp" -o "${exe}" ${pc_flags})

find_program(LDD ldd)
if(NOT LDD)
  message(FATAL_ERROR "install_consumer_static_pkgconfig: ldd not found")
endif()
run_step("ldd ${exe}" "${LDD}" "${exe}")
if(step_output MATCHES "libharmonics_dataset")
  message(FATAL_ERROR "install_consumer_static_pkgconfig: the static consumer loads the shared library:\n${step_output}")
endif()
message(STATUS "ldd: no libharmonics_dataset.so")

run_step("running the static pkg-config consumer"
  "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH "HARMONICS_CACHE_DIR=${HD_WORK_DIR}/cache" "${exe}")
if(NOT step_output MATCHES "record 2: 4 5.25\ncache created\n$")
  message(FATAL_ERROR "install_consumer_static_pkgconfig: the consumer printed\n${step_output}")
endif()
message("install_consumer_static_pkgconfig: linked the archive through pkg-config --static, ran without the .so")
