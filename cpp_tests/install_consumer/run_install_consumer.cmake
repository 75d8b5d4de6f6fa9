# ctest test install_consumer (cmake -P): builds and runs this directory's consumer two
# ways against the prefix the install_tree test installed (its fixture):
#   1. a CMake project: find_package(harmonics_dataset CONFIG REQUIRED) + harmonics::dataset
#      (and harmonics::dataset_static);
#   2. a plain compiler command from `pkg-config --cflags --libs harmonics_dataset` plus an
#      rpath (docs/integration.md's recipe), run without LD_LIBRARY_PATH;
#   3. the installed bin/cache_cli and bin/harmonics-clear-cache on that consumer's cache.
# Each consumer runs twice: the first run creates its cache, the second reuses it.
#
# Inputs (-D): HD_PREFIX HD_CONFIG HD_CONSUMER_SOURCE HD_WORK_DIR HD_GENERATOR
#              HD_CXX_COMPILER HD_LIBDIR

set(HD_TEST_NAME install_consumer)
set(STDOUT_ONLY ON)
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/installed_library.cmake")

set(prefix "${HD_PREFIX}")
file(REMOVE_RECURSE "${HD_WORK_DIR}")
file(MAKE_DIRECTORY "${HD_WORK_DIR}")

set(config_args "")
if(HD_CONFIG)
  set(config_args --config "${HD_CONFIG}")
endif()

# The installed tools run from the prefix, on the caches the consumers leave (below).
function(check_tools cache_dir)
  run_step("${prefix}/bin/cache_cli list" "${CMAKE_COMMAND}" -E env "HARMONICS_CACHE_DIR=${cache_dir}"
           "${prefix}/bin/cache_cli" list)
  if(NOT step_output MATCHES "consumer[.]cache")
    message(FATAL_ERROR "install_consumer: the installed cache_cli listed\n${step_output}\n"
                        "without consumer.cache")
  endif()
  run_step("${prefix}/bin/cache_cli verify" "${CMAKE_COMMAND}" -E env "HARMONICS_CACHE_DIR=${cache_dir}"
           "${prefix}/bin/cache_cli" verify)
  run_step("${prefix}/bin/harmonics-clear-cache" "${CMAKE_COMMAND}" -E env
           "HARMONICS_CACHE_DIR=${cache_dir}" "${prefix}/bin/harmonics-clear-cache")
  if(EXISTS "${cache_dir}")
    message(FATAL_ERROR "install_consumer: harmonics-clear-cache left ${cache_dir}")
  endif()
  message(STATUS "installed bin/cache_cli listed and verified the cache, bin/harmonics-clear-cache removed it")
endfunction()

set(expected_records "record 0: 0.5 1\nrecord 1: 2 3\nrecord 2: 4 5.25\n")

# run_consumer(<label> <cache dir> <command>...): runs it twice, checks both outputs.
function(run_consumer label cache_dir)
  foreach(round created reused)
    run_step("${label} (${round} run)" "${CMAKE_COMMAND}" -E env "HARMONICS_CACHE_DIR=${cache_dir}" ${ARGN})
    if(NOT step_output STREQUAL "${expected_records}cache ${round}\n")
      message(FATAL_ERROR "install_consumer: ${label} printed\n${step_output}\nexpected\n"
                          "${expected_records}cache ${round}")
    endif()
  endforeach()
  message(STATUS "${label}: 3 records cached and read back")
endfunction()

# 1. find_package()
set(build "${HD_WORK_DIR}/build")
set(build_type_args "")
if(HD_CONFIG)
  set(build_type_args "-DCMAKE_BUILD_TYPE=${HD_CONFIG}")
endif()
run_step("configuring the find_package consumer"
  "${CMAKE_COMMAND}" -S "${HD_CONSUMER_SOURCE}" -B "${build}" -G "${HD_GENERATOR}"
  "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_COMPILER=${HD_CXX_COMPILER}" ${build_type_args})
run_step("building the find_package consumer" "${CMAKE_COMMAND}" --build "${build}" ${config_args})
set(exe_dir "${build}")
if(EXISTS "${build}/${HD_CONFIG}/consumer")  # multi-config generators
  set(exe_dir "${build}/${HD_CONFIG}")
endif()
run_consumer("find_package consumer (harmonics::dataset)" "${HD_WORK_DIR}/cache-shared" "${exe_dir}/consumer")
run_consumer("find_package consumer (harmonics::dataset_static)" "${HD_WORK_DIR}/cache-static"
             "${exe_dir}/consumer_static")

# 2. pkg-config
hd_pkg_config_flags(pc_flags "${prefix}" "${HD_LIBDIR}" --cflags --libs harmonics_dataset)
set(pc_exe "${HD_WORK_DIR}/consumer_pkgconfig")
# As docs/integration.md says for a prefix outside the loader's path: an rpath from the .pc's libdir.
hd_pkg_config_flags(pc_libdir "${prefix}" "${HD_LIBDIR}" --variable=libdir harmonics_dataset)
run_step("compiling the pkg-config consumer"
  "${HD_CXX_COMPILER}" -std=c++17 -Wall -Wextra -Werror "${HD_CONSUMER_SOURCE}/main.cpp" -o "${pc_exe}"
  ${pc_flags} "-Wl,-rpath,${pc_libdir}")
run_consumer("pkg-config consumer" "${HD_WORK_DIR}/cache-pkgconfig" "${pc_exe}")
check_tools("${HD_WORK_DIR}/cache-pkgconfig")

message("install_consumer: find_package and pkg-config consumers passed")
