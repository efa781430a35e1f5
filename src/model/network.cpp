#include "model/network.hpp"

#include <string>
#include <utility>

#include "hltm/counter_rng.hpp"
#include "model/tile_product.hpp"
#include "util/error.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

View1<real> init_params(const NetworkShape& net, std::uint64_t seed) {
  const TreeShape t = net.tree;
  const bool bias = net.bias;
  View1<real> params("model.params", t.n_params());
  Kokkos::parallel_for(
      "model::init_params", range(t.n_latent * t.hid), KOKKOS_LAMBDA(const std::int64_t n) {
        const int node = static_cast<int>(n / t.hid), j = static_cast<int>(n % t.hid);
        const int in = t.in_size(node);
        const double bound = 1.0 / kmath::sqrt(static_cast<double>(in));
        const std::int64_t off = t.param_offset(node);
        // Parameter p uses output p%4 of the draw for counter p/4.
        const auto u = [&](std::int64_t p) {
          const Draw4 d =
              philox(seed, static_cast<std::uint32_t>(p >> 2), kRngWeights, static_cast<std::uint32_t>(p >> 34), 0);
          return -bound + 2.0 * bound * to_unit(d.v[p & 3]);
        };
        for (int i = 0; i < in; ++i) params(off + j * in + i) = u(off + j * in + i);
        const std::int64_t pb = off + static_cast<std::int64_t>(t.hid) * in + j;
        params(pb) = bias ? u(pb) : 0.0;
      });
  return params;
}

void Activations::allocate(const TreeShape& tree, std::int64_t rows, const Activations* weights_of) {
  if (pre.extent(0) == static_cast<size_t>(rows)) return;
  pre = View2<real>("model.pre", rows, tree.n_neuron());
  post = View2<real>("model.post", rows, tree.n_neuron());
  out = View2<real>("model.out", rows, tree.hid);
  norm = View1<real>("model.norm", rows);
  if (weights_of) {
    wt = weights_of->wt;
    wb = weights_of->wb;
    return;
  }
  const PaddedLayout pad(tree);
  wt = View1<real>("model.weights_forward", pad.forward_size());
  // A tree of one level has no node fed by neurons (and Kokkos would allocate for size 0).
  if (pad.backward_size() > 0) wb = View1<real>("model.weights_backward", pad.backward_size());
}

double Activations::bytes(const TreeShape& tree, std::int64_t rows, bool own_weights) {
  const double r = static_cast<double>(rows), neurons = static_cast<double>(tree.n_latent) * tree.hid;
  const PaddedLayout pad(tree);
  const double weights = own_weights ? static_cast<double>(pad.forward_size() + pad.backward_size()) : 0.0;
  return sizeof(real) * (2.0 * r * neurons + r * tree.hid + r + weights);
}

