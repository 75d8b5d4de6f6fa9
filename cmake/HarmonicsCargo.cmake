# The cargo fallback (no corrosion): CMake runs `cargo build --lib` and imports what it
# produced under the names corrosion would give.
#
# It also builds the cache_cli tool (HARMONICS_BUILD_CLI). The build step always runs;
# cargo decides what is stale, and an up-to-date build costs a fraction of a second.

find_program(HARMONICS_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin")
if(NOT HARMONICS_CARGO)
  message(FATAL_ERROR "harmonics_dataset: cargo not found (install Rust, or set HARMONICS_CARGO)")
endif()

# The top-level developer build shares the crate's own target dir with `cargo test`
# (dependencies compiled once). As a subproject (add_subdirectory, FetchContent) the
# source tree may be read-only or shared: cargo builds into this build directory.
if(NOT _hd_top_level)
  set(_hd_default_target_dir "${CMAKE_CURRENT_BINARY_DIR}/cargo-target")
elseif(DEFINED ENV{CARGO_TARGET_DIR} AND NOT "$ENV{CARGO_TARGET_DIR}" STREQUAL "")
  set(_hd_default_target_dir "$ENV{CARGO_TARGET_DIR}")
else()
  set(_hd_default_target_dir "${PROJECT_SOURCE_DIR}/target")
endif()
set(HARMONICS_CARGO_TARGET_DIR "${_hd_default_target_dir}" CACHE PATH
    "Cargo target dir for the crate (top level: shared with `cargo test`; subproject: in the build dir)")

set(HARMONICS_CARGO_ARGS "" CACHE STRING
    "Extra arguments for the cargo build step, e.g. --locked or --offline (a ;-list)")

include("${CMAKE_CURRENT_LIST_DIR}/HarmonicsNativeLibs.cmake")

set(_hd_shared_name "${CMAKE_SHARED_LIBRARY_PREFIX}harmonics_dataset${CMAKE_SHARED_LIBRARY_SUFFIX}")
set(_hd_static_name "${CMAKE_STATIC_LIBRARY_PREFIX}harmonics_dataset${CMAKE_STATIC_LIBRARY_SUFFIX}")

set(_hd_cli_name "cache_cli${CMAKE_EXECUTABLE_SUFFIX}")

# Debug -> cargo's dev profile in target/debug; every other configuration, and no build
# type at all, -> --release in target/release (HARMONICS_CARGO_PROFILE, CMakeLists.txt).
if(_hd_multi_config)
  set(_hd_profile_flag "$<$<NOT:$<CONFIG:Debug>>:--release>")
  set(_hd_profile_dir "$<IF:$<CONFIG:Debug>,debug,release>")
  set(_hd_byproducts "")  # BYPRODUCTS take no generator expressions before CMake 3.20
else()
  set(_hd_profile_dir ${HARMONICS_CARGO_PROFILE})
  if(HARMONICS_CARGO_PROFILE STREQUAL "release")
    set(_hd_profile_flag --release)
  else()
    set(_hd_profile_flag "")
  endif()
  set(_hd_byproducts
    "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_shared_name}"
    "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_static_name}")
  if(HARMONICS_BUILD_CLI)
    list(APPEND _hd_byproducts "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_cli_name}")
  endif()
endif()

set(_hd_cargo_what --lib)
if(_hd_cli_feature)
  # The CLI's dependencies (clap, serde_json) only when the tool is built.
  list(APPEND _hd_cargo_what --no-default-features)
endif()
if(HARMONICS_BUILD_CLI)
  list(APPEND _hd_cargo_what --bin cache_cli)
  if(_hd_cli_feature)
    list(APPEND _hd_cargo_what --features ${_hd_cli_feature})
  endif()
endif()

add_custom_target(harmonics_dataset_cargo_build ALL
  COMMAND "${HARMONICS_CARGO}" build ${_hd_cargo_what} ${_hd_profile_flag}
          --manifest-path "${PROJECT_SOURCE_DIR}/Cargo.toml"
          --target-dir "${HARMONICS_CARGO_TARGET_DIR}" ${HARMONICS_CARGO_ARGS}
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  BYPRODUCTS ${_hd_byproducts}
  COMMENT "cargo build ${_hd_cargo_what} ${_hd_profile_flag} (harmonics-dataset)"
  USES_TERMINAL
  VERBATIM)

add_library(harmonics_dataset SHARED IMPORTED GLOBAL)
add_library(harmonics_dataset_static STATIC IMPORTED GLOBAL)
set_target_properties(harmonics_dataset PROPERTIES
  IMPORTED_SONAME "${HARMONICS_SONAME}"
  INTERFACE_INCLUDE_DIRECTORIES "${HARMONICS_INCLUDE_DIR}")
set_target_properties(harmonics_dataset_static PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${HARMONICS_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${HARMONICS_NATIVE_STATIC_LIBS}")
# hd_cargo_artifact(<target> <file name>): the IMPORTED_LOCATION(s) of what cargo builds.
function(hd_cargo_artifact target file)
  if(_hd_multi_config)
    foreach(config IN LISTS CMAKE_CONFIGURATION_TYPES)
      string(TOUPPER "${config}" upper)
      if(config STREQUAL "Debug")
        set(dir debug)
      else()
        set(dir release)
      endif()
      set_target_properties(${target} PROPERTIES
        IMPORTED_LOCATION_${upper} "${HARMONICS_CARGO_TARGET_DIR}/${dir}/${file}")
    endforeach()
  else()
    set_target_properties(${target} PROPERTIES
      IMPORTED_LOCATION "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${file}")
  endif()
  add_dependencies(${target} harmonics_dataset_cargo_build)
endfunction()
hd_cargo_artifact(harmonics_dataset "${_hd_shared_name}")
hd_cargo_artifact(harmonics_dataset_static "${_hd_static_name}")
set(_hd_cli_target "")
if(HARMONICS_BUILD_CLI)
  add_executable(harmonics_cache_cli IMPORTED GLOBAL)
  set(_hd_cli_target harmonics_cache_cli)
  hd_cargo_artifact(harmonics_cache_cli "${_hd_cli_name}")
endif()
# (Whatever links either library is built after cargo has run: dependencies of imported
# targets are followed transitively.)
