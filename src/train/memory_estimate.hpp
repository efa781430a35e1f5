#pragma once
// What a run will allocate, per rank, so an impossible configuration is refused before it
// starts (and before it takes the node down with it).
#include <cstdint>

#include "config/config.hpp"

namespace dualnet {

std::int64_t estimate_memory_bytes(const Config& cfg, int world_size);
// Memory this node can give (MemAvailable), or 0 when unknown.
std::int64_t available_memory_bytes();

}  // namespace dualnet
