#pragma once
// The twin network (docs/science.md#network): one ReLU sub-network per latent node, mirroring the tree,
// applied with shared weights to every view. Rows of the activation arrays are
// (item, view) pairs; columns are neurons (node*hid + j).
#include <cstdint>

#include "hltm/tree.hpp"
#include "model/padded_layout.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

constexpr double kOutputEps = 1e-4;

struct NetworkShape {
  TreeShape tree;
  bool bias = true;
  bool normalize_output = true;
};

// PyTorch Linear initialisation, W and b ~ U(-1/sqrt(in), 1/sqrt(in)), from the seed
// (biases are zero in a bias-free network).
View1<real> init_params(const NetworkShape& net, std::uint64_t seed);

struct Activations {
  View2<real> pre;  // [rows][n_neuron] pre-activations h
  // [rows][n_neuron] relu(h): the inputs of the parents, stored once by forward() so the
  // inner loops that read them (forward, weight_gradient) need no ReLU of their own.
  View2<real> post;
  View2<real> out;   // [rows][hid] network output f
  View1<real> norm;  // [rows] |h_root|
  // The weights in the kernels' padded layouts (model/padded_layout.hpp), written by
  // pad_weights() (or the trainer's update kernel): wt for forward itself, wb for backward
  // and the evaluation's Jacobians. Two Activations may share them (Views are handles).
  View1<real> wt;  // [PaddedLayout::forward_size()]
  View1<real> wb;  // [PaddedLayout::backward_size()]
  // With `weights_of`, shares that one's padded weights instead of allocating its own.
  void allocate(const TreeShape& tree, std::int64_t rows, const Activations* weights_of = nullptr);
  // Bytes allocate(tree, rows, ...) holds, in floating point (for the memory estimate);
  // tests check it against the allocated Views.
  static double bytes(const TreeShape& tree, std::int64_t rows, bool own_weights = true);
};

// `params` into act's padded weight layouts (act.wt, act.wb): one kernel.
void pad_weights(const NetworkShape& net, const View1<real>& params, const Activations& act);

// Bottom-up pass over `rows` rows of `leaves` with the weights already in act's padded
// layouts (pad_weights), and the same after padding `params` first.
void forward(const NetworkShape& net, const View2<real>& leaves, std::int64_t rows, const Activations& act);
void forward(const NetworkShape& net, const View1<real>& params, const View2<real>& leaves, std::int64_t rows,
             const Activations& act);

// dL/dh for every neuron of the forward pass that filled act (its weights included), from
// dL/df (grad_out [rows][hid]) into delta [rows][PaddedLayout::delta_columns()]: node mu's
// neuron j in column mu * stride + j. The padding columns are not written.
void backward(const NetworkShape& net, const Activations& act, const View2<real>& grad_out, std::int64_t rows,
              const View2<real>& delta);

// Gradient of the loss w.r.t. every parameter in 64-bit fixed point: rows are summed in
// chunks of `rows_per_chunk` consecutive rows (in double, in row order), each chunk sum is
// rounded to fixed point, and the chunks are added as integers into grad[0, n_params),
// which must hold 0 before (the trainer's update kernel zeroes it for the next step).
// Values out of range add 1 to grad(overflow_slot). delta is backward's (padded columns).
void weight_gradient(const NetworkShape& net, const Activations& act, const View2<real>& leaves,
                     const View2<real>& delta, std::int64_t rows, std::int64_t rows_per_chunk,
                     const View1<std::int64_t>& grad, std::int64_t overflow_slot);

// Frobenius norm of each node's weight matrix W_mu (biases excluded), [n_latent].
View1<real> weight_norms(const NetworkShape& net, const View1<real>& params);
// Per node, |W_mu - W_mu(before)|_F / |W_mu(before)|_F (biases excluded): how far the
// weights moved since `before`; exactly 0 when none moved.
View1<real> weight_changes(const NetworkShape& net, const View1<real>& params, const View1<real>& before);

// The inputs of node mu for one row, contiguous: leaf values, or pre-activations of its
// children (to be passed through ReLU). Kernels index [0, in_size(mu)).
struct NodeInput {
  const real* x;
  bool relu;
  KOKKOS_INLINE_FUNCTION real operator[](int i) const { return relu ? kmath::relu(x[i]) : x[i]; }
};

KOKKOS_INLINE_FUNCTION NodeInput node_input(const TreeShape& t, const View2<real>& pre, const View2<real>& leaves,
                                            std::int64_t row, int node) {
  const int fc = t.first_child(node);
  if (t.feeds_on_leaves(node)) return NodeInput{&leaves(row, fc - t.n_latent), false};
  return NodeInput{&pre(row, fc * t.hid), true};
}

}  // namespace dualnet
