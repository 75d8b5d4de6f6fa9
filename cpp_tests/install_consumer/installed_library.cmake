# Helpers of the install test scripts (cmake -P; include run_step.cmake first).
#
# hd_check_installed_library(<prefix> <libdir> <max_bytes>): what `cmake --install --strip` must leave in
# <prefix>/<libdir>:
#   - libharmonics_dataset.so -> libharmonics_dataset.so.<major> -> libharmonics_dataset.so.<version>,
#     the last a regular file whose SONAME (readelf -d) is libharmonics_dataset.so.<major>;
#   - stripped: no .debug_* and no .symtab section (readelf -S);
#   - at most <max_bytes> bytes when <max_bytes> is not 0.
# Sets `installed_library_bytes` in the caller's scope.
function(hd_check_installed_library prefix libdir max_bytes)
  set(dir "${prefix}/${libdir}")
  file(GLOB versioned RELATIVE "${dir}" "${dir}/libharmonics_dataset.so.*.*.*")
  list(FILTER versioned EXCLUDE REGEX "[.]debug$")
  list(LENGTH versioned n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "${HD_TEST_NAME}: expected one ${dir}/libharmonics_dataset.so.<version>, found '${versioned}'")
  endif()
  if(IS_SYMLINK "${dir}/${versioned}")
    message(FATAL_ERROR "${HD_TEST_NAME}: ${dir}/${versioned} is a link; the real file was expected")
  endif()
  string(REGEX MATCH "^libharmonics_dataset[.]so[.]([0-9]+)[.]" _ "${versioned}")
  set(soname "libharmonics_dataset.so.${CMAKE_MATCH_1}")
  foreach(link_target IN ITEMS "libharmonics_dataset.so:${soname}" "${soname}:${versioned}")
    string(REPLACE ":" ";" pair "${link_target}")
    list(GET pair 0 link)
    list(GET pair 1 target)
    if(NOT IS_SYMLINK "${dir}/${link}")
      message(FATAL_ERROR "${HD_TEST_NAME}: ${dir}/${link} is not a symbolic link")
    endif()
    file(READ_SYMLINK "${dir}/${link}" points_to)
    if(NOT points_to STREQUAL target)
      message(FATAL_ERROR "${HD_TEST_NAME}: ${dir}/${link} -> ${points_to}, expected -> ${target}")
    endif()
  endforeach()

  find_program(READELF readelf)
  if(NOT READELF)
    message(FATAL_ERROR "${HD_TEST_NAME}: readelf not found (binutils)")
  endif()
  run_step("readelf -d ${versioned}" "${READELF}" -d "${dir}/${versioned}")
  if(NOT step_output MATCHES "\\(SONAME\\)[^\n]*\\[${soname}\\]")
    message(FATAL_ERROR "${HD_TEST_NAME}: the SONAME of ${versioned} is not ${soname}:\n${step_output}")
  endif()
  run_step("readelf -S ${versioned}" "${READELF}" -S -W "${dir}/${versioned}")
  if(step_output MATCHES "[ ](\\.debug_[a-z_]+|\\.symtab)[ ]")
    message(FATAL_ERROR "${HD_TEST_NAME}: ${versioned} was not stripped (it has ${CMAKE_MATCH_1})")
  endif()

  file(SIZE "${dir}/${versioned}" bytes)
  math(EXPR mib "${bytes} / 1048576")
  if(max_bytes AND bytes GREATER max_bytes)
    message(FATAL_ERROR "${HD_TEST_NAME}: the stripped ${versioned} is ${bytes} bytes (${mib} MiB), "
                        "more than ${max_bytes}")
  endif()
  message(STATUS "installed ${versioned} (SONAME ${soname}, links .so -> .so.N -> it), stripped: "
                 "${bytes} bytes (${mib} MiB)")
  set(installed_library_bytes "${bytes}" PARENT_SCOPE)
endfunction()

# hd_pkg_config_flags(<out> <prefix> <libdir> <pkg-config arguments>...): the flags
# pkg-config gives for the installed tree under <prefix>, as a list.
function(hd_pkg_config_flags out prefix libdir)
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(NOT PKG_CONFIG_EXECUTABLE)
    message(FATAL_ERROR "${HD_TEST_NAME}: pkg-config not found (apt-get install pkg-config)")
  endif()
  set(ENV{PKG_CONFIG_PATH} "${prefix}/${libdir}/pkgconfig")
  run_step("pkg-config ${ARGN}" "${PKG_CONFIG_EXECUTABLE}" ${ARGN})
  string(STRIP "${step_output}" flags)
  message(STATUS "pkg-config ${ARGN}: ${flags}")
  separate_arguments(flags UNIX_COMMAND "${flags}")
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()
