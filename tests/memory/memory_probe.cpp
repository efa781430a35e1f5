// Prints the memory estimate of a configuration, for tests/memory/rss_vs_estimate.py:
//   memory_probe [--ranks N] [CONFIG.toml] [key=value ...]
// One line: total persistent transient runtime (bytes per rank). Exit 2 with one line on
// stderr for a configuration validate() refuses.
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "train/memory_estimate.hpp"
#include "util/error.hpp"

int main(int argc, char** argv) {
  int ranks = 1;
  std::string toml;
  std::vector<std::string> overrides;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ranks" && i + 1 < argc)
      ranks = std::stoi(argv[++i]);
    else if (a.find('=') == std::string::npos && toml.empty() && overrides.empty())
      toml = a;
    else
      overrides.push_back(a);
  }
  try {
    const dualnet::Config cfg = dualnet::parse_config(toml, overrides);
    dualnet::validate(cfg, ranks);
    const dualnet::MemoryEstimate m = dualnet::estimate_memory(cfg, ranks);
    std::printf("%lld %.0f %.0f %.0f\n", static_cast<long long>(dualnet::estimate_memory_bytes(cfg, ranks)),
                m.persistent, m.transient, m.runtime);
  } catch (const dualnet::Error& e) {
    std::fprintf(stderr, "memory_probe: %s\n", e.what());
    return 2;
  }
  return 0;
}
