#pragma once
// `dualnet bench`: throughput of training and evaluation, time per phase, FLOPs executed,
// peak memory, and the machine's own peak FLOP rate, for a suite of configurations.
#include <string>
#include <vector>

#include "comm/world.hpp"

namespace dualnet {

int bench_command(const std::vector<std::string>& args, const World& world);

}  // namespace dualnet
