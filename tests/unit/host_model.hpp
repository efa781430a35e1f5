#pragma once
// An independent host implementation of the twin network and the losses (docs/science.md#network, #losses), used as
// the reference the kernels are tested against. It shares nothing with src/ except the
// documented flat parameter layout (tree.hpp: node by node, W_mu row-major, then b_mu), which
// it derives on its own.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dualnet_test {

struct HostNet {
  int depth, k, hid;
  bool bias, normalize;
  int n_latent = 0, n_leaf = 0;
  std::vector<int> level_start;      // [depth + 2]
  std::vector<std::int64_t> offset;  // [n_latent + 1]: first parameter of each node

  HostNet(int depth_, int k_, int hid_, bool bias_ = true, bool normalize_ = true)
      : depth(depth_), k(k_), hid(hid_), bias(bias_), normalize(normalize_) {
    int width = 1, start = 0;
    for (int l = 0; l <= depth; ++l) {
      level_start.push_back(start);
      start += width;
      if (l < depth) width *= k;
    }
    level_start.push_back(start);
    n_latent = level_start[depth];
    n_leaf = width;
    std::int64_t o = 0;
    for (int node = 0; node < n_latent; ++node) {
      offset.push_back(o);
      o += static_cast<std::int64_t>(hid) * (in_size(node) + 1);
    }
    offset.push_back(o);
  }

  std::int64_t n_params() const { return offset.back(); }
  int child(int node, int c) const { return k * node + 1 + c; }
  bool on_leaves(int node) const { return child(node, 0) >= n_latent; }
  int in_size(int node) const { return on_leaves(node) ? k : k * hid; }
  int level_of(int node) const {
    int l = 0;
    while (node >= level_start[l + 1]) ++l;
    return l;
  }
  double weight(const double* p, int node, int j, int i) const { return p[offset[node] + j * in_size(node) + i]; }
  std::int64_t bias_index(int node, int j) const {
    return offset[node] + static_cast<std::int64_t>(hid) * in_size(node) + j;
  }

  // The input vector of `node` given the pre-activations of the row.
  void input(const double* leaves, const std::vector<double>& pre, int node, std::vector<double>& x) const {
    x.clear();
    for (int c = 0; c < k; ++c) {
      const int ch = child(node, c);
      if (ch >= n_latent) {
        x.push_back(leaves[ch - n_latent]);
      } else {
        for (int b = 0; b < hid; ++b) x.push_back(std::max(0.0, pre[static_cast<size_t>(ch) * hid + b]));
      }
    }
  }

  // One row bottom-up. pre: [n_latent*hid], out: [hid]. If inject_node >= 0, inject_value is
  // added to pre-activation (inject_node, inject_neuron) before it is used (for Jacobians).
  void forward(const double* p, const double* leaves, std::vector<double>& pre, std::vector<double>& out,
               int inject_node = -1, int inject_neuron = 0, double inject_value = 0.0) const {
    pre.assign(static_cast<size_t>(n_latent) * hid, 0.0);
    std::vector<double> x;
    for (int node = n_latent - 1; node >= 0; --node) {  // children have larger numbers
      input(leaves, pre, node, x);
      for (int j = 0; j < hid; ++j) {
        double s = bias ? p[bias_index(node, j)] : 0.0;
        for (size_t i = 0; i < x.size(); ++i) s += weight(p, node, j, static_cast<int>(i)) * x[i];
        if (node == inject_node && j == inject_neuron) s += inject_value;
        pre[static_cast<size_t>(node) * hid + j] = s;
      }
    }
    double sq = 0.0;
    for (int j = 0; j < hid; ++j) sq += pre[j] * pre[j];
    const double scale = normalize ? 1.0 / (std::sqrt(sq) + 1e-4) : 1.0;
    out.assign(pre.begin(), pre.begin() + hid);
    for (double& v : out) v *= scale;
  }

