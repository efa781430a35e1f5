#pragma once
// One GPU per rank: the command line handed to Kokkos::initialize, with
// --kokkos-device-id=<local rank % GPUs on the host> added on a CUDA build, unless the user
// already picked a device (--kokkos-device-id, --kokkos-num-devices, --kokkos-ndevices,
// --kokkos-map-device-id-by, or KOKKOS_DEVICE_ID). Host builds get argv unchanged.
// Kokkos::initialize removes the --kokkos-* arguments it reads from argc()/argv().
#include <string>
#include <vector>

#include "comm/world.hpp"

namespace dualnet {

class KokkosArgs {
 public:
  KokkosArgs(int argc, char* argv[], const World& w);
  int& argc() { return argc_; }
  char** argv() { return ptrs_.data(); }
  // On a CUDA build without a usable CUDA device: why, in a line for the user (then
  // Kokkos::initialize would throw). "" otherwise, and always on host builds.
  const std::string& no_device() const { return no_device_; }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> ptrs_;
  int argc_ = 0;
  std::string no_device_;
};

}  // namespace dualnet
