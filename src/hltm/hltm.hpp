#pragma once
// The hierarchical latent tree model: edge polarities and the sampler of views (docs/science.md#hltm, #views).
// An item is an anchor (view 0), a positive (view 1) and H negatives (views 2..H+1). Every
// view of item g is drawn from counters (node group, view, g) under the run's seed, so the
// stream is a pure function of (seed, global item index).
#include <cstdint>

#include "hltm/tree.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

// delta of the edge into each node, indexed by node over the whole tree (latents then
// leaves); NaN at the root. Drawn from the seed: |delta| ~ U[lower, upper], random sign.
View1<real> draw_polarities(const TreeShape& tree, std::uint64_t seed, double lower, double upper);

// Root-to-node correlation rho_0mu: the product of the polarities on the path.
View1<real> root_correlations(const TreeShape& tree, const View1<real>& polarity);

// Samples of `items` consecutive items starting at global index `first_item`, `views` views
// each, into rows item*views + view: latent values (0/1) and leaf values (0.0/1.0).
struct SampleBatch {
  View2<std::uint8_t> latent;  // [rows][n_latent]
  View2<real> leaves;          // [rows][n_leaf]
  // [node] a node keeps its parent's value when its 32-bit draw is below this bound (the
  // root: is 1 when below); filled by keep_bounds(), a function of the polarities only.
  View1<std::uint64_t> keep_bound;
  void allocate(const TreeShape& tree, std::int64_t rows);
  // Bytes allocate(tree, rows) holds, in floating point (the memory estimate sizes absurd
  // configs with it); tests check it against the allocated Views.
  static double bytes(const TreeShape& tree, std::int64_t rows);
};

// The keep bounds of every node from the polarities (one kernel; once per run is enough).
void keep_bounds(const TreeShape& tree, const View1<real>& polarity, const View1<std::uint64_t>& keep);

// With the bounds of keep_bounds(): one kernel.
void sample_views(const TreeShape& tree, const View1<std::uint64_t>& keep, std::uint64_t seed, int share_levels,
                  std::int64_t first_item, std::int64_t items, int views, const SampleBatch& out);
// The same, computing the bounds into out.keep_bound first.
void sample_views(const TreeShape& tree, const View1<real>& polarity, std::uint64_t seed, int share_levels,
                  std::int64_t first_item, std::int64_t items, int views, const SampleBatch& out);

}  // namespace dualnet
