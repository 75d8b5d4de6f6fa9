# ctest test build_profile (cmake -P): which cargo profile and target dir a configure
# picks, read from the harmonics_dataset_build-<config>.txt file CMake generates (the
# imported library's real path), with the cargo fallback (configure only, no build):
#   - top level, no CMAKE_BUILD_TYPE      -> target/release (the optimised library)
#   - top level, CMAKE_BUILD_TYPE=Debug   -> target/debug
#   - a subproject (add_subdirectory), no build type -> release, built inside the
#     consumer's build directory, not in the source tree's target/
#
# Inputs (-D): HD_SOURCE HD_WORK_DIR HD_GENERATOR HD_CXX_COMPILER HD_C_COMPILER

function(configure label source build)
  file(REMOVE_RECURSE "${build}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${source}" -B "${build}" -G "${HD_GENERATOR}"
            "-DCMAKE_CXX_COMPILER=${HD_CXX_COMPILER}" "-DCMAKE_C_COMPILER=${HD_C_COMPILER}"
            -DHARMONICS_USE_CORROSION=OFF -DHARMONICS_BUILD_TESTS=OFF ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "build_profile: configuring ${label} failed\n${out}\n${err}")
  endif()
  set(configure_output "${out}" PARENT_SCOPE)
endfunction()

function(expect label file key pattern)
  file(STRINGS "${file}" line REGEX "^${key}=")
  if(NOT line MATCHES "${pattern}")
    message(FATAL_ERROR "build_profile: ${label}: expected ${key} to match '${pattern}', got '${line}'")
  endif()
  message(STATUS "${label}: ${line}")
endfunction()

set(top "${HD_WORK_DIR}/top-default")
configure("the top level, no build type" "${HD_SOURCE}" "${top}")
string(FIND "${configure_output}" "cargo profile release (CMAKE_BUILD_TYPE is empty: Release for the crate)" at)
if(at EQUAL -1)
  message(FATAL_ERROR "build_profile: configure did not say which profile it builds:\n${configure_output}")
endif()
expect("top level, no build type" "${top}/harmonics_dataset_build-.txt" profile "^profile=release$")
expect("top level, no build type" "${top}/harmonics_dataset_build-.txt" library "/release/libharmonics_dataset[.]so$")
expect("top level, no build type" "${top}/harmonics_dataset_build-.txt" cli "/release/cache_cli$")

set(dbg "${HD_WORK_DIR}/top-debug")
configure("the top level, Debug" "${HD_SOURCE}" "${dbg}" -DCMAKE_BUILD_TYPE=Debug)
expect("top level, Debug" "${dbg}/harmonics_dataset_build-Debug.txt" library "/debug/libharmonics_dataset[.]so$")

set(sub "${HD_WORK_DIR}/subproject")
configure("a subproject" "${CMAKE_CURRENT_LIST_DIR}/../corrosion_consumer" "${sub}" "-DHD_SOURCE=${HD_SOURCE}")
set(sub_file "${sub}/harmonics-dataset/harmonics_dataset_build-.txt")
expect("subproject, no build type" "${sub_file}" library
       "^library=${sub}/harmonics-dataset/cargo-target/release/libharmonics_dataset[.]so$")
message("build_profile: release by default, debug on request, a subproject builds in its build directory")
