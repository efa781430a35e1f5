#include "util/device_sync.hpp"

#include <Kokkos_Core.hpp>
#include <atomic>
#include <string>

namespace dualnet {

namespace {
std::atomic<std::int64_t> waits{0};
}

void wait_for_device(const char* why) {
  ++waits;
#if KOKKOS_VERSION >= 40000
  Kokkos::fence(std::string("dualnet: ") + why);  // named in Kokkos Tools
#else
  (void)why;
  Kokkos::fence();
#endif
}

std::int64_t host_waits() { return waits.load(); }

}  // namespace dualnet
