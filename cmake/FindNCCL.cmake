# FindNCCL: the NVIDIA Collective Communications Library.
#
# Looks in NCCL_ROOT (CMake or environment variable), NCCL_HOME, then next to the CUDA
# toolkit (find_package(CUDAToolkit) first: the NCCL that ships with the toolkit, as in
# /usr/local/cuda, is found through CUDAToolkit_INCLUDE_DIRS and CUDAToolkit_LIBRARY_DIR).
#
# Result variables: NCCL_FOUND, NCCL_VERSION, NCCL_INCLUDE_DIR, NCCL_LIBRARY.
# Imported target:  NCCL::NCCL (the shared library with its include directory). It does not
# link the CUDA runtime; a user links CUDA::cudart as well.
find_path(NCCL_INCLUDE_DIR nccl.h
  HINTS ${NCCL_ROOT} ENV NCCL_ROOT ENV NCCL_HOME ${CUDAToolkit_INCLUDE_DIRS}
  PATH_SUFFIXES include)
find_library(NCCL_LIBRARY nccl
  HINTS ${NCCL_ROOT} ENV NCCL_ROOT ENV NCCL_HOME ${CUDAToolkit_LIBRARY_DIR}
  PATH_SUFFIXES lib64 lib)

if(NCCL_INCLUDE_DIR AND EXISTS "${NCCL_INCLUDE_DIR}/nccl.h")
  file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" _nccl_ver REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE "[^0-9;]" "" _nccl_ver "${_nccl_ver}")
  string(REPLACE ";" "." NCCL_VERSION "${_nccl_ver}")
  unset(_nccl_ver)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NCCL
  REQUIRED_VARS NCCL_LIBRARY NCCL_INCLUDE_DIR
  VERSION_VAR NCCL_VERSION
  REASON_FAILURE_MESSAGE "looked in NCCL_ROOT, NCCL_HOME, '${CUDAToolkit_INCLUDE_DIRS}' and '${CUDAToolkit_LIBRARY_DIR}' (set NCCL_ROOT)")
mark_as_advanced(NCCL_INCLUDE_DIR NCCL_LIBRARY)

if(NCCL_FOUND AND NOT TARGET NCCL::NCCL)
  add_library(NCCL::NCCL UNKNOWN IMPORTED)
  set_target_properties(NCCL::NCCL PROPERTIES
    IMPORTED_LOCATION "${NCCL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
endif()
