#pragma once
// `dualnet covop [CHECKPOINT_OR_CONFIG] [key=value ...]`: measures the covariance-operator
// theorem (stats/covop_check.hpp) on a checkpoint's weights (a run directory or a
// checkpoint file) or on the fresh initialisation of a config (CONFIG.toml, or none: the
// defaults), prints a table and writes it to HDF5. docs/covop.md explains every number.
#include <string>
#include <vector>

#include "comm/world.hpp"

namespace dualnet {

// Returns the exit code; errors are thrown as in the train command.
int covop_command(const std::vector<std::string>& args, const World& world);

// Text of `dualnet covop --help`.
std::string covop_help();

}  // namespace dualnet
