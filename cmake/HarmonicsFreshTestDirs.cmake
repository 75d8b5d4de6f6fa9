# ctest fixture (cmake -P): empties ROOT and recreates ROOT/<name> for each name in NAMES
# ('|'-separated), so every run of the C/C++ tests starts without leftovers of the last.
if(NOT ROOT OR NOT NAMES)
  message(FATAL_ERROR "usage: cmake -DROOT=<dir> -DNAMES=a|b|c -P HarmonicsFreshTestDirs.cmake")
endif()
file(REMOVE_RECURSE "${ROOT}")
string(REPLACE "|" ";" _names "${NAMES}")
foreach(_name IN LISTS _names)
  file(MAKE_DIRECTORY "${ROOT}/${_name}")
endforeach()