namespace {

// Every View a kernel reads in a padded layout holds that layout: checked once, here.
void require_padded(const PaddedLayout& pad, const Activations& act, const View2<real>* delta) {
  if (act.wt.extent(0) < static_cast<size_t>(pad.forward_size()) ||
      act.wb.extent(0) < static_cast<size_t>(pad.backward_size()))
    DUALNET_FAIL("Activations not allocated for this tree's padded weight layouts");
  if (delta && delta->extent(1) < static_cast<size_t>(pad.delta_columns()))
    DUALNET_FAIL("dL/dh has " + std::to_string(delta->extent(1)) + " columns, the padded layout needs " +
                 std::to_string(pad.delta_columns()));
}

// acc[e] += to_fixed(sum over k < K of b[k * b_step + e]) for e < cols: one row of a tile
// product with A = 1 over `read` columns (the bias gradient), in the same order of additions.
KOKKOS_INLINE_FUNCTION void column_sums_fixed(const real* b, std::int64_t b_step, int K, int read, int cols,
                                              std::int64_t acc[kTileMaxCols], bool* overflow) {
  double s[kTileMaxCols] = {};
  if (read == 12)
    add_row_sums<12>(StridedB{b, b_step}, K, read, s);
  else if (read == 8)
    add_row_sums<8>(StridedB{b, b_step}, K, read, s);
  else if (read == 4)
    add_row_sums<4>(StridedB{b, b_step}, K, read, s);
  else
    add_row_sums<kTileMaxCols>(StridedB{b, b_step}, K, read, s);
  for_cols<kTileMaxCols>(0, cols, [&](int e) { acc[e] += to_fixed(s[e], overflow, kGradFixed); });
}

// Input tiles of one weight-gradient team: on the host all of a node's (up to 8), for the
// cache; on a device one, for the registers (a constant of the build, so both compiler
// passes of a device build size the league alike).
#if defined(KOKKOS_ENABLE_CUDA) || defined(KOKKOS_ENABLE_HIP) || defined(KOKKOS_ENABLE_SYCL)
constexpr int kWgTilesPerTeam = 1;
#else
constexpr int kWgTilesPerTeam = 8;
#endif

#ifdef DUALNET_TILE_VECTORS
// The weight gradient requests each next chunk's rows ahead when a step's rows of delta and
// activations exceed this (measured on a Zen 4 host, 1 MiB of L2: the reference's 2 MB lost
// 5-9 % to the extra instructions; k = 4 at 5.7 MB gained 9-16 %, depth 7 and 8 at 8.6 and
// 17 MB 16-47 %).
constexpr std::int64_t kWgPrefetchBytes = std::int64_t(4) << 20;
#endif

KOKKOS_INLINE_FUNCTION bool tile_ones_row_available(int cols) {
#ifdef DUALNET_TILE_VECTORS
  return cols == 12 || cols == 8 || cols == 4;
#else
  (void)cols;
  return false;
#endif
}

// A tile whose first `Inputs` rows are A's (a[m][k * a_step]) and whose next row has A = 1,
// the sums of B: a node with fewer inputs than tile rows (fed by k < 4 leaves) gets its
// bias gradient from the tile's spare row (y + s rounds as the tile's 1 * y + s does).
// Rows past it are 0. Returns false (computing nothing) where the host has no vector path.
template <int Inputs>
KOKKOS_INLINE_FUNCTION bool tile_product_ones_row(const real* const a[kTileRows], std::int64_t a_step, const real* b,
                                                  std::int64_t b_step, int K, int cols, Tile* out) {
#ifdef DUALNET_TILE_VECTORS
  static_assert(Inputs < kTileRows, "a row of the tile is left for the ones");
  if (!tile_ones_row_available(cols)) return false;
  using tile_vec::v4;
  const int vectors = cols / 4;
  v4 c[Inputs + 1][3] = {};
  for (int k = 0; k < K; ++k) {
    double x[Inputs];
    for (int m = 0; m < Inputs; ++m) x[m] = a[m][k * a_step];
    for (int h = 0; h < 3; ++h) {
      if (h >= vectors) break;
      const v4 y = tile_vec::load(b + k * b_step + 4 * h);
      for (int m = 0; m < Inputs; ++m) c[m][h] += x[m] * y;
      c[Inputs][h] += y;
    }
  }
  for (int m = 0; m < kTileRows; ++m)
    for (int h = 0; h < 3; ++h) tile_vec::store(m <= Inputs && h < vectors ? c[m][h] : v4{}, &out->c[m][4 * h]);
  return true;
#else
  (void)a, (void)a_step, (void)b, (void)b_step, (void)K, (void)cols, (void)out;
  return false;
#endif
}

}  // namespace

// One thread per neuron (PaddedLayout::copy_neuron).
void pad_weights(const NetworkShape& net, const View1<real>& params, const Activations& act) {
  const TreeShape t = net.tree;
  const PaddedLayout pad(t);
  require_padded(pad, act, nullptr);
  const auto wt = act.wt;
  const auto wb = act.wb;
  Kokkos::parallel_for(
      "model::pad_weights", range(t.n_neuron()), KOKKOS_LAMBDA(const std::int64_t n) {
        pad.copy_neuron(params, wt, wb, static_cast<int>(n / t.hid), static_cast<int>(n % t.hid));
      });
}

