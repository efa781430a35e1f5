#include "model/network.hpp"

#include "hltm/counter_rng.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

// Register tiles of 8 over n entries: tile k starts at 8k, except that the last one is
// moved back to end at n (it overlaps its neighbour, which computes the same values), so
// every tile is full width whenever n >= 8.
KOKKOS_INLINE_FUNCTION int tile_start(int k, int n) { return 8 * k + 8 <= n || n < 8 ? 8 * k : n - 8; }

}  // namespace

View1<real> init_params(const NetworkShape& net, std::uint64_t seed) {
  const TreeShape t = net.tree;
  const bool bias = net.bias;
  View1<real> params("model.params", t.n_params());
  Kokkos::parallel_for("model::init_params", range(t.n_latent * t.hid), KOKKOS_LAMBDA(const std::int64_t n) {
    const int node = static_cast<int>(n / t.hid), j = static_cast<int>(n % t.hid);
    const int in = t.in_size(node);
    const double bound = 1.0 / kmath::sqrt(static_cast<double>(in));
    const std::int64_t off = t.param_offset(node);
    // Parameter p uses output p%4 of the draw for counter p/4.
    const auto u = [&](std::int64_t p) {
      const Draw4 d = philox(seed, static_cast<std::uint32_t>(p >> 2), kRngWeights,
                             static_cast<std::uint32_t>(p >> 34), 0);
      return -bound + 2.0 * bound * to_unit(d.v[p & 3]);
    };
    for (int i = 0; i < in; ++i) params(off + j * in + i) = u(off + j * in + i);
    const std::int64_t pb = off + static_cast<std::int64_t>(t.hid) * in + j;
    params(pb) = bias ? u(pb) : 0.0;
  });
  return params;
}

void Activations::allocate(const TreeShape& tree, std::int64_t rows) {
  if (pre.extent(0) == static_cast<size_t>(rows)) return;
  pre = View2<real>("model.pre", rows, tree.n_neuron());
  out = View2<real>("model.out", rows, tree.hid);
  norm = View1<real>("model.norm", rows);
  wt = View1<real>("model.weights_transposed", tree.n_params());
}

// One team per row: the row's activations stay in cache from the leaves to the output.
// Each thread computes 8 neurons of a node at once from W_mu transposed, so the
// accumulators stay in registers and the inner loop is a vector multiply-add.
void forward(const NetworkShape& net, const View1<real>& params, const View2<real>& leaves, std::int64_t rows,
             const Activations& act) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  const auto out = act.out;
  const auto norm = act.norm;
  const auto wt = act.wt;
  const bool normalize = net.normalize_output;
  Kokkos::parallel_for("model::transpose_weights", range(t.n_params()), KOKKOS_LAMBDA(const std::int64_t p) {
    int node = 0;  // the node owning p: nodes are few, and this runs once per forward
    while (t.param_offset(node + 1) <= p) ++node;
    const std::int64_t off = t.param_offset(node), local = p - off;
    const int in = t.in_size(node), hid = t.hid;
    if (local >= static_cast<std::int64_t>(hid) * in) {
      wt(p) = params(p);  // biases keep their place
    } else {
      const int j = static_cast<int>(local / in), i = static_cast<int>(local % in);
      wt(off + static_cast<std::int64_t>(i) * hid + j) = params(p);
    }
  });
  const int tiles = (t.hid + 7) / 8;
  Kokkos::parallel_for("model::forward", teams(rows), KOKKOS_LAMBDA(const Team& team) {
    const std::int64_t row = team.league_rank();
    const int hid = t.hid;
    for (int level = t.depth - 1; level >= 0; --level) {
      const int first = t.level_start[level];
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level) * tiles), [&](const int idx) {
        const int node = first + idx / tiles, j0 = tile_start(idx % tiles, hid);
        const int width = hid < 8 ? hid : 8;
        const int in = t.in_size(node);
        const std::int64_t off = t.param_offset(node);
        const real* KOKKOS_RESTRICT w = &wt(off + j0);  // w[i * hid + e] = W_mu(j0 + e, i)
        const real* KOKKOS_RESTRICT bias = &wt(off + static_cast<std::int64_t>(hid) * in + j0);
        const NodeInput x = node_input(t, pre, leaves, row, node);
        double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (width == 8) {
          for (int i = 0; i < in; ++i) {
            const double xi = x[i];
            const real* wi = w + static_cast<std::int64_t>(i) * hid;
            DUALNET_SIMD
            for (int e = 0; e < 8; ++e) s[e] += xi * wi[e];
          }
        } else {
          for (int i = 0; i < in; ++i) {
            const double xi = x[i];
            for (int e = 0; e < width; ++e) s[e] += xi * w[static_cast<std::int64_t>(i) * hid + e];
          }
        }
        real* h = &pre(row, node * hid + j0);
        for (int e = 0; e < width; ++e) h[e] = s[e] + bias[e];
      });
      team.team_barrier();
    }
    Kokkos::single(Kokkos::PerTeam(team), [&]() {
      double sq = 0.0;
      for (int j = 0; j < hid; ++j) sq += pre(row, j) * pre(row, j);
      const double n = kmath::sqrt(sq);
      norm(row) = n;
      const double scale = normalize ? 1.0 / (n + kOutputEps) : 1.0;
      for (int j = 0; j < hid; ++j) out(row, j) = pre(row, j) * scale;
    });
  });
}

