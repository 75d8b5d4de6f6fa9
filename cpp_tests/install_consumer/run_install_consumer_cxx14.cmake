# ctest test install_consumer_cxx14 (cmake -P): a consumer project that sets
# CMAKE_CXX_STANDARD 14 is configured and built against the installed package (fixture
# install_tree) and run: the wrapper's C++17 comes from the target (cxx_std_17).
#
# Inputs (-D): HD_PREFIX HD_CONSUMER_SOURCE HD_WORK_DIR HD_GENERATOR HD_CXX_COMPILER HD_CONFIG

set(HD_TEST_NAME install_consumer_cxx14)
set(STDOUT_ONLY ON)
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")

set(build "${HD_WORK_DIR}/build")
file(REMOVE_RECURSE "${HD_WORK_DIR}")
set(build_type_args "")
set(config_args "")
if(HD_CONFIG)
  set(build_type_args "-DCMAKE_BUILD_TYPE=${HD_CONFIG}")
  set(config_args --config "${HD_CONFIG}")
endif()
run_step("configuring the C++14 consumer"
  "${CMAKE_COMMAND}" -S "${HD_CONSUMER_SOURCE}/cxx14" -B "${build}" -G "${HD_GENERATOR}"
  "-DCMAKE_PREFIX_PATH=${HD_PREFIX}" "-DCMAKE_CXX_COMPILER=${HD_CXX_COMPILER}" ${build_type_args})
run_step("building the C++14 consumer" "${CMAKE_COMMAND}" --build "${build}" ${config_args} --verbose)
if(NOT step_output MATCHES "-std=(c|gnu)\\+\\+17")
  message(FATAL_ERROR "install_consumer_cxx14: the build did not compile with -std=c++17:\n${step_output}")
endif()
set(exe "${build}/consumer_cxx14")
if(EXISTS "${build}/${HD_CONFIG}/consumer_cxx14")
  set(exe "${build}/${HD_CONFIG}/consumer_cxx14")
endif()
run_step("running the C++14 consumer" "${CMAKE_COMMAND}" -E env "HARMONICS_CACHE_DIR=${HD_WORK_DIR}/cache" "${exe}")
if(NOT step_output MATCHES "record 2: 4 5.25\ncache created\n$")
  message(FATAL_ERROR "install_consumer_cxx14: the consumer printed\n${step_output}")
endif()
message("install_consumer_cxx14: a CMAKE_CXX_STANDARD 14 project built with -std=c++17 from harmonics::dataset and ran")