void forward(const NetworkShape& net, const View1<real>& params, const View2<real>& leaves, std::int64_t rows,
             const Activations& act) {
  pad_weights(net, params, act);
  forward(net, leaves, rows, act);
}

// One team per block of kTileRows rows: the block's activations stay in cache from the
// leaves to the output. Each thread computes a node's tiles of 4 rows x up to 12 neurons
// from W_mu transposed (model/tile_product.hpp).
void forward(const NetworkShape& net, const View2<real>& leaves, std::int64_t rows, const Activations& act) {
  const TreeShape t = net.tree;
  const PaddedLayout pad(t);
  require_padded(pad, act, nullptr);
  const auto pre = act.pre;
  const auto post = act.post;
  const auto wt = act.wt;
  const bool normalize = net.normalize_output;
  const int tiles = node_col_tile_count(t.hid);
  const std::int64_t pre_step = static_cast<std::int64_t>(pre.stride_0());
  const std::int64_t leaf_step = static_cast<std::int64_t>(leaves.stride_0());
  Kokkos::parallel_for(
      "model::forward", teams(row_blocks(rows)), KOKKOS_LAMBDA(const Team& team) {
        const RowBlock rb(team.league_rank(), rows);
        const int hid = t.hid;
        for (int level = t.depth - 1; level >= 0; --level) {
          const int first = t.level_start[level];
          // One thread per node (no index division: it cost more than a tile), its column tiles in turn.
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level)), [&](const int i) {
            const int node = first + i, in = t.in_size(node), stride = pad.stride;
            const std::int64_t off = pad.forward_offset(node);
            // A(m, i) = x[m * x_step + i]: the block's rows of inputs, leaves or post
            const real* x = node_input(t, post, leaves, rb.first, node).x;
            const std::int64_t x_step = t.feeds_on_leaves(node) ? leaf_step : pre_step;
            for (int tile = 0; tile < tiles; ++tile) {
              const ColTile ct = node_col_tile(tile, hid);
              const real* w = &wt(off + ct.start);  // B(i, e) = w[i * stride + e] = W_mu(j0 + e, i)
              const real* bias = &wt(off + static_cast<std::int64_t>(stride) * in + ct.start);
              real* h = &pre(rb.first, node * hid + ct.start);
              real* r = &post(rb.first, node * hid + ct.start);
#ifdef DUALNET_TILE_VECTORS
              // The same epilogue on whole vectors (the bias row is `stride` long: padding past hid).
              // The steps are captured by value: the stores go through memcpy, which may alias a
              // captured reference, and GCC reloaded the steps after every store.
              if (tile_vec::product_rows_step_each(
                      x, x_step, rb.count, StridedK{1}, StridedB{w, stride}, in, ct.read, ct.width,
                      [&, pre_step ](int m, int e, tile_vec::v4 v, auto n) __attribute__((always_inline)) {
                        const tile_vec::v4 he = v + tile_vec::load(bias + e);
                        tile_vec::store_first<n>(he, h + m * pre_step + e);
                        tile_vec::store_first<n>(tile_vec::relu(he), r + m * pre_step + e);
                      }))
                continue;
#endif
              const Tile s = tile_product_rows_step(x, x_step, rb.count, StridedK{1}, StridedB{w, stride}, in, ct.read);
              tile_store(s, rb.count, ct.width, [&](int m, int e, double v) {
                const double he = v + bias[e];
                h[m * pre_step + e] = he;
                r[m * pre_step + e] = kmath::relu(he);
              });
            }
          });
          team.team_barrier();
        }
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rb.count), [&](const int m) {
          const std::int64_t row = rb.first + m;
          double sq = 0.0;
          for (int j = 0; j < hid; ++j) sq += pre(row, j) * pre(row, j);
          const double n = kmath::sqrt(sq);
          act.norm(row) = n;
          const double scale = normalize ? 1.0 / (n + kOutputEps) : 1.0;
          for (int j = 0; j < hid; ++j) act.out(row, j) = pre(row, j) * scale;
        });
      });
}

