#pragma once
// The network a config describes: the tree's shape (depth, num_children, hid) and the
// network's options (bias, normalize_output), written once for the trainer, the memory
// estimate, the resume check and the commands.
#include "config/config.hpp"
#include "model/network.hpp"

namespace dualnet {

TreeShape tree_shape(const Config& cfg);
NetworkShape network_shape(const Config& cfg);

}  // namespace dualnet
