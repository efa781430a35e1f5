#include "io/provenance.hpp"

#include "dualnet_version.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {
namespace {

// Kokkos's version as "major.minor.patch".
std::string kokkos_version_text() {
  const int kv = KOKKOS_VERSION;  // major * 10000 + minor * 100 + patch
  return std::to_string(kv / 10000) + "." + std::to_string(kv / 100 % 100) + "." + std::to_string(kv % 100);
}

}  // namespace

void write_provenance(const h5::Handle& file) {
  h5::write_attr(file, "dualnet_version", std::string(DUALNET_VERSION));
  h5::write_attr(file, "git_commit", std::string(DUALNET_GIT_COMMIT));
  h5::write_attr(file, "kokkos_version", kokkos_version_text());
  h5::write_attr(file, "execution_space", std::string(execution_space_name()));
}

}  // namespace dualnet
