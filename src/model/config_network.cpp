#include "model/config_network.hpp"

namespace dualnet {

TreeShape tree_shape(const Config& cfg) {
  return TreeShape(static_cast<int>(cfg.depth), static_cast<int>(cfg.num_children), static_cast<int>(cfg.hid));
}

NetworkShape network_shape(const Config& cfg) {
  NetworkShape net;
  net.tree = tree_shape(cfg);
  net.bias = cfg.bias;
  net.normalize_output = cfg.normalize_output;
  return net;
}

}  // namespace dualnet
