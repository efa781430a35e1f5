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
  // Why no device id was added on a CUDA build ("" when one was, or on host builds).
  const std::string& note() const { return note_; }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> ptrs_;
  int argc_ = 0;
  std::string note_;
};

}  // namespace dualnet
