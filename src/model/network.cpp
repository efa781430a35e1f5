#include "model/network.hpp"

#include "hltm/counter_rng.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

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
}

// One team per row: the row's activations stay in cache from the leaves to the output.
void forward(const NetworkShape& net, const View1<real>& params, const View2<real>& leaves, std::int64_t rows,
             const Activations& act) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  const auto out = act.out;
  const auto norm = act.norm;
  const bool normalize = net.normalize_output;
  Kokkos::parallel_for("model::forward", teams(rows), KOKKOS_LAMBDA(const Team& team) {
    const std::int64_t row = team.league_rank();
    const int hid = t.hid;
    for (int level = t.depth - 1; level >= 0; --level) {
      const int first = t.level_start[level];
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level) * hid), [&](const int idx) {
        const int node = first + idx / hid, j = idx % hid;
        const int in = t.in_size(node);
        const std::int64_t off = t.param_offset(node);
        const real* KOKKOS_RESTRICT w = &params(off + static_cast<std::int64_t>(j) * in);
        const NodeInput x = node_input(t, pre, leaves, row, node);
        const real* KOKKOS_RESTRICT xv = x.x;
        double s = 0.0;
        if (x.relu) {
          DUALNET_SIMD_SUM(s)
          for (int i = 0; i < in; ++i) s += w[i] * kmath::relu(xv[i]);
        } else {
          for (int i = 0; i < in; ++i) s += w[i] * xv[i];
        }
        pre(row, node * hid + j) = s + params(off + static_cast<std::int64_t>(hid) * in + j);
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
    // Top-down: each child pulls dL/dh from its parent through W_parent and its ReLU gate.
    for (int level = 1; level < t.depth; ++level) {
      const int first = t.level_start[level];
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level)), [&](const int idx) {
        const int node = first + idx;
        const int parent = t.parent(node), q = (node - 1) % t.k;
        const int in = t.in_size(parent);
        const std::int64_t off = t.param_offset(parent);
        real* KOKKOS_RESTRICT g = &delta(row, node * hid);
        const real* h = &pre(row, node * hid);
        for (int b = 0; b < hid; ++b) g[b] = 0.0;
        for (int j = 0; j < hid; ++j) {
          const double dj = delta(row, parent * hid + j);
          const real* KOKKOS_RESTRICT w = &params(off + static_cast<std::int64_t>(j) * in + q * hid);
          for (int b = 0; b < hid; ++b) g[b] += w[b] * dj;
        }
        for (int b = 0; b < hid; ++b) g[b] = h[b] > 0.0 ? g[b] : 0.0;
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
  // Each team sums one chunk's rows in row order; each thread owns one neuron's weights.
  Kokkos::parallel_for("model::weight_gradient_chunks", teams(chunks), KOKKOS_LAMBDA(const Team& team) {
    const std::int64_t c = team.league_rank();
    const int hid = t.hid;
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.n_neuron()), [&](const int n) {
      const int node = n / hid, j = n % hid;
      const int in = t.in_size(node);
      const std::int64_t off = t.param_offset(node);
      real* KOKKOS_RESTRICT g = &chunk_sums(c, off + static_cast<std::int64_t>(j) * in);
      for (int i = 0; i < in; ++i) g[i] = 0.0;
      double gb = 0.0;
      for (std::int64_t row = c * rows_per_chunk; row < (c + 1) * rows_per_chunk; ++row) {
        const double d = delta(row, n);
        if (d == 0.0) continue;  // a closed ReLU gate: nothing flows to this neuron's weights
        const NodeInput x = node_input(t, pre, leaves, row, node);
        const real* KOKKOS_RESTRICT xv = x.x;
        if (x.relu) {
          for (int i = 0; i < in; ++i) g[i] += d * kmath::relu(xv[i]);
        } else {
          for (int i = 0; i < in; ++i) g[i] += d * xv[i];
        }
        gb += d;
      }
      chunk_sums(c, off + static_cast<std::int64_t>(hid) * in + j) = bias ? gb : 0.0;
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
