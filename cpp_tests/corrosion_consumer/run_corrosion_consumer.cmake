# ctest test corrosion_consumer (cmake -P): configures this directory's consumer with
# harmonics-dataset as a subproject built through corrosion (FetchContent from a local
# corrosion source, HD_CORROSION_SOURCE), with no CMAKE_BUILD_TYPE; builds it; checks
# that configure named the corrosion version found and the release profile, that cargo
# built the release library inside the consumer's build directory, installs it with
# `cmake --install --strip` (under 10 MB, SONAME libharmonics_dataset.so.<major> and its
# links: installed_library.cmake), and runs the consumer twice (cache created, then reused).
#
# The build directory HD_WORK_DIR is kept between runs, so cargo rebuilds only what
# changed: only the first run on a machine compiles the dependencies.
#
# Inputs (-D): HD_SOURCE HD_CORROSION_SOURCE HD_WORK_DIR HD_GENERATOR HD_CXX_COMPILER
#              HD_C_COMPILER

set(HD_TEST_NAME corrosion_consumer)
include("${CMAKE_CURRENT_LIST_DIR}/../run_step.cmake")

set(build "${HD_WORK_DIR}/build")
file(REMOVE_RECURSE "${HD_WORK_DIR}/cache" "${build}/consumer")
string(TIMESTAMP t0 "%s")
run_step("configuring the consumer"
  "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}" -B "${build}" -G "${HD_GENERATOR}"
  "-DHD_SOURCE=${HD_SOURCE}" -DHARMONICS_FETCH_CORROSION=ON
  "-DFETCHCONTENT_SOURCE_DIR_CORROSION=${HD_CORROSION_SOURCE}"
  "-DCMAKE_CXX_COMPILER=${HD_CXX_COMPILER}" "-DCMAKE_C_COMPILER=${HD_C_COMPILER}"
  -DCMAKE_BUILD_TYPE=)
set(configure_output "${step_output}")
file(STRINGS "${HD_CORROSION_SOURCE}/CMakeLists.txt" version_line REGEX "^[ \t]*VERSION [0-9]")
string(REGEX MATCH "[0-9][0-9.]*" corrosion_version "${version_line}")
foreach(expected
    "harmonics_dataset: corrosion ${corrosion_version} (FetchContent from "
    "building the crate with corrosion ${corrosion_version}, cargo profile release (CMAKE_BUILD_TYPE is empty")
  string(FIND "${configure_output}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "corrosion_consumer: configure did not say\n  ${expected}\n${configure_output}")
  endif()
endforeach()

run_step("building the consumer (cargo through corrosion)"
  "${CMAKE_COMMAND}" --build "${build}" --target consumer)
string(TIMESTAMP t1 "%s")
math(EXPR seconds "${t1} - ${t0}")

file(GLOB release_libs "${build}/cargo/build/*/release/libharmonics_dataset.so")
file(GLOB debug_libs "${build}/cargo/build/*/debug/libharmonics_dataset.so")
if(NOT release_libs OR debug_libs)
  message(FATAL_ERROR "corrosion_consumer: expected cargo's release library (and no debug one) under "
                      "${build}/cargo/build; found release: '${release_libs}' debug: '${debug_libs}'")
endif()

# The release library, installed stripped: under 10 MB, versioned SONAME, links.
run_step("building everything (the install takes cache_cli too)" "${CMAKE_COMMAND}" --build "${build}")
file(STRINGS "${build}/CMakeCache.txt" libdir_line REGEX "^CMAKE_INSTALL_LIBDIR:")
string(REGEX REPLACE "^[^=]*=" "" libdir "${libdir_line}")
set(prefix "${HD_WORK_DIR}/prefix")
file(REMOVE_RECURSE "${prefix}")
run_step("cmake --install --strip" "${CMAKE_COMMAND}" --install "${build}" --prefix "${prefix}" --strip)
include("${CMAKE_CURRENT_LIST_DIR}/../install_consumer/installed_library.cmake")
file(SIZE "${build}/harmonics-dataset/libharmonics_dataset.so" unstripped_bytes)
hd_check_installed_library("${prefix}" "${libdir}" 10485760)
message(STATUS "the release library before stripping: ${unstripped_bytes} bytes")

set(expected_records "record 0: 0.5 1\nrecord 1: 2 3\nrecord 2: 4 5.25\n")
foreach(round created reused)
  run_step("running the consumer (${round})"
    "${CMAKE_COMMAND}" -E env "HARMONICS_CACHE_DIR=${HD_WORK_DIR}/cache" "${build}/consumer")
  if(NOT step_output STREQUAL "${expected_records}cache ${round}\n")
    message(FATAL_ERROR "corrosion_consumer: the consumer printed\n${step_output}\nexpected\n"
                        "${expected_records}cache ${round}")
  endif()
endforeach()
message("corrosion_consumer: built through corrosion ${corrosion_version} (release) in ${seconds} s, "
        "consumer ran twice")
