#include "hltm/hltm.hpp"

#include <cmath>
#include <limits>

#include "hltm/counter_rng.hpp"

namespace dualnet {

View1<real> draw_polarities(const TreeShape& tree, std::uint64_t seed, double lower, double upper) {
  const int n_nodes = tree.n_latent + tree.n_leaf;
  View1<real> polarity("hltm.polarity", n_nodes);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Kokkos::parallel_for(
      "hltm::draw_polarities", range(n_nodes), KOKKOS_LAMBDA(const std::int64_t node) {
        if (node == 0) {
          polarity(0) = nan;
          return;
        }
        const Draw4 d = philox(seed, static_cast<std::uint32_t>(node), kRngPolarity, 0, 0);
        const double magnitude = lower + (upper - lower) * to_unit(d.v[0]);
        polarity(node) = (d.v[1] & 1u) ? -magnitude : magnitude;
      });
  return polarity;
}

View1<real> root_correlations(const TreeShape& tree, const View1<real>& polarity) {
  const int n_nodes = tree.n_latent + tree.n_leaf;
  View1<real> rho("hltm.rho_root", n_nodes);
  Kokkos::parallel_for(
      "hltm::root_correlations", range(n_nodes), KOKKOS_LAMBDA(const std::int64_t node) {
        double r = 1.0;
        for (std::int64_t n = node; n > 0; n = tree.parent(static_cast<int>(n))) r *= polarity(n);
        rho(node) = r;
      });
  return rho;
}

void SampleBatch::allocate(const TreeShape& tree, std::int64_t rows) {
  if (latent.extent(0) == static_cast<size_t>(rows)) return;
  latent = View2<std::uint8_t>("hltm.latent", rows, tree.n_latent);
  leaves = View2<real>("hltm.leaves", rows, tree.n_leaf);
  keep_bound = View1<std::uint64_t>("hltm.keep_bound", tree.n_latent + tree.n_leaf);
}

double SampleBatch::bytes(const TreeShape& tree, std::int64_t rows) {
  const double r = static_cast<double>(rows), latents = tree.n_latent, leaf = tree.n_leaf;
  // Kokkos rounds an allocation up to whole 8 bytes (the 0/1 latents are bytes).
  return 8.0 * std::ceil(r * latents * sizeof(std::uint8_t) / 8.0) + r * leaf * sizeof(real) +
         (latents + leaf) * sizeof(std::uint64_t);
}

void sample_views(const TreeShape& tree, const View1<real>& polarity, std::uint64_t seed, int share_levels,
                  std::int64_t first_item, std::int64_t items, int views, const SampleBatch& out) {
  const auto latent = out.latent;
  const auto leaves = out.leaves;
  const auto keep = out.keep_bound;
  // Nodes before this index are shared by anchor and positive (levels < share_levels).
  const int shared_nodes = tree.level_start[share_levels];
  const int n_nodes = tree.n_latent + tree.n_leaf;
  // A node keeps its parent's value with probability p = (1 + polarity) / 2 (the root is 1
  // with p = 1/2): u = (x + 0.5) 2^-32 < p for the 32-bit draw x. Both sides scale by 2^32
  // exactly, so that is x < ceil(p 2^32 - 0.5): the same decisions as comparing doubles,
  // without converting every draw.
  Kokkos::parallel_for(
      "hltm::keep_bounds", range(n_nodes), KOKKOS_LAMBDA(const std::int64_t node) {
        const double p = node == 0 ? 0.5 : 0.5 * (1.0 + polarity(node));
        const double bound = kmath::ceil(p * 4294967296.0 - 0.5);
        keep(node) = bound > 0.0 ? static_cast<std::uint64_t>(bound) : 0;
      });
  Kokkos::parallel_for(
      "hltm::sample_views", range(items * views), KOKKOS_LAMBDA(const std::int64_t row) {
        const std::int64_t item = row / views;
        const int view = static_cast<int>(row % views);
        const std::uint64_t g = static_cast<std::uint64_t>(first_item + item);
        // The positive re-draws the anchor's numbers on shared levels, so it agrees there.
        std::uint32_t cached_group = 0xFFFFFFFFu, cached_view = 0xFFFFFFFFu;
        Draw4 d{};
        int parent = 0, sibling = -1;  // node's parent, kept by counting (no division per node)
        for (int node = 0; node < n_nodes; ++node) {
          const std::uint32_t stream = (view == 1 && node < shared_nodes) ? 0u : static_cast<std::uint32_t>(view);
          const std::uint32_t group = static_cast<std::uint32_t>(node >> 2);
          if (group != cached_group || stream != cached_view) {
            d = philox(seed, group, stream, static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(g >> 32));
            cached_group = group;
            cached_view = stream;
          }
          const std::uint8_t below = d.v[node & 3] < keep(node) ? 1 : 0;
          std::uint8_t z = below;  // the root
          if (node > 0) {
            if (++sibling == tree.k) {
              sibling = 0;
              ++parent;
            }
            z = latent(row, parent) ^ static_cast<std::uint8_t>(1 - below);  // keep the parent's value when below
          }
          if (node < tree.n_latent)
            latent(row, node) = z;
          else
            leaves(row, node - tree.n_latent) = static_cast<real>(z);
        }
      });
}

}  // namespace dualnet
