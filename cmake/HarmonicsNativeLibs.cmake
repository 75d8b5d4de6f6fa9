# HARMONICS_NATIVE_STATIC_LIBS: the system libraries a program linking the Rust
# staticlib needs (Rust's std uses pthread, dl, m, rt, util …). Asked of rustc once
# (`--print native-static-libs` on an empty staticlib) and cached; the known Linux list
# when rustc cannot be asked.
if(DEFINED HARMONICS_NATIVE_STATIC_LIBS)
  return()
endif()

set(_hd_native_libs_fallback -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
find_program(HARMONICS_RUSTC rustc HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin")
set(_hd_native_libs "")
if(HARMONICS_RUSTC)
  set(_hd_probe_dir "${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/harmonics_native_libs")
  file(MAKE_DIRECTORY "${_hd_probe_dir}")
  file(WRITE "${_hd_probe_dir}/probe.rs" "")
  execute_process(
    COMMAND "${HARMONICS_RUSTC}" --crate-type staticlib --crate-name harmonics_probe
            --print native-static-libs -o "${_hd_probe_dir}/libharmonics_probe.a" probe.rs
    WORKING_DIRECTORY "${_hd_probe_dir}"
    RESULT_VARIABLE _hd_probe_rc
    OUTPUT_VARIABLE _hd_probe_out
    ERROR_VARIABLE _hd_probe_out)
  if(_hd_probe_rc EQUAL 0 AND _hd_probe_out MATCHES "native-static-libs: ([^\n]*)")
    string(STRIP "${CMAKE_MATCH_1}" _hd_native_libs)
    separate_arguments(_hd_native_libs UNIX_COMMAND "${_hd_native_libs}")
  endif()
  file(REMOVE_RECURSE "${_hd_probe_dir}")
endif()
if(NOT _hd_native_libs)
  set(_hd_native_libs ${_hd_native_libs_fallback})
endif()
set(HARMONICS_NATIVE_STATIC_LIBS "${_hd_native_libs}" CACHE STRING
    "Native libraries linked after libharmonics_dataset.a (from rustc --print native-static-libs)")
message(STATUS "harmonics_dataset: native libraries for the static library: ${HARMONICS_NATIVE_STATIC_LIBS}")
