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

void forward(const NetworkShape& net, const View1<real>& params, const View2<real>& leaves, std::int64_t rows,
             const Activations& act) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  for (int level = t.depth - 1; level >= 0; --level) {
    const int first = t.level_start[level], width = t.nodes_at(level);
    Kokkos::parallel_for("model::forward_level", range(rows * width), KOKKOS_LAMBDA(const std::int64_t idx) {
      const std::int64_t row = idx / width;
      const int node = first + static_cast<int>(idx % width);
      const int in = t.in_size(node), hid = t.hid;
      const std::int64_t off = t.param_offset(node);
      for (int j = 0; j < hid; ++j) {
        double s = params(off + static_cast<std::int64_t>(hid) * in + j);
        for (int i = 0; i < in; ++i) s += params(off + j * in + i) * node_input(t, pre, leaves, row, node, i);
        pre(row, node * hid + j) = s;
      }
    });
  }
  const auto out = act.out;
  const auto norm = act.norm;
  const bool normalize = net.normalize_output;
  Kokkos::parallel_for("model::forward_output", range(rows), KOKKOS_LAMBDA(const std::int64_t row) {
    double sq = 0.0;
    for (int j = 0; j < t.hid; ++j) sq += pre(row, j) * pre(row, j);
    const double n = kmath::sqrt(sq);
    norm(row) = n;
    const double scale = normalize ? 1.0 / (n + kOutputEps) : 1.0;
    for (int j = 0; j < t.hid; ++j) out(row, j) = pre(row, j) * scale;
  });
}

void backward(const NetworkShape& net, const View1<real>& params, const Activations& act,
              const View2<real>& grad_out, std::int64_t rows, const View2<real>& delta) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  const auto norm = act.norm;
  const bool normalize = net.normalize_output;
  // Through f = h/(|h|+eps): dL/dh = g/(n+eps) - h (h.g) / (n (n+eps)^2).
  Kokkos::parallel_for("model::backward_output", range(rows), KOKKOS_LAMBDA(const std::int64_t row) {
    if (!normalize) {
      for (int j = 0; j < t.hid; ++j) delta(row, j) = grad_out(row, j);
      return;
    }
    const double n = norm(row);
    double hg = 0.0;
    for (int j = 0; j < t.hid; ++j) hg += pre(row, j) * grad_out(row, j);
    const double a = 1.0 / (n + kOutputEps);
    const double b = n > 0.0 ? hg / (n * (n + kOutputEps) * (n + kOutputEps)) : 0.0;
    for (int j = 0; j < t.hid; ++j) delta(row, j) = a * grad_out(row, j) - b * pre(row, j);
  });
  // Top-down: each child pulls from its parent through W_parent and its own ReLU gate.
  for (int level = 1; level < t.depth; ++level) {
    const int first = t.level_start[level], width = t.nodes_at(level);
    Kokkos::parallel_for("model::backward_level", range(rows * width), KOKKOS_LAMBDA(const std::int64_t idx) {
      const std::int64_t row = idx / width;
      const int node = first + static_cast<int>(idx % width);
      const int parent = t.parent(node), q = (node - 1) % t.k, hid = t.hid;
      const int in = t.in_size(parent);
      const std::int64_t off = t.param_offset(parent);
      for (int b = 0; b < hid; ++b) {
        double g = 0.0;
        if (pre(row, node * hid + b) > 0.0)
          for (int j = 0; j < hid; ++j) g += params(off + j * in + q * hid + b) * delta(row, parent * hid + j);
        delta(row, node * hid + b) = g;
      }
    });
  }
}

void weight_gradient(const NetworkShape& net, const Activations& act, const View2<real>& leaves,
                     const View2<real>& delta, std::int64_t rows, std::int64_t rows_per_chunk,
                     const View1<std::int64_t>& grad, std::int64_t overflow_slot) {
  const TreeShape t = net.tree;
  const auto pre = act.pre;
  const bool bias = net.bias;
  const std::int64_t chunks = rows / rows_per_chunk;
  Kokkos::parallel_for("model::weight_gradient", range(t.n_neuron()), KOKKOS_LAMBDA(const std::int64_t n) {
    const int node = static_cast<int>(n / t.hid), j = static_cast<int>(n % t.hid);
    const int in = t.in_size(node);
    const std::int64_t off = t.param_offset(node);
    bool overflow = false;
    for (int i = 0; i <= in; ++i) {  // i == in: the bias
      std::int64_t acc = 0;
      if (i < in || bias) {
        for (std::int64_t c = 0; c < chunks; ++c) {
          double s = 0.0;
          for (std::int64_t row = c * rows_per_chunk; row < (c + 1) * rows_per_chunk; ++row)
            s += delta(row, n) * (i < in ? node_input(t, pre, leaves, row, node, i) : 1.0);
          acc += to_fixed(s, &overflow);
        }
      }
      grad(i < in ? off + j * in + i : off + static_cast<std::int64_t>(t.hid) * in + j) = acc;
    }
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
