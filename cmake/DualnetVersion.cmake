# Records the git commit of the source tree in build/generated/dualnet_version.hpp.
find_package(Git QUIET)
set(DUALNET_GIT_COMMIT "unknown")
if(GIT_FOUND AND EXISTS "${CMAKE_SOURCE_DIR}/.git")
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _commit
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0)
    set(DUALNET_GIT_COMMIT "${_commit}")
  endif()
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/dualnet_version.hpp.in
               ${CMAKE_BINARY_DIR}/generated/dualnet_version.hpp @ONLY)
