#pragma once
// The layouts the tile kernels read, with their padding explicit (as llm.c pads its
// vocabulary). A node's column tile (node_col_tile, model/tile_product.hpp) reads `stride`
// columns of every row of B: hid rounded up to whole 4-wide vectors for 4 <= hid <= 12,
// hid otherwise. Every B a node's tile reads is laid out with rows of `stride`, so the
// columns past hid are this node's own padding, never a neighbour's values:
//  - forward's weights (Activations::wt): per node, W_mu^T as in_mu rows (row i holds
//    W_mu(j, i) in column j), then b_mu as one more row;
//  - backward's and the Jacobians' weights (Activations::wb): per node fed by neurons, W_mu
//    as hid rows (its neurons j) of k blocks (its children q), block q holding W_mu(j, q*hid + e);
//  - dL/dh (backward's `delta`): per row, each node's hid values in a block of `stride`.
// forward() (the weights) and backward() (dL/dh) write every entry but the padding; the
// kernels compute the padding's columns and drop them (they never reach a sum, a store or
// the fixed-point overflow check; tests/unit/test_padding.cpp fills them with NaN). The
// parameters themselves (params, gradients, checkpoints) keep the unpadded layout of
// TreeShape. Trivially copyable: kernels capture it by value.
#include <cstdint>

#include "hltm/tree.hpp"
#include "model/tile_product.hpp"

namespace dualnet {

struct PaddedLayout {
  TreeShape t;
  int stride = 0;  // columns of one node's block: hid plus its padding

  PaddedLayout() = default;
  // The stride is where the node's last column tile stops reading: the one place that
  // ties the padding to the tiles.
  explicit PaddedLayout(const TreeShape& tree) : t(tree) {
    const int tiles = node_col_tile_count(t.hid);
    const ColTile last = node_col_tile(tiles - 1, t.hid);
    stride = last.start + last.read;
  }

  // Forward's weights.
  KOKKOS_INLINE_FUNCTION std::int64_t forward_offset(int node) const {
    const int inner = t.level_start[t.depth - 1];
    const std::int64_t big = static_cast<std::int64_t>(t.k * t.hid + 1) * stride;
    if (node < inner) return node * big;
    return inner * big + static_cast<std::int64_t>(node - inner) * (t.k + 1) * stride;
  }
  KOKKOS_INLINE_FUNCTION std::int64_t forward_size() const { return forward_offset(t.n_latent); }

  // Backward's weights: nodes fed by neurons only (the others have no neurons below).
  KOKKOS_INLINE_FUNCTION std::int64_t backward_row() const { return static_cast<std::int64_t>(t.k) * stride; }
  KOKKOS_INLINE_FUNCTION std::int64_t backward_offset(int node) const { return node * t.hid * backward_row(); }
  KOKKOS_INLINE_FUNCTION std::int64_t backward_size() const { return backward_offset(t.level_start[t.depth - 1]); }

  // dL/dh: node mu's neuron j is column mu * stride + j.
  KOKKOS_INLINE_FUNCTION std::int64_t delta_columns() const { return static_cast<std::int64_t>(t.n_latent) * stride; }

  // Neuron (node, j)'s weights from params into the padded layouts: row j of W_mu to
  // column j of wt and its bias to the bias row; for a node fed by neurons, row j of W_mu
  // also to row j of wb, child by child. Reads only the neuron's own parameters (row j of
  // W_mu and b_mu(j)), so the update kernel can pad what its thread just updated. The
  // padding is not written.
  template <class Params, class Weights>
  KOKKOS_INLINE_FUNCTION void copy_neuron(const Params& params, const Weights& wt, const Weights& wb, int node,
                                          int j) const {
    const int in = t.in_size(node), hid = t.hid;
    const std::int64_t off = t.param_offset(node), fo = forward_offset(node);
    for (int i = 0; i < in; ++i)
      wt(fo + static_cast<std::int64_t>(i) * stride + j) = params(off + static_cast<std::int64_t>(j) * in + i);
    wt(fo + static_cast<std::int64_t>(in) * stride + j) = params(off + static_cast<std::int64_t>(hid) * in + j);
    if (t.feeds_on_leaves(node)) return;
    const std::int64_t bo = backward_offset(node) + j * backward_row();
    for (int q = 0; q < t.k; ++q)
      for (int e = 0; e < hid; ++e)
        wb(bo + static_cast<std::int64_t>(q) * stride + e) =
            params(off + static_cast<std::int64_t>(j) * in + q * hid + e);
  }
};

}  // namespace dualnet
