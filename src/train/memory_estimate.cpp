#include "train/memory_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "io/metrics_file.hpp"

namespace dualnet {

std::int64_t estimate_memory_bytes(const Config& c, int world_size) {
  // Sizes in doubles, from the same formulas as hltm/tree.hpp, in floating point so an
  // absurd config cannot overflow the estimate.
  const double k = static_cast<double>(c.num_children), hid = static_cast<double>(c.hid);
  const double leaves = std::pow(k, static_cast<double>(c.depth));
  const double latents = (leaves - 1.0) / (k - 1.0);
  const double neurons = latents * hid;
  const double params = latents * hid * (k * hid + 1.0);
  const double conn = latents * k * hid * hid * hid;
  // latent-neuron pairs whose z*h is summed: all of them only when corr_full is written
  const double pairs = corr_full_enabled(c.corr_full, latents, neurons) ? latents * neurons : neurons;
  const double items = static_cast<double>(c.batch / std::max(1, world_size));
  const double rows = items * static_cast<double>(c.negatives + 2);
  // activations and dL/dh, two sample batches (this step's, the next one's), output buffers
  const double train = rows * (2.0 * neurons + 2.0 * (leaves + latents / 8.0) + 2.0 * hid) + 4.0 * params;
  const double jac_bytes = std::min(64.0 * 1024 * 1024, static_cast<double>(c.eval_chunk) * latents * hid * hid * 8.0);
  const double chunk = std::max(1.0, jac_bytes / (latents * hid * hid * 8.0));
  const double eval = jac_bytes / 8.0 + chunk * (neurons + leaves + latents / 8.0) +
                      (2.0 * pairs + 2.0 * conn + 4.0 * neurons) +         // sums: block and exact totals
                      3.0 * pairs + 2.0 * latents * hid * hid;             // results and host copies
  const double bytes = 8.0 * (train + eval) + 64.0 * 1024 * 1024;           // + runtime and libraries
  return bytes > 9e18 ? std::int64_t(9e18) : static_cast<std::int64_t>(bytes);
}

std::int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  long long kb = 0;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return static_cast<std::int64_t>(kb) * 1024;
  return 0;
}

}  // namespace dualnet
