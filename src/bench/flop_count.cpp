#include "bench/flop_count.hpp"

namespace dualnet {

FlopCount count_flops(const TreeShape& t, int views) {
  const double hid = t.hid;
  double weights = 0.0, conn = 0.0;  // sum over nodes of hid*in and of in*hid*hid
  for (int node = 0; node < t.n_latent; ++node) {
    weights += hid * t.in_size(node);
    conn += static_cast<double>(t.conn_size(node));
  }
  const double non_root = t.n_latent - 1;
  FlopCount f{};
  f.forward_per_view = 2.0 * weights + 4.0 * hid;                                // W x + b, normalisation
  f.backward_per_view = 2.0 * non_root * hid * hid + 2.0 * weights + 6.0 * hid;  // W^T delta, gradient
  f.train_per_item = views * (f.forward_per_view + f.backward_per_view);
  const double neurons = t.n_neuron();
  f.eval_per_anchor = f.forward_per_view + 3.0 * neurons + neurons * t.n_latent  // moments, z*h
                      + 2.0 * non_root * hid * hid * hid                         // Jacobians
                      + 2.0 * conn;                                              // conn class sums
  return f;
}

}  // namespace dualnet