  // J_mu = d h_root / d h_mu for every node (hid x hid, [a][b]: root neuron a, mu's neuron b),
  // gate of mu included, J_root = I; by explicit top-down chain rule on the host.
  std::vector<std::vector<double>> jacobians(const double* p, const std::vector<double>& pre) const {
    std::vector<std::vector<double>> J(static_cast<size_t>(n_latent),
                                       std::vector<double>(static_cast<size_t>(hid) * hid, 0.0));
    for (int a = 0; a < hid; ++a) J[0][static_cast<size_t>(a) * hid + a] = 1.0;
    for (int node = 1; node < n_latent; ++node) {
      const int par = (node - 1) / k, q = (node - 1) % k;
      for (int b = 0; b < hid; ++b) {
        if (!(pre[static_cast<size_t>(node) * hid + b] > 0.0)) continue;
        for (int a = 0; a < hid; ++a) {
          double s = 0.0;
          for (int j = 0; j < hid; ++j) s += J[par][static_cast<size_t>(a) * hid + j] * weight(p, par, j, q * hid + b);
          J[node][static_cast<size_t>(a) * hid + b] = s;
        }
      }
    }
    return J;
  }
};

enum class HostLoss { simp, triplet, infonce, ref_nce, ref_subtract };

inline HostLoss host_loss_kind(const std::string& s) {
  if (s == "simp") return HostLoss::simp;
  if (s == "triplet") return HostLoss::triplet;
  if (s == "infonce") return HostLoss::infonce;
  if (s == "ref_nce") return HostLoss::ref_nce;
  if (s == "ref_subtract") return HostLoss::ref_subtract;
  throw std::invalid_argument(s);
}

// The mean loss of docs/science.md#losses over `items` items of `views` = H + 2 rows each (anchor,
// positive, negatives); out: [items*views][dim], row-major.
inline double host_mean_loss(HostLoss kind, double tau, double margin, int H, int items, int dim,
                             const std::vector<double>& out) {
  const int views = H + 2;
  const auto d2 = [&](int item, int v) {  // 1/2 |f(anchor) - f(view v)|^2
    double s = 0.0;
    for (int d = 0; d < dim; ++d) {
      const double u =
          out[(static_cast<size_t>(item) * views) * dim + d] - out[(static_cast<size_t>(item) * views + v) * dim + d];
      s += u * u;
    }
    return 0.5 * s;
  };
  if (kind == HostLoss::ref_nce || kind == HostLoss::ref_subtract) {
    // pos: mean over batch and output dims of (f - f+)^2; neg likewise over every negative.
    double pos = 0.0, neg = 0.0;
    for (int i = 0; i < items; ++i) {
      pos += 2.0 * d2(i, 1);
      for (int h = 0; h < H; ++h) neg += 2.0 * d2(i, 2 + h);
    }
    pos /= static_cast<double>(items) * dim;
    neg /= static_cast<double>(items) * H * dim;
    if (kind == HostLoss::ref_subtract) return pos - neg;
    const double ep = std::exp(-pos / tau), en = std::exp(-neg / tau);
    return -ep / (ep + en);
  }
  double total = 0.0;
  for (int i = 0; i < items; ++i) {
    const double dp = d2(i, 1);
    double l = 0.0;
    switch (kind) {
      case HostLoss::simp: {
        double m = 0.0;
        for (int h = 0; h < H; ++h) m += d2(i, 2 + h);
        l = dp - m / H;
        break;
      }
      case HostLoss::triplet:
        l = tau * std::log(1.0 + std::exp((dp - d2(i, 2) + margin) / tau));
        break;
      case HostLoss::infonce: {
        double den = std::exp(-dp / tau);
        for (int h = 0; h < H; ++h) den += std::exp(-d2(i, 2 + h) / tau);
        l = -tau * std::log(std::exp(-dp / tau) / den);
        break;
      }
      default:
        break;
    }
    total += l;
  }
  return total / items;
}

}  // namespace dualnet_test
