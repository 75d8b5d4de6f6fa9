# The cargo fallback (no corrosion): CMake runs `cargo build --lib` and imports what it
# produced under the names corrosion would give.
#
# Cargo builds into the crate's own target dir (the one `cargo test` uses), so the
# dependencies are compiled once for both. The build step always runs; cargo decides
# what is stale, and an up-to-date build costs a fraction of a second.

find_program(HARMONICS_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin")
if(NOT HARMONICS_CARGO)
  message(FATAL_ERROR "harmonics_dataset: cargo not found (install Rust, or set HARMONICS_CARGO)")
endif()

if(DEFINED ENV{CARGO_TARGET_DIR} AND NOT "$ENV{CARGO_TARGET_DIR}" STREQUAL "")
  set(_hd_default_target_dir "$ENV{CARGO_TARGET_DIR}")
else()
  set(_hd_default_target_dir "${PROJECT_SOURCE_DIR}/target")
endif()
set(HARMONICS_CARGO_TARGET_DIR "${_hd_default_target_dir}" CACHE PATH
    "Cargo target dir for the crate (shared with `cargo test` by default)")

set(HARMONICS_CARGO_ARGS "" CACHE STRING
    "Extra arguments for the cargo build step, e.g. --locked or --offline (a ;-list)")

include("${CMAKE_CURRENT_LIST_DIR}/HarmonicsNativeLibs.cmake")

set(_hd_shared_name "${CMAKE_SHARED_LIBRARY_PREFIX}harmonics_dataset${CMAKE_SHARED_LIBRARY_SUFFIX}")
set(_hd_static_name "${CMAKE_STATIC_LIBRARY_PREFIX}harmonics_dataset${CMAKE_STATIC_LIBRARY_SUFFIX}")

# Debug (and no build type) -> cargo's dev profile in target/debug; every optimised
# configuration -> --release in target/release.
get_property(_hd_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(_hd_multi_config)
  set(_hd_profile_flag "$<$<NOT:$<CONFIG:Debug>>:--release>")
  set(_hd_profile_dir "$<IF:$<CONFIG:Debug>,debug,release>")
  set(_hd_byproducts "")  # BYPRODUCTS take no generator expressions before CMake 3.20
elseif(CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$")
  set(_hd_profile_flag --release)
  set(_hd_profile_dir release)
else()
  set(_hd_profile_flag "")
  set(_hd_profile_dir debug)
endif()
if(NOT _hd_multi_config)
  set(_hd_byproducts
    "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_shared_name}"
    "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_static_name}")
endif()

add_custom_target(harmonics_dataset_cargo_build ALL
  COMMAND "${HARMONICS_CARGO}" build --lib ${_hd_profile_flag}
          --manifest-path "${PROJECT_SOURCE_DIR}/Cargo.toml"
          --target-dir "${HARMONICS_CARGO_TARGET_DIR}" ${HARMONICS_CARGO_ARGS}
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  BYPRODUCTS ${_hd_byproducts}
  COMMENT "cargo build --lib ${_hd_profile_flag} (harmonics-dataset)"
  USES_TERMINAL
  VERBATIM)

add_library(harmonics_dataset SHARED IMPORTED GLOBAL)
add_library(harmonics_dataset_static STATIC IMPORTED GLOBAL)
set_target_properties(harmonics_dataset PROPERTIES
  IMPORTED_SONAME "${_hd_shared_name}"
  INTERFACE_INCLUDE_DIRECTORIES "${HARMONICS_INCLUDE_DIR}")
set_target_properties(harmonics_dataset_static PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${HARMONICS_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${HARMONICS_NATIVE_STATIC_LIBS}")
if(_hd_multi_config)
  foreach(_hd_config IN LISTS CMAKE_CONFIGURATION_TYPES)
    string(TOUPPER "${_hd_config}" _hd_config_upper)
    if(_hd_config STREQUAL "Debug")
      set(_hd_dir debug)
    else()
      set(_hd_dir release)
    endif()
    set_target_properties(harmonics_dataset PROPERTIES
      IMPORTED_LOCATION_${_hd_config_upper} "${HARMONICS_CARGO_TARGET_DIR}/${_hd_dir}/${_hd_shared_name}")
    set_target_properties(harmonics_dataset_static PROPERTIES
      IMPORTED_LOCATION_${_hd_config_upper} "${HARMONICS_CARGO_TARGET_DIR}/${_hd_dir}/${_hd_static_name}")
  endforeach()
else()
  set_target_properties(harmonics_dataset PROPERTIES
    IMPORTED_LOCATION "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_shared_name}")
  set_target_properties(harmonics_dataset_static PROPERTIES
    IMPORTED_LOCATION "${HARMONICS_CARGO_TARGET_DIR}/${_hd_profile_dir}/${_hd_static_name}")
endif()
# Whatever links either library is built after cargo has run (dependencies of imported
# targets are followed transitively).
add_dependencies(harmonics_dataset harmonics_dataset_cargo_build)
add_dependencies(harmonics_dataset_static harmonics_dataset_cargo_build)