void backward(const NetworkShape& net, const Activations& act, const View2<real>& grad_out, std::int64_t rows,
              const View2<real>& delta) {
  const TreeShape t = net.tree;
  const PaddedLayout pad(t);
  require_padded(pad, act, &delta);
  const auto pre = act.pre;
  const auto norm = act.norm;
  const auto wb = act.wb;
  const bool normalize = net.normalize_output;
  const int tiles = node_col_tile_count(t.hid);
  const std::int64_t pre_step = static_cast<std::int64_t>(pre.stride_0());
  const std::int64_t delta_step = static_cast<std::int64_t>(delta.stride_0());
  Kokkos::parallel_for(
      "model::backward", teams(row_blocks(rows)), KOKKOS_LAMBDA(const Team& team) {
        const RowBlock rb(team.league_rank(), rows);
        const int hid = t.hid;
        // Through f = h/(|h|+eps): dL/dh = g/(n+eps) - h (h.g) / (n (n+eps)^2).
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rb.count), [&](const int m) {
          const std::int64_t row = rb.first + m;
          if (!normalize) {
            for (int j = 0; j < hid; ++j) delta(row, j) = grad_out(row, j);
            return;
          }
          const double n = norm(row);
          double hg = 0.0;
          for (int j = 0; j < hid; ++j) hg += pre(row, j) * grad_out(row, j);
          const double a = 1.0 / (n + kOutputEps);
          const double b = n > 0.0 ? hg / (n * (n + kOutputEps) * (n + kOutputEps)) : 0.0;
          for (int j = 0; j < hid; ++j) delta(row, j) = a * grad_out(row, j) - b * pre(row, j);
        });
        team.team_barrier();
        // Top-down: each child pulls dL/dh from its parent through W_parent and its ReLU gate,
        // 4 rows x up to 12 neurons per tile, one thread per node.
        for (int level = 1; level < t.depth; ++level) {
          const int first = t.level_start[level];
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level)), [&](const int i) {
            const int node = first + i;
            const int parent = t.parent(node), q = node - t.first_child(parent), stride = pad.stride;
            const real* dp = &delta(rb.first, parent * stride);  // A(m, j) = dp[m * delta_step + j]
            for (int tile = 0; tile < tiles; ++tile) {
              const ColTile ct = node_col_tile(tile, hid);
              // B(j, e) = W_parent(j, q*hid + b0 + e): block q of row j of wb
              const real* w = &wb(pad.backward_offset(parent) + q * stride + ct.start);
              const real* h = &pre(rb.first, node * hid + ct.start);
              real* d = &delta(rb.first, node * stride + ct.start);
#ifdef DUALNET_TILE_VECTORS
              // The same gate on whole vectors (the steps by value, as in forward)
              if (tile_vec::product_rows_step_each(
                      dp, delta_step, rb.count, StridedK{1}, StridedB{w, pad.backward_row()}, hid, ct.read, ct.width,
                      [&, pre_step, delta_step ](int m, int e, tile_vec::v4 v, auto n) __attribute__((always_inline)) {
                        const tile_vec::v4 open = tile_vec::load_first<n>(h + m * pre_step + e);
                        tile_vec::store_first<n>(open > 0.0 ? v : tile_vec::v4{}, d + m * delta_step + e);
                      }))
                continue;
#endif
              const Tile g = tile_product_rows_step(dp, delta_step, rb.count, StridedK{1},
                                                    StridedB{w, pad.backward_row()}, hid, ct.read);
              tile_store(g, rb.count, ct.width,
                         [&](int m, int e, double v) { d[m * delta_step + e] = h[m * pre_step + e] > 0.0 ? v : 0.0; });
            }
          });
          team.team_barrier();
        }
      });
}