void backward(const NetworkShape& net, const View1<real>& params, const Activations& act,
              const View2<real>& grad_out, std::int64_t rows, const View2<real>& delta) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  const auto norm = act.norm;
  const bool normalize = net.normalize_output;
  Kokkos::parallel_for("model::backward", teams(rows), KOKKOS_LAMBDA(const Team& team) {
    const std::int64_t row = team.league_rank();
    const int hid = t.hid;
    // Through f = h/(|h|+eps): dL/dh = g/(n+eps) - h (h.g) / (n (n+eps)^2).
    Kokkos::single(Kokkos::PerTeam(team), [&]() {
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
    // 8 neurons per thread with the sums in registers.
    const int tiles = (hid + 7) / 8;
    for (int level = 1; level < t.depth; ++level) {
      const int first = t.level_start[level];
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level) * tiles), [&](const int idx) {
        const int node = first + idx / tiles, b0 = tile_start(idx % tiles, hid);
        const int width = hid < 8 ? hid : 8;
        const int parent = t.parent(node), q = (node - 1) % t.k;
        const int in = t.in_size(parent);
        const real* KOKKOS_RESTRICT w = &params(t.param_offset(parent) + q * hid + b0);  // w[j * in + e]
        const real* KOKKOS_RESTRICT dp = &delta(row, parent * hid);
        double g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (width == 8) {
          for (int j = 0; j < hid; ++j) {
            const double dj = dp[j];
            const real* wj = w + static_cast<std::int64_t>(j) * in;
            DUALNET_SIMD
            for (int e = 0; e < 8; ++e) g[e] += dj * wj[e];
          }
        } else {
          for (int j = 0; j < hid; ++j)
            for (int e = 0; e < width; ++e) g[e] += dp[j] * w[static_cast<std::int64_t>(j) * in + e];
        }
        const real* h = &pre(row, node * hid + b0);
        real* d = &delta(row, node * hid + b0);
        for (int e = 0; e < width; ++e) d[e] = h[e] > 0.0 ? g[e] : 0.0;
      });
      team.team_barrier();
    }
  });
}

void weight_gradient(const NetworkShape& net, const Activations& act, const View2<real>& leaves,
                     const View2<real>& delta, std::int64_t rows, std::int64_t rows_per_chunk,
                     const View2<real>& chunk_sums, const View1<std::int64_t>& grad, std::int64_t overflow_slot) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  const bool bias = net.bias;
  const std::int64_t chunks = rows / rows_per_chunk;
  // Each team sums one chunk's rows in row order; each thread owns 8 weights of one neuron
  // (and, in the first tile, its bias), with the sums in registers.
  const int tiles = (t.k * t.hid + 7) / 8;  // of the widest input
  Kokkos::parallel_for("model::weight_gradient_chunks", teams(chunks), KOKKOS_LAMBDA(const Team& team) {
    const std::int64_t c = team.league_rank();
    const int hid = t.hid;
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.n_neuron() * tiles), [&](const int idx) {
      const int n = idx / tiles, tile = idx % tiles;
      const int node = n / hid, j = n % hid;
      const int in = t.in_size(node);
      if (tile * 8 >= in) return;
      const int i0 = tile_start(tile, in), width = in < 8 ? in : 8;
      const std::int64_t off = t.param_offset(node);
      double g[8] = {0, 0, 0, 0, 0, 0, 0, 0}, gb = 0.0;
      for (std::int64_t row = c * rows_per_chunk; row < (c + 1) * rows_per_chunk; ++row) {
        const double d = delta(row, n);  // 0 behind a closed gate: no branch, it mispredicts
        const NodeInput x = node_input(t, pre, leaves, row, node);
        const real* KOKKOS_RESTRICT xv = x.x + i0;
        if (width == 8 && x.relu) {
          DUALNET_SIMD
          for (int e = 0; e < 8; ++e) g[e] += d * kmath::relu(xv[e]);
        } else if (width == 8) {
          DUALNET_SIMD
          for (int e = 0; e < 8; ++e) g[e] += d * xv[e];
        } else {
          for (int e = 0; e < width; ++e) g[e] += d * x[i0 + e];
        }
        gb += d;
      }
      real* out = &chunk_sums(c, off + static_cast<std::int64_t>(j) * in + i0);
      for (int e = 0; e < width; ++e) out[e] = g[e];
      if (tile == 0) chunk_sums(c, off + static_cast<std::int64_t>(hid) * in + j) = bias ? gb : 0.0;
    });
  });
  Kokkos::parallel_for("model::weight_gradient_fixed", range(t.n_params()), KOKKOS_LAMBDA(const std::int64_t p) {
    bool overflow = false;
    std::int64_t acc = 0;
    for (std::int64_t c = 0; c < chunks; ++c) acc += to_fixed(chunk_sums(c, p), &overflow);
    grad(p) = acc;
    if (overflow) Kokkos::atomic_add(&grad(overflow_slot), std::int64_t(1));
  });
}

View1<real> weight_norms(const NetworkShape& net, const View1<real>& params) {
  const TreeShape t = net.tree;
  View1<real> norms("model.weight_norm", t.n_latent);
  Kokkos::parallel_for("model::weight_norms", range(t.n_latent), KOKKOS_LAMBDA(const std::int64_t node) {
    const std::int64_t off = t.param_offset(static_cast<int>(node));
    const std::int64_t count = static_cast<std::int64_t>(t.hid) * t.in_size(static_cast<int>(node));
    double s = 0.0;
    for (std::int64_t p = 0; p < count; ++p) s += params(off + p) * params(off + p);
    norms(node) = kmath::sqrt(s);
  });
  return norms;
}

}  // namespace dualnet
