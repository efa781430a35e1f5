#pragma once
// Shape of the complete k-ary hierarchical latent tree and of the network that mirrors it.
// Nodes are numbered breadth-first over the whole tree: root = 0, children of node i are
// k*i+1 ... k*i+k. Latent nodes are 0 .. n_latent-1 (levels 0 .. depth-1); the leaves
// (level depth, the observed input) follow, so leaf number = node - n_latent.
// Each latent node owns `hid` neurons; neuron n belongs to node n / hid.
// Parameters of node mu sit in one flat array: W_mu (hid x in_mu, row-major), then b_mu (hid).
// This struct is trivially copyable, so kernels capture it by value.
#include <Kokkos_Core.hpp>
#include <cstdint>

#include "util/fast_div.hpp"

namespace dualnet {

constexpr int kMaxDepth = 20;

struct TreeShape {
  int depth = 0;  // levels of latents
  int k = 0;      // children per node
  int hid = 0;    // neurons per latent node
  int n_latent = 0;
  int n_leaf = 0;
  int level_start[kMaxDepth + 2] = {};  // first node of each level; level_start[depth] = n_latent
  FastDiv by_k;                         // divides by k without a hardware divide (parent)

  TreeShape() = default;
  TreeShape(int depth_, int k_, int hid_);

  KOKKOS_INLINE_FUNCTION int level_of(int node) const {
    int l = 0;
    while (node >= level_start[l + 1]) ++l;
    return l;
  }
  KOKKOS_INLINE_FUNCTION int nodes_at(int level) const { return level_start[level + 1] - level_start[level]; }
  KOKKOS_INLINE_FUNCTION int first_child(int node) const { return k * node + 1; }
  // (node - 1) / k: exact, as the constructor checks that the nodes times k stay within 2^32.
  KOKKOS_INLINE_FUNCTION int parent(int node) const { return by_k.quot(node - 1); }
  // True for the latents just above the leaves: their inputs are leaf values, not neurons.
  KOKKOS_INLINE_FUNCTION bool feeds_on_leaves(int node) const { return node >= level_start[depth - 1]; }
  KOKKOS_INLINE_FUNCTION int in_size(int node) const { return feeds_on_leaves(node) ? k : k * hid; }
  KOKKOS_INLINE_FUNCTION int n_neuron() const { return n_latent * hid; }

  // Flat parameter layout.
  KOKKOS_INLINE_FUNCTION std::int64_t params_of(int node) const {
    return static_cast<std::int64_t>(hid) * (in_size(node) + 1);
  }
  KOKKOS_INLINE_FUNCTION std::int64_t param_offset(int node) const {
    const int inner = level_start[depth - 1];  // nodes whose inputs are neurons
    const std::int64_t big = static_cast<std::int64_t>(hid) * (k * hid + 1);
    if (node < inner) return node * big;
    return inner * big + static_cast<std::int64_t>(node - inner) * hid * (k + 1);
  }
  KOKKOS_INLINE_FUNCTION std::int64_t n_params() const { return param_offset(n_latent); }
  // W_mu's entries (biases excluded): params [first, first + count).
  struct WeightRange {
    std::int64_t first, count;
  };
  KOKKOS_INLINE_FUNCTION WeightRange weights_of(int node) const {
    return {param_offset(node), static_cast<std::int64_t>(hid) * in_size(node)};
  }

  // Layout of the per-node covariance-operator tensors conn = input (x) J: in_mu x hid x hid.
  KOKKOS_INLINE_FUNCTION std::int64_t conn_size(int node) const {
    return static_cast<std::int64_t>(in_size(node)) * hid * hid;
  }
  KOKKOS_INLINE_FUNCTION std::int64_t conn_offset(int node) const {
    const int inner = level_start[depth - 1];
    const std::int64_t big = static_cast<std::int64_t>(k) * hid * hid * hid;
    if (node < inner) return node * big;
    return inner * big + static_cast<std::int64_t>(node - inner) * k * hid * hid;
  }
  KOKKOS_INLINE_FUNCTION std::int64_t n_conn() const { return conn_offset(n_latent); }
  // Node owning flat conn entry e (inverse of conn_offset).
  KOKKOS_INLINE_FUNCTION int conn_node(std::int64_t e) const {
    const int inner = level_start[depth - 1];
    const std::int64_t big = static_cast<std::int64_t>(k) * hid * hid * hid;
    if (e < inner * big) return static_cast<int>(e / big);
    return inner + static_cast<int>((e - inner * big) / (static_cast<std::int64_t>(k) * hid * hid));
  }
};

}  // namespace dualnet
