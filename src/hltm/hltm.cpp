#include "hltm/hltm.hpp"

#include <cmath>
#include <limits>

#include "hltm/counter_rng.hpp"
#include "model/tile_product.hpp"  // DUALNET_TILE_VECTORS

namespace dualnet {

namespace {
// The rows one sample_views thread draws together: one per 64-bit lane of a host vector.
// The lane count also sizes the kernel's range on the host, so a device build uses one
// lane in both of its compiler passes.
#if defined(DUALNET_TILE_VECTORS) && !defined(KOKKOS_ENABLE_CUDA) && !defined(KOKKOS_ENABLE_HIP) && \
    !defined(KOKKOS_ENABLE_SYCL)
typedef std::uint64_t RowLanes __attribute__((vector_size(32)));
constexpr int kRowLanes = 4;
inline std::uint64_t get_lane(const RowLanes& v, int l) { return v[l]; }
inline void set_lane(RowLanes& v, int l, std::uint64_t x) { v[l] = x; }
// The 64-bit products of 32-bit lanes (Philox's multiplies).
inline RowLanes mul_lo32(RowLanes a, std::uint64_t m) {
#ifdef __AVX2__
  typedef int i8 __attribute__((vector_size(32)));
  const RowLanes b = {m, m, m, m};
  return reinterpret_cast<RowLanes>(__builtin_ia32_pmuludq256(reinterpret_cast<i8>(a), reinterpret_cast<i8>(b)));
#else
  return (a & 0xFFFFFFFFu) * m;
#endif
}
#else
typedef std::uint64_t RowLanes;
constexpr int kRowLanes = 1;
KOKKOS_INLINE_FUNCTION std::uint64_t get_lane(RowLanes v, int) { return v; }
KOKKOS_INLINE_FUNCTION void set_lane(RowLanes& v, int, std::uint64_t x) { v = x; }
KOKKOS_INLINE_FUNCTION RowLanes mul_lo32(RowLanes a, std::uint64_t m) { return (a & 0xFFFFFFFFu) * m; }
#endif
// f(l) for the lanes l < n of a group of rows: a constant count (unrolled) for a whole group.
template <class F>
KOKKOS_FORCEINLINE_FUNCTION void each_lane(int n, const F& f) {
  if (n == kRowLanes) {
    for (int l = 0; l < kRowLanes; ++l) f(l);
  } else {
    for (int l = 0; l < n; ++l) f(l);
  }
}
struct MulLo32 {
  KOKKOS_INLINE_FUNCTION RowLanes operator()(RowLanes a, std::uint64_t m) const { return mul_lo32(a, m); }
};
}  // namespace

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

// A node keeps its parent's value with probability p = (1 + polarity) / 2 (the root is 1
// with p = 1/2): u = (x + 0.5) 2^-32 < p for the 32-bit draw x. Both sides scale by 2^32
// exactly, so that is x < ceil(p 2^32 - 0.5): the same decisions as comparing doubles,
// without converting every draw.
void keep_bounds(const TreeShape& tree, const View1<real>& polarity, const View1<std::uint64_t>& keep) {
  Kokkos::parallel_for(
      "hltm::keep_bounds", range(tree.n_latent + tree.n_leaf), KOKKOS_LAMBDA(const std::int64_t node) {
        const double p = node == 0 ? 0.5 : 0.5 * (1.0 + polarity(node));
        const double bound = kmath::ceil(p * 4294967296.0 - 0.5);
        keep(node) = bound > 0.0 ? static_cast<std::uint64_t>(bound) : 0;
      });
}

void sample_views(const TreeShape& tree, const View1<real>& polarity, std::uint64_t seed, int share_levels,
                  std::int64_t first_item, std::int64_t items, int views, const SampleBatch& out) {
  keep_bounds(tree, polarity, out.keep_bound);
  sample_views(tree, out.keep_bound, seed, share_levels, first_item, items, views, out);
}

void sample_views(const TreeShape& tree, const View1<std::uint64_t>& keep, std::uint64_t seed, int share_levels,
                  std::int64_t first_item, std::int64_t items, int views, const SampleBatch& out) {
  const auto latent = out.latent;
  const auto leaves = out.leaves;
  // Nodes before this index are shared by anchor and positive (levels < share_levels).
  const int shared_nodes = tree.level_start[share_levels];
  const int n_nodes = tree.n_latent + tree.n_leaf;
  // Rows in groups of kRowLanes, one Philox counter per row in each vector lane (the draws
  // are most of the work); the rest is per row, as before.
  const std::int64_t rows = items * views;
  const MulLo32 mul;
  const std::int64_t z_step = static_cast<std::int64_t>(latent.stride_0()),
                     x_step = static_cast<std::int64_t>(leaves.stride_0());
  Kokkos::parallel_for(
      "hltm::sample_views", range((rows + kRowLanes - 1) / kRowLanes), KOKKOS_LAMBDA(const std::int64_t grp) {
        const std::int64_t r0 = grp * kRowLanes;
        const int n = rows - r0 < kRowLanes ? static_cast<int>(rows - r0) : kRowLanes;
        // Per lane: the item's index g (two counter words) and the view's stream on levels
        // not shared and shared (the positive re-draws the anchor's numbers on shared levels,
        // so it agrees there). Lanes past the last row repeat it.
        RowLanes g_lo{}, g_hi{}, own{}, shared{};
        for (int l = 0; l < kRowLanes; ++l) {
          const std::int64_t row = r0 + (l < n ? l : n - 1);
          const std::uint64_t g = static_cast<std::uint64_t>(first_item + row / views);
          const std::uint64_t view = static_cast<std::uint64_t>(row % views);
          set_lane(g_lo, l, g & 0xFFFFFFFFu);
          set_lane(g_hi, l, g >> 32);
          set_lane(own, l, view);
          set_lane(shared, l, view == 1 ? 0 : view);
        }
        int parent = 0, sibling = -1;  // node's parent, kept by counting (no division per node)
        for (int group = 0; 4 * group < n_nodes; ++group) {
          const int end = 4 * group + 4 < n_nodes ? 4 * group + 4 : n_nodes;
          const RowLanes c0 = RowLanes{} + static_cast<std::uint64_t>(group);
          RowLanes d[4];  // the draws of the group's nodes
          philox_lanes(seed, c0, own, g_lo, g_hi, d, mul);
          if (4 * group < shared_nodes) {
            RowLanes ds[4];
            philox_lanes(seed, c0, shared, g_lo, g_hi, ds, mul);
            for (int s = 0; s < 4; ++s)
              if (4 * group + s < shared_nodes) d[s] = ds[s];
          }
          for (int s = 0; s < 4; ++s) {  // d[s], a constant index: d stays in registers on a GPU
            const int node = 4 * group + s;
            if (node >= end) break;
            const std::uint64_t bound = keep(node);
            if (node > 0 && ++sibling == tree.k) {
              sibling = 0;
              ++parent;
            }
            // The root is 1 when below; a node keeps its parent's value when below: z = up xor
            // (not below), with up the parent's value (1 for the root). Per lane: the lanes of a
            // whole group unrolled, the node's kind and the root tested once per node, not per lane.
            const std::uint8_t* const up = &latent(r0, parent);
            const std::uint8_t root = node == 0 ? 1 : 0;
            const auto z = [&](int l) {
              const std::uint8_t not_below = get_lane(d[s], l) < bound ? 0 : 1;
              return static_cast<std::uint8_t>((root | up[l * z_step]) ^ not_below);
            };
            if (node < tree.n_latent) {
              std::uint8_t* const out_z = &latent(r0, node);
              each_lane(n, [&](int l) { out_z[l * z_step] = z(l); });
            } else {
              real* const out_x = &leaves(r0, node - tree.n_latent);
              each_lane(n, [&](int l) { out_x[l * x_step] = static_cast<real>(z(l)); });
            }
          }
        }
      });
}

}  // namespace dualnet
