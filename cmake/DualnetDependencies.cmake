# Finds every library dualnet needs and papers over known packaging bugs.

# The NCCL reducer (DUALNET_ENABLE_NCCL) needs a CUDA Kokkos. CUDAToolkit comes first: a
# CUDA Kokkos config defines CUDA::cudart itself, from a path recorded at its build time,
# unless the target already exists (docs/cuda-build.md).
if(DUALNET_ENABLE_NCCL)
  find_package(CUDAToolkit REQUIRED)
endif()

find_package(Kokkos REQUIRED)
# Debian's Kokkos 3.4.1 CMake config points Kokkos::kokkos at /usr/lib/include, which
# does not exist, and CMake's generate step then fails. Point it at the real headers.
# Only then: a correct config (the CUDA install of cmake/build-kokkos-cuda.sh) is left alone,
# and its Kokkos_INCLUDE_DIRS is empty anyway.
get_target_property(_kokkos_inc Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
set(_kokkos_inc_ok TRUE)
if(_kokkos_inc)
  foreach(_dir IN LISTS _kokkos_inc)
    if(NOT _dir MATCHES "^\\$<" AND NOT EXISTS "${_dir}")
      set(_kokkos_inc_ok FALSE)
    endif()
  endforeach()
endif()
if(NOT _kokkos_inc_ok)
  set(_fixed "")
  foreach(_dir IN LISTS Kokkos_INCLUDE_DIRS)
    get_filename_component(_real "${_dir}" REALPATH)
    list(APPEND _fixed "${_real}")
  endforeach()
  if(NOT _fixed)
    set(_fixed /usr/include/trilinos)
  endif()
  message(STATUS "Kokkos: replacing broken include dirs '${_kokkos_inc}' with '${_fixed}'")
  set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
endif()
message(STATUS "Kokkos ${Kokkos_VERSION}, devices: ${Kokkos_DEVICES}")

if(DUALNET_ENABLE_NCCL)
  if(NOT "CUDA" IN_LIST Kokkos_DEVICES)
    message(FATAL_ERROR "DUALNET_ENABLE_NCCL=ON needs a Kokkos with the CUDA backend; this one has "
                        "'${Kokkos_DEVICES}'. Use cmake/build-cuda.sh (docs/gpu.md).")
  endif()
  # The NCCL that ships with the CUDA toolkit (/usr/local/cuda here), or NCCL_ROOT / NCCL_HOME.
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS ${NCCL_ROOT} ENV NCCL_ROOT ENV NCCL_HOME ${CUDAToolkit_INCLUDE_DIRS}
    PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY nccl
    HINTS ${NCCL_ROOT} ENV NCCL_ROOT ENV NCCL_HOME ${CUDAToolkit_LIBRARY_DIR}
    PATH_SUFFIXES lib64 lib)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "DUALNET_ENABLE_NCCL=ON: nccl.h or libnccl not found "
                        "(looked in ${CUDAToolkit_INCLUDE_DIRS} and ${CUDAToolkit_LIBRARY_DIR}; set NCCL_ROOT)")
  endif()
  file(STRINGS "${NCCL_INCLUDE_DIR}/nccl.h" _nccl_ver REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE "[^0-9;]" "" _nccl_ver "${_nccl_ver}")
  string(REPLACE ";" "." _nccl_ver "${_nccl_ver}")
  message(STATUS "NCCL ${_nccl_ver}: ${NCCL_LIBRARY}")
  # The runtime library (cudart) only, never the driver library (-lcuda): its stub links but
  # the binary then fails to start on a machine without the driver.
  add_library(dualnet_nccl INTERFACE)
  target_include_directories(dualnet_nccl SYSTEM INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(dualnet_nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
endif()

find_package(MPI REQUIRED COMPONENTS C)

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C HL)
if(NOT HDF5_IS_PARALLEL)
  message(WARNING "HDF5 is not the parallel build; dualnet writes from rank 0 only, so this works")
endif()
add_library(dualnet_hdf5 INTERFACE)
target_include_directories(dualnet_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(dualnet_hdf5 INTERFACE ${HDF5_HL_LIBRARIES} ${HDF5_C_LIBRARIES})
target_compile_definitions(dualnet_hdf5 INTERFACE ${HDF5_DEFINITIONS})

find_path(RANDOM123_INCLUDE_DIR Random123/philox.h REQUIRED)
find_path(TOML11_INCLUDE_DIR toml.hpp PATH_SUFFIXES toml11 REQUIRED)
add_library(dualnet_headers INTERFACE)
target_include_directories(dualnet_headers SYSTEM INTERFACE ${RANDOM123_INCLUDE_DIR} ${TOML11_INCLUDE_DIR})
# JSON output (timing.json, bench json=): header-only, Debian's nlohmann-json3-dev.
find_package(nlohmann_json 3 REQUIRED)
target_link_libraries(dualnet_headers INTERFACE nlohmann_json::nlohmann_json)
