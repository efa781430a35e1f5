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
  # The NCCL that ships with the CUDA toolkit (/usr/local/cuda here), or NCCL_ROOT / NCCL_HOME
  # (cmake/FindNCCL.cmake).
  find_package(NCCL REQUIRED)
  # The runtime library (cudart) only, never the driver library (-lcuda): its stub links but
  # the binary then fails to start on a machine without the driver.
  add_library(dualnet_nccl INTERFACE)
  target_link_libraries(dualnet_nccl INTERFACE NCCL::NCCL CUDA::cudart)
endif()

find_package(MPI REQUIRED COMPONENTS C)

set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C HL)
if(NOT HDF5_IS_PARALLEL)
  message(WARNING "HDF5 is not the parallel build; dualnet writes from rank 0 only, so this works")
endif()
# FindHDF5's imported targets (CMake >= 3.19) carry the include directories and definitions.
foreach(_t hdf5::hdf5 hdf5::hdf5_hl)
  if(NOT TARGET ${_t})
    message(FATAL_ERROR "FindHDF5 defined no ${_t} target (HDF5 ${HDF5_VERSION}, CMake ${CMAKE_VERSION})")
  endif()
endforeach()

find_path(RANDOM123_INCLUDE_DIR Random123/philox.h REQUIRED)
find_path(TOML11_INCLUDE_DIR toml.hpp PATH_SUFFIXES toml11 REQUIRED)
add_library(dualnet_headers INTERFACE)
target_include_directories(dualnet_headers SYSTEM INTERFACE ${RANDOM123_INCLUDE_DIR} ${TOML11_INCLUDE_DIR})
# JSON output (timing.json, bench json=): header-only, Debian's nlohmann-json3-dev.
find_package(nlohmann_json 3 REQUIRED)
target_link_libraries(dualnet_headers INTERFACE nlohmann_json::nlohmann_json)