void weight_gradient(const NetworkShape& net, const Activations& act, const View2<real>& leaves,
                     const View2<real>& delta, std::int64_t rows, std::int64_t rows_per_chunk,
                     const View1<std::int64_t>& grad, std::int64_t overflow_slot) {
  const TreeShape t = net.tree;
  const PaddedLayout pad(t);
  require_padded(pad, act, &delta);
  const auto post = act.post;
  const bool bias = net.bias;
  const std::int64_t chunks = rows / rows_per_chunk;
  const std::int64_t delta_step = static_cast<std::int64_t>(delta.stride_0());
  const std::int64_t pre_step = static_cast<std::int64_t>(post.stride_0());
  const std::int64_t leaf_step = static_cast<std::int64_t>(leaves.stride_0());
  // One team per tile of 4 inputs x up to 12 neurons of one node: G(j, i) = sum over a
  // chunk's rows of input(row, i) * delta(row, j); the neurons are the tile's columns, so a
  // node of hid <= 12 is one tile wide (reading the node's padding columns of delta, whose
  // sums are dropped before the fixed-point rounding). Each chunk's sum is rounded to fixed
  // point where it is made and the integers are added up (threads of a team share the
  // chunks); the tiles of a node's first inputs also sum the biases' gradients (the same
  // product with A = 1). Overlapped entries of edge tiles are added by one tile only.
  const int i_tiles = tile_count(t.k * t.hid, kTileRows);  // of the widest input
  const int j_tiles = node_col_tile_count(t.hid);
  // A team takes up to kWgTilesPerTeam input tiles of a node, chunk by chunk, so a chunk's
  // rows of delta and of the inputs are read once from memory for all of them.
  const int groups = (i_tiles + kWgTilesPerTeam - 1) / kWgTilesPerTeam;
#ifdef DUALNET_TILE_VECTORS
  const bool prefetch = rows * (delta_step + pre_step) * static_cast<std::int64_t>(sizeof(real)) > kWgPrefetchBytes;
#endif
  Kokkos::parallel_for(
      "model::weight_gradient", teams(t.n_latent * j_tiles * groups), KOKKOS_LAMBDA(const Team& team) {
        const int idx = team.league_rank();
        const int node = idx / (j_tiles * groups), jt = idx / groups % j_tiles, grp = idx % groups;
        const int hid = t.hid, in = t.in_size(node), K = static_cast<int>(rows_per_chunk);
        const int it_first = grp * kWgTilesPerTeam, n_it = tile_count(in, kTileRows);
        const int it_end = n_it < it_first + kWgTilesPerTeam ? n_it : it_first + kWgTilesPerTeam;
        if (it_first >= it_end) return;
        const int i_rows = tile_width(in, kTileRows);
        const ColTile ct = node_col_tile(jt, hid);
        const std::int64_t off = t.param_offset(node);
        // A node fed by 2 or 3 leaves sums its bias in the tile's spare row (host vectors).
        const bool bias_row = bias && t.feeds_on_leaves(node) && in < kTileRows && tile_ones_row_available(ct.read);
        // This thread's chunks, summed as integers per tile; then one add per entry.
        std::int64_t acc[kWgTilesPerTeam][kTileRows][kTileMaxCols] = {}, acc_bias[kTileMaxCols] = {};
        bool overflow = false;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, chunks), [&](const std::int64_t c) {
          const std::int64_t r0 = c * rows_per_chunk;
          const NodeInput x = node_input(t, post, leaves, r0, node);  // post: relu(pre), no ReLU here
          // B(r, e) = delta(r0 + r, j0 + e); 0 behind a closed gate
          const real* d = &delta(r0, node * static_cast<std::int64_t>(pad.stride) + ct.start);
#ifdef DUALNET_TILE_VECTORS
          // The next chunk's rows requested now: a tile reads new lines of delta and of the
          // inputs every k, rows that in large trees lie 20 KB and more apart (a new page
          // each, where hardware prefetchers stop) and come from L3 or memory.
          if (prefetch && c + 1 < chunks) {
            const std::int64_t x_step = x.relu ? pre_step : leaf_step;
            const int i_from = tile_start(it_first, in, kTileRows),
                      i_to = tile_start(it_end - 1, in, kTileRows) + i_rows;
            prefetch_rows(d + K * delta_step, delta_step, K, ct.read);
            prefetch_rows(x.x + K * x_step + i_from, x_step, K, i_to - i_from);
          }
#endif
          for (int it = it_first; it < it_end; ++it) {
            const int i0 = tile_start(it, in, kTileRows);
            const real* xi[kTileRows];  // A(m, r) = input(r0 + r, i0 + m)
            for (int m = 0; m < kTileRows; ++m) xi[m] = x.x + i0 + (m < i_rows ? m : i_rows - 1);
            if (bias_row) {
              Tile g;
              if (in == 2)
                tile_product_ones_row<2>(xi, leaf_step, d, delta_step, K, ct.read, &g);
              else
                tile_product_ones_row<3>(xi, leaf_step, d, delta_step, K, ct.read, &g);
              add_fixed(g, ct.width, acc[it - it_first], &overflow, kGradFixed);  // the bias in row `in`
            } else {
              tile_product_add_fixed(x.x + i0, i_rows, x.relu ? pre_step : leaf_step, d, delta_step, K, ct.read,
                                     ct.width, acc[it - it_first], &overflow, kGradFixed);
            }
          }
          // The bias: the same sums with A = 1 (1 * y + s rounds as y + s does), one row only.
          if (it_first == 0 && bias && !bias_row)
            column_sums_fixed(d, delta_step, K, ct.read, ct.width, acc_bias, &overflow);
        });
        if (bias_row)
          for (int e = 0; e < kTileMaxCols; ++e) acc_bias[e] = acc[0][in][e];
        for (int it = it_first; it < it_end; ++it) {
          const int i0 = tile_start(it, in, kTileRows), i_skip = tile_overlap(it, in, kTileRows);
          for_cols<kTileRows>(i_skip, i_rows, [&](int m) {
            for_cols<kTileMaxCols>(ct.skip, ct.width, [&](int e) {
              Kokkos::atomic_add(&grad(off + static_cast<std::int64_t>(ct.start + e) * in + i0 + m),
                                 acc[it - it_first][m][e]);
            });
          });
        }
        if (it_first == 0)
          for_cols<kTileMaxCols>(ct.skip, ct.width, [&](int e) {
            Kokkos::atomic_add(&grad(off + static_cast<std::int64_t>(hid) * in + ct.start + e), acc_bias[e]);
          });
        if (overflow) Kokkos::atomic_add(&grad(overflow_slot), std::int64_t(1));
      });
}

