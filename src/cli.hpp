#pragma once
// The command line: `dualnet train [CONFIG.toml] [key=value ...]`, `dualnet --help`.
#include "comm/world.hpp"

namespace dualnet {

// Runs the command and returns the process exit code (0 ok, 2 bad input, 1 failure).
int run_cli(int argc, char* argv[], const World& world);

}  // namespace dualnet
