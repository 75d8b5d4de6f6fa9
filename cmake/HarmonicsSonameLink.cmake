# Build step (cmake -P): the link <SONAME> -> <the library's file name> beside LIBRARY, the
# shared library the build tree links (cargo's file, or corrosion's copy of it). A program
# linked against it records the SONAME (build.rs) and looks for that name at run time.
if(NOT LIBRARY OR NOT SONAME)
  message(FATAL_ERROR "usage: cmake -DLIBRARY=<path> -DSONAME=<name> -P HarmonicsSonameLink.cmake")
endif()
get_filename_component(_dir "${LIBRARY}" DIRECTORY)
get_filename_component(_name "${LIBRARY}" NAME)
if(IS_SYMLINK "${_dir}/${SONAME}")
  file(READ_SYMLINK "${_dir}/${SONAME}" _points_to)
  if(_points_to STREQUAL _name)
    return()
  endif()
endif()
file(MAKE_DIRECTORY "${_dir}")
file(CREATE_LINK "${_name}" "${_dir}/${SONAME}" SYMBOLIC)