View1<real> weight_norms(const NetworkShape& net, const View1<real>& params) {
  const TreeShape t = net.tree;
  View1<real> norms("model.weight_norm", t.n_latent);
  Kokkos::parallel_for(
      "model::weight_norms", range(t.n_latent), KOKKOS_LAMBDA(const std::int64_t node) {
        const TreeShape::WeightRange w = t.weights_of(static_cast<int>(node));
        double s = 0.0;
        for (std::int64_t p = w.first; p < w.first + w.count; ++p) s += params(p) * params(p);
        norms(node) = kmath::sqrt(s);
      });
  return norms;
}

View1<real> weight_changes(const NetworkShape& net, const View1<real>& params, const View1<real>& before) {
  const TreeShape t = net.tree;
  View1<real> change("model.weight_change", t.n_latent);
  Kokkos::parallel_for(
      "model::weight_changes", range(t.n_latent), KOKKOS_LAMBDA(const std::int64_t node) {
        const TreeShape::WeightRange w = t.weights_of(static_cast<int>(node));
        double moved = 0.0, was = 0.0;
        for (std::int64_t p = w.first; p < w.first + w.count; ++p) {
          const double d = params(p) - before(p);
          moved += d * d;
          was += before(p) * before(p);
        }
        // Exactly 0 when no weight moved (the collapse warning relies on that).
        change(node) = moved == 0.0 ? 0.0 : kmath::sqrt(moved) / kmath::sqrt(was);
      });
  return change;
}

}  // namespace dualnet
