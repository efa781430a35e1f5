#include "stats/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "model/tile_product.hpp"
#include "stats/covop_spectrum.hpp"
#include "util/error.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

namespace {
constexpr std::int64_t kJacobianBytes = 64ll << 20;  // workspace cap for per-anchor Jacobians
constexpr std::int64_t kCovopWorkBytes = 64ll << 20;  // covop_spectrum's workspace per batch of nodes
}

std::int64_t Evaluator::chunk_for(const NetworkShape& net, std::int64_t max_chunk) {
  const TreeShape& t = net.tree;
  const std::int64_t per_anchor = static_cast<std::int64_t>(t.n_latent) * t.hid * t.hid * sizeof(real);
  const std::int64_t chunk = std::max<std::int64_t>(1, std::min(max_chunk, kJacobianBytes / per_anchor));
  // Whole blocks: at least one, even when one block's Jacobians exceed kJacobianBytes.
  return std::max(kEvalBlock, chunk / kEvalBlock * kEvalBlock);
}

Evaluator::Layout Evaluator::layout(const TreeShape& t, bool all_pairs) {
  const std::int64_t L = t.n_latent, N = L * t.hid;
  Layout l;
  l.sum_z = 2;  // [0], [1]: anchors with root 0 and root 1
  l.sum_h = l.sum_z + L;
  l.sum_h2 = l.sum_h + N;
  l.active = l.sum_h2 + N;  // per neuron: anchors with pre-activation > 0
  l.root_gram = l.active + N;  // [hid][hid]: sums of relu(h_i) relu(h_j) over the root's neurons
  l.sum_zh = l.root_gram + static_cast<std::int64_t>(t.hid) * t.hid;
  l.zh_width = all_pairs ? N : t.hid;  // per latent: every neuron, or its own
  l.conn0 = l.sum_zh + L * l.zh_width;
  l.conn1 = l.conn0 + t.n_conn();
  l.totals = l.conn1 + t.n_conn() + 1;  // + the overflow count
  return l;
}

Evaluator::Evaluator(const NetworkShape& net, std::int64_t max_chunk, bool all_pairs)
    : net_(net), all_pairs_(all_pairs) {
  const TreeShape& t = net.tree;
  chunk_ = chunk_for(net, max_chunk);
  const Layout l = layout(t, all_pairs);
  o_sum_z_ = l.sum_z;
  o_sum_h_ = l.sum_h;
  o_sum_h2_ = l.sum_h2;
  o_active_ = l.active;
  o_root_gram_ = l.root_gram;
  o_sum_zh_ = l.sum_zh;
  zh_width_ = l.zh_width;
  o_conn0_ = l.conn0;
  o_conn1_ = l.conn1;
  // The z*h and conn sums are summed per block in registers (tile products); the moments need a buffer.
  acc_ = View1<double>("stats.block_sums", o_sum_zh_);
  shift_ = View1<real>("stats.shift", t.n_neuron());
  total_ = View1<std::int64_t>("stats.totals", l.totals);
  jac_ = View3<real>("stats.jacobian", t.n_latent, chunk_, t.hid * t.hid);
  slot_ = View1<std::int64_t>("stats.class_order_slot", chunk_);
  class0_count_ = View1<int>("stats.class0_count", chunk_ / kEvalBlock);
}

std::int64_t Evaluator::totals_length(const NetworkShape& net, bool all_pairs) {
  return layout(net.tree, all_pairs).totals;
}

// Keep in step with the constructor's Views.
double Evaluator::workspace_bytes(const NetworkShape& net, std::int64_t chunk, bool all_pairs) {
  const TreeShape& t = net.tree;
  const Layout l = layout(t, all_pairs);
  const double L = t.n_latent, N = L * t.hid, hh = static_cast<double>(t.hid) * t.hid, c = static_cast<double>(chunk);
  return sizeof(double) * static_cast<double>(l.sum_zh) + sizeof(real) * N +
         sizeof(std::int64_t) * static_cast<double>(l.totals) + sizeof(real) * L * c * hh + sizeof(std::int64_t) * c +
         8.0 * std::ceil(sizeof(int) * static_cast<double>(chunk / kEvalBlock) / 8.0);  // Kokkos rounds to 8 bytes
}

// Keep in step with finish() and covop_spectrum(): the Views finish() holds to the end, then
// whichever is larger of the spectrum's per-batch workspace and the EvalResult's vectors.
double Evaluator::finish_bytes(const NetworkShape& net, bool all_pairs) {
  const TreeShape& t = net.tree;
  const Layout l = layout(t, all_pairs);
  const double L = t.n_latent, hid = t.hid, hh = hid * hid;
  const double views = static_cast<double>(l.totals - 1)      // acc
                       + L * static_cast<double>(l.zh_width)  // corr_pairs
                       + 2.0 * L + 2.0 * L * hid + t.depth    // best, dead, own, active, level_mean
                       + 2.0 * L * hh + 2.0 * L               // gram_ref, gram_paper, both norms
                       + L * hid + L;                         // eigenvalues, alignment
  double spectrum = 0.0;
  if (t.hid <= kCovopSpectrumMaxHid) {
    // covop_spectrum's batch of nodes (its own sizing): gram copy, eigenvectors and Jacobi
    // work (hid x hid each), values, alignment, and Delta over the batch's conn entries, the
    // most in the first batch (nodes fed by neurons come first).
    const std::int64_t t_hh = static_cast<std::int64_t>(t.hid) * t.hid;
    const std::int64_t per_node = static_cast<std::int64_t>(sizeof(real)) * (3 * t_hh + t.k * t.hid * t_hh);
    const int batch =
        static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(t.n_latent, kCovopWorkBytes / per_node)));
    spectrum = sizeof(real) * (batch * (3.0 * hh + hid + 1.0) + static_cast<double>(t.conn_offset(batch)));
  }
  return sizeof(real) * views + std::max(spectrum, result_bytes(net, all_pairs));
}

double Evaluator::result_bytes(const NetworkShape& net, bool all_pairs) {
  const TreeShape& t = net.tree;
  const double L = t.n_latent, hid = t.hid, N = L * hid;
  const double values = (all_pairs ? L * N : 0.0)  // corr_full
                        + 3.0 * L * hid            // corr, covop_eigenvalues, active_fraction
                        + 5.0 * L + t.depth        // best_corr, dead_fraction, both norms, alignment, level means
                        + L * hid * hid            // gram_paper
                        + 2.0 * hid * hid;         // the root's output Gram (View and host copy)
  // host_vector() copies through a host mirror where the Views are not in host memory: one
  // mirror (at most the largest vector) is alive at a time.
  const bool mirrored = !Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible;
  const double largest = std::max({all_pairs ? L * N : 0.0, L * hid * hid, L * hid});
  return sizeof(double) * (values + (mirrored ? largest : 0.0));
}

void Evaluator::set_shift(const Activations& act, std::int64_t row) {
  Kokkos::deep_copy(shift_, Kokkos::subview(act.pre, row, Kokkos::ALL()));
}

void Evaluator::reset() {
  Kokkos::deep_copy(acc_, 0.0);
  Kokkos::deep_copy(total_, std::int64_t(0));
}

void Evaluator::rank_range(std::int64_t n, int rank, int size, std::int64_t* begin, std::int64_t* end) {
  const std::int64_t blocks = (n + kEvalBlock - 1) / kEvalBlock;
  *begin = std::min(n, blocks * rank / size * kEvalBlock);
  *end = std::min(n, blocks * (rank + 1) / size * kEvalBlock);
}

namespace {

// Closes a block for entry e: its double sum joins the exact total.
KOKKOS_INLINE_FUNCTION void fold(const View1<double>& acc, const View1<std::int64_t>& total, std::int64_t e) {
  bool overflow = false;
  total(e) += to_fixed(acc(e), &overflow, kStatFixed);
  acc(e) = 0.0;
  if (overflow) Kokkos::atomic_add(&total(total.extent(0) - 1), std::int64_t(1));
}

KOKKOS_INLINE_FUNCTION bool closes_block(std::int64_t r, std::int64_t rows) {
  return (r + 1) % kEvalBlock == 0 || r + 1 == rows;
}

}  // namespace

void Evaluator::accumulate(const View1<real>& params, const SampleBatch& samples, const Activations& act,
                           std::int64_t rows) {
  params_ = params;
  const TreeShape t = net_.tree;
  const auto acc = acc_;
  const auto shift = shift_;
  const auto z = samples.latent;
  const auto leaves = samples.leaves;
  const auto pre = act.pre;
  const int N = t.n_neuron(), hid = t.hid, hh = hid * hid;
  const std::int64_t o_z = o_sum_z_, o_h = o_sum_h_, o_h2 = o_sum_h2_, o_a = o_active_, o_g = o_root_gram_,
                     o_zh = o_sum_zh_;

  // The sums below loop over anchors outside and over contiguous outputs inside, so host
  // backends vectorise them and GPU threads of a team own distinct outputs.
  const auto total = total_;
  Kokkos::parallel_for("stats::moment_sums", teams(1), KOKKOS_LAMBDA(const Team& team) {
    for (std::int64_t r = 0; r < rows; ++r) {
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, N), [&](const int n) {
        const double h = pre(r, n) - shift(n);
        acc(o_h + n) += h;
        acc(o_h2 + n) += h * h;
        acc(o_a + n) += pre(r, n) > 0.0 ? 1.0 : 0.0;
      });
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.n_latent), [&](const int mu) { acc(o_z + mu) += z(r, mu); });
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, hh), [&](const int e) {  // the root's neurons come first
        const double hi = pre(r, e / hid), hj = pre(r, e % hid);
        acc(o_g + e) += (hi > 0.0 ? hi : 0.0) * (hj > 0.0 ? hj : 0.0);
      });
      Kokkos::single(Kokkos::PerTeam(team), [&]() { acc(z(r, 0) ? 1 : 0) += 1.0; });
      if (closes_block(r, rows)) {
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, o_zh), [&](const int e) { fold(acc, total, e); });
        team.team_barrier();
      }
    }
  });
  // Sums of z_mu * (h_n - shift_n) per block of anchors, as tile products: rows are four
  // latents' z (0/1), k the block's anchors, columns 8 neurons; the shift is taken off
  // afterwards (shift_n times the block's count of z_mu = 1). One team per four latents with
  // all pairs; without, one team per latent and only its own neurons (the tile's other
  // rows repeat it and are dropped).
  const int width = static_cast<int>(zh_width_);
  const bool all = all_pairs_;
  const int L = t.n_latent;
  const int zh_teams = all ? tile_count(L, kTileRows) : L;
  const int zh_tiles = col_tile_count(width);
  const std::int64_t pre_step = static_cast<std::int64_t>(pre.stride_0());
  Kokkos::parallel_for("stats::cross_sums", teams(zh_teams), KOKKOS_LAMBDA(const Team& team) {
    const int mu0 = all ? kTileRows * team.league_rank() : team.league_rank();
    const int mus = all ? (L - mu0 < kTileRows ? L - mu0 : kTileRows) : 1;
    const int first = all ? 0 : mu0 * hid;  // first neuron summed
    for (std::int64_t r0 = 0; r0 < rows; r0 += kEvalBlock) {
      const int n = static_cast<int>(rows - r0 < kEvalBlock ? rows - r0 : kEvalBlock);
      double zf[kTileRows][kEvalBlock], count[kTileRows] = {0.0, 0.0, 0.0, 0.0};
      for (int m = 0; m < kTileRows; ++m) {
        const int mu = mu0 + (m < mus ? m : mus - 1);
        for (int r = 0; r < n; ++r) {
          zf[m][r] = z(r0 + r, mu) ? 1.0 : 0.0;
          count[m] += zf[m][r];
        }
      }
      const real* a[kTileRows] = {zf[0], zf[1], zf[2], zf[3]};
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, zh_tiles), [&](const int tile) {
        const ColTile ct = col_tile(tile, width);
        const Tile s = tile_product<false, false>(a, 1, &pre(r0, first + ct.start), pre_step, n, ct.read);
        bool overflow = false;
        for (int m = 0; m < mus; ++m) {
          const std::int64_t base = o_zh + static_cast<std::int64_t>(mu0 + m) * width + ct.start;
          for (int e = ct.skip; e < ct.width; ++e)
            total(base + e) += to_fixed(s.c[m][e] - shift(first + ct.start + e) * count[m], &overflow, kStatFixed);
        }
        if (overflow) Kokkos::atomic_add(&total(total.extent(0) - 1), std::int64_t(1));
      });
      team.team_barrier();
    }
  });

  // Each block's anchors in root-class order (class 0 first, each class in anchor order):
  // the Jacobians are stored in that order, so each class is one contiguous range of k in
  // the conn sums below (half the work of masking the other class out).
  const auto slot = slot_;
  const auto class0 = class0_count_;
  Kokkos::parallel_for("stats::class_order", range((rows + kEvalBlock - 1) / kEvalBlock), KOKKOS_LAMBDA(const std::int64_t b) {
    const std::int64_t r0 = b * kEvalBlock, r1 = r0 + kEvalBlock < rows ? r0 + kEvalBlock : rows;
    int n0 = 0;
    for (std::int64_t r = r0; r < r1; ++r) n0 += z(r, 0) ? 0 : 1;
    class0(b) = n0;
    std::int64_t next0 = r0, next1 = r0 + n0;
    for (std::int64_t r = r0; r < r1; ++r) slot(r) = z(r, 0) ? next1++ : next0++;
  });

  // Jacobians top-down, one team per block of 4 anchors: J_root = I; row a of J_c is
  // sum_j J_parent(a, j) W_parent(j, block c), then the ReLU gate of c closes columns. Row a
  // of the four anchors' Jacobians is one tile product of 4 rows x up to 12 columns
  // (model/tile_product.hpp).
  // An anchor's Jacobians live at row slot(anchor) of jac.
  const auto jac = jac_;
  const int b_tiles = node_col_tile_count(hid);
  Kokkos::parallel_for("stats::jacobians", teams(row_blocks(rows)), KOKKOS_LAMBDA(const Team& team) {
    const RowBlock rb(team.league_rank(), rows);
    std::int64_t srow[kTileRows];
    for (int m = 0; m < kTileRows; ++m) srow[m] = slot(rb.row(m));
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rb.count * hh), [&](const int idx) {
      const int ab = idx % hh;
      jac(0, srow[idx / hh], ab) = (ab / hid == ab % hid) ? 1.0 : 0.0;
    });
    team.team_barrier();
    for (int level = 1; level < t.depth; ++level) {
      const int first = t.level_start[level];
      // One thread per node (an index division per tile cost as much as the tile).
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, t.nodes_at(level)), [&](const int i) {
        const int node = first + i;
        const int parent = t.parent(node), q = node - 1 - parent * t.k, in = t.in_size(parent);
        const std::int64_t w_off = t.param_offset(parent) + q * hid;
        for (int a = 0; a < hid; ++a) {
          const real* jp[kTileRows];
          real* jc[kTileRows];
          for (int m = 0; m < kTileRows; ++m) {
            jp[m] = &jac(parent, srow[m], a * hid);
            jc[m] = &jac(node, srow[m], a * hid);
          }
          for (int tile = 0; tile < b_tiles; ++tile) {
            const ColTile ct = node_col_tile(tile, hid);
            // B(j, e) = W_parent(j, q*hid + b0 + e)
            const Tile s = tile_product<false, false>(jp, 1, &params(w_off + ct.start), in, hid, ct.read);
            const real* h = &pre(rb.first, node * hid + ct.start);
            tile_store(s, rb.count, ct.width, [&](int m, int e, double v) {
              jc[m][ct.start + e] = h[m * pre_step + e] > 0.0 ? v : 0.0;
            });
          }
        }
      });
      team.team_barrier();
    }
  });
  // Class sums of conn_mu(i, a, b) = input_mu(i) * J_mu(a, b), a block of anchors at a time:
  // one team per node and group of four inputs. A tile's rows are the four inputs, its
  // columns 8 entries (a, b), its k the block's anchors of one root class (a contiguous range
  // in class order); each block's sums go straight into the exact totals.
  const std::int64_t o_c0 = o_conn0_, o_c1 = o_conn1_;
  const int inner = t.level_start[t.depth - 1];  // nodes whose inputs are neurons, then those fed by leaves
  const int groups_inner = tile_count(t.k * hid, kTileRows), groups_leaf = tile_count(t.k, kTileRows);
  const int group_teams = inner * groups_inner + (t.n_latent - inner) * groups_leaf;
  const int ab_tiles = col_tile_count(hh);
  Kokkos::parallel_for("stats::conn_sums", teams(group_teams), KOKKOS_LAMBDA(const Team& team) {
    const int p = team.league_rank();
    const bool on_inner = p < inner * groups_inner;
    const int node = on_inner ? p / groups_inner : inner + (p - inner * groups_inner) / groups_leaf;
    const int i0 = kTileRows * (on_inner ? p % groups_inner : (p - inner * groups_inner) % groups_leaf);
    const int in = t.in_size(node), inputs = in - i0 < kTileRows ? in - i0 : kTileRows;
    const std::int64_t base = t.conn_offset(node) + static_cast<std::int64_t>(i0) * hh;  // entry (node, i0, 0, 0)
    for (std::int64_t r0 = 0; r0 < rows; r0 += kEvalBlock) {
      const int n = static_cast<int>(rows - r0 < kEvalBlock ? rows - r0 : kEvalBlock);
      const int n0 = class0(r0 / kEvalBlock);
      double x[kTileRows][kEvalBlock];  // [input i0 + q][anchor in class order]; 0 past the node's inputs
      for (int r = 0; r < n; ++r) {
        const NodeInput in_r = node_input(t, pre, leaves, r0 + r, node);
        const std::int64_t k = slot(r0 + r) - r0;
        for (int q = 0; q < kTileRows; ++q) x[q][k] = q < inputs ? in_r[i0 + q] : 0.0;
      }
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, ab_tiles), [&](const int tile) {
        const ColTile ct = col_tile(tile, hh);
        bool overflow = false;
        for (int c = 0; c < 2; ++c) {
          const int k0 = c == 0 ? 0 : n0, kn = c == 0 ? n0 : n - n0;
          const real* a[kTileRows] = {x[0] + k0, x[1] + k0, x[2] + k0, x[3] + k0};
          const Tile s = tile_product<false, false>(a, 1, &jac(node, r0 + k0, ct.start), hh, kn, ct.read);
          std::int64_t fixed[kTileRows][kTileMaxCols] = {};
          add_fixed(s, fixed, &overflow, kStatFixed);  // the whole tile at once (vectors on the host)
          const std::int64_t o = (c == 0 ? o_c0 : o_c1) + base + ct.start;
          for (int q = 0; q < inputs; ++q)
            for (int e = ct.skip; e < ct.width; ++e) total(o + static_cast<std::int64_t>(q) * hh + e) += fixed[q][e];
        }
        if (overflow) Kokkos::atomic_add(&total(total.extent(0) - 1), std::int64_t(1));
      });
      team.team_barrier();
    }
  });
}

EvalResult Evaluator::finish() const {
  const TreeShape t = net_.tree;
  {
    auto overflow = Kokkos::create_mirror_view_and_copy(
        Kokkos::HostSpace(), Kokkos::subview(total_, std::make_pair(total_.extent(0) - 1, total_.extent(0))));
    if (overflow(0) != 0)
      throw RuntimeError("evaluation: a statistic left the exact fixed-point range (|block sum| >= 2^31); the "
                         "network's activations diverged",
                         true);
  }
  const View1<double> acc("stats.sums", total_.extent(0) - 1);
  const auto total = total_;
  Kokkos::parallel_for("stats::from_fixed", range(acc.extent(0)),
                       KOKKOS_LAMBDA(const std::int64_t e) { acc(e) = from_fixed(total(e), kStatFixed); });
  const std::int64_t L = t.n_latent;
  const int hid = t.hid;
  const std::int64_t o_z = o_sum_z_, o_h = o_sum_h_, o_h2 = o_sum_h2_, o_zh = o_sum_zh_;

  // The pairs accumulate() summed: [latent][neuron], or [latent][own neuron j].
  const std::int64_t width = zh_width_;
  const bool all = all_pairs_;
  View2<real> corr_pairs("stats.corr_pairs", L, width);
  Kokkos::parallel_for("stats::correlations", range(L * width), KOKKOS_LAMBDA(const std::int64_t idx) {
    const std::int64_t mu = idx / width, n = all ? idx % width : mu * hid + idx % width;
    const double count = acc(0) + acc(1);
    const double mz = acc(o_z + mu) / count, mh = acc(o_h + n) / count;
    const double vz = kmath::max(mz - mz * mz, 0.0);  // z is 0/1: E[z^2] = E[z]
    const double vh = kmath::max(acc(o_h2 + n) / count - mh * mh, 0.0);
    const double cov = acc(o_zh + idx) / count - mz * mh;
    const double sd = kmath::sqrt(vz) * kmath::sqrt(vh);
    double c = 0.0;
    if (!(sd < 1e-6 && kmath::fabs(cov) < 1e-6)) c = kmath::max(-1.0, kmath::min(1.0, cov / sd));
    corr_pairs(mu, idx % width) = c;
  });
  View1<real> best("stats.best_corr", L);
  View2<real> own("stats.corr", L, hid);  // each node against its own neurons
  Kokkos::parallel_for("stats::best_corr", range(L), KOKKOS_LAMBDA(const std::int64_t mu) {
    double b = 0.0;
    for (int j = 0; j < hid; ++j) {
      own(mu, j) = corr_pairs(mu, all ? mu * hid + j : j);
      b = kmath::max(b, kmath::fabs(own(mu, j)));
    }
    best(mu) = b;
  });
  // A neuron is dead on this pass when no anchor activated it (an exact integer count).
  const std::int64_t o_a = o_active_;
  View1<real> dead("stats.dead_fraction", L);
  View2<real> active("stats.active_fraction", L, hid);
  Kokkos::parallel_for("stats::dead_fraction", range(L), KOKKOS_LAMBDA(const std::int64_t mu) {
    const double count = acc(0) + acc(1);
    int never = 0;
    for (int j = 0; j < hid; ++j) {
      const double n = acc(o_a + mu * hid + j);
      never += n == 0.0 ? 1 : 0;
      active(mu, j) = n / count;
    }
    dead(mu) = static_cast<double>(never) / hid;
  });
  View1<real> level_mean("stats.level_mean_best_corr", t.depth);
  Kokkos::parallel_for("stats::level_means", range(t.depth), KOKKOS_LAMBDA(const std::int64_t l) {
    double s = 0.0;
    for (int mu = t.level_start[l]; mu < t.level_start[l + 1]; ++mu) s += best(mu);
    level_mean(l) = s / t.nodes_at(static_cast<int>(l));
  });

  // Covariance operator per node: Delta = mean conn | root 0 - mean conn | root 1, and the
  // Gram matrices of its two reshapes (never the dd x dd operator itself):
  //   ref:   rows (i, a), cols b  ->  G_ref(b, b')   = sum_{i,a} Delta(i,a,b) Delta(i,a,b')
  //   paper: rows (i, b), cols a  ->  G_paper(a, a') = sum_{i,b} Delta(i,a,b) Delta(i,a',b)
  // p0 p1 ||G||_F is the Frobenius norm of the operator p0 p1 Delta Delta^T.
  const std::int64_t o_c0 = o_conn0_, o_c1 = o_conn1_;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  View3<real> gram_ref("stats.gram_ref", L, hid, hid), gram_paper("stats.gram_paper", L, hid, hid);
  Kokkos::parallel_for("stats::covop_gram", range(L * hid * hid), KOKKOS_LAMBDA(const std::int64_t idx) {
    const int node = static_cast<int>(idx / (hid * hid));
    const int x = static_cast<int>((idx / hid) % hid), y = static_cast<int>(idx % hid);
    const double n0 = acc(0), n1 = acc(1), count = n0 + n1;
    const double w = (n0 / count) * (n1 / count);
    const std::int64_t base = t.conn_offset(node);
    const int in = t.in_size(node);
    const auto delta = [&](int i, int a, int b) {
      const std::int64_t e = base + (static_cast<std::int64_t>(i) * hid + a) * hid + b;
      return acc(o_c0 + e) / n0 - acc(o_c1 + e) / n1;
    };
    double gr = 0.0, gp = 0.0;
    for (int i = 0; i < in; ++i)
      for (int m = 0; m < hid; ++m) {
        gr += delta(i, m, x) * delta(i, m, y);
        gp += delta(i, x, m) * delta(i, y, m);
      }
    const bool defined = n0 > 0.0 && n1 > 0.0;
    gram_ref(node, x, y) = defined ? w * gr : nan;
    gram_paper(node, x, y) = defined ? w * gp : nan;
  });
  View1<real> norm_ref("stats.covop_norm_ref", L), norm_paper("stats.covop_norm_paper", L);
  Kokkos::parallel_for("stats::covop_norms", range(L), KOKKOS_LAMBDA(const std::int64_t node) {
    double sr = 0.0, sp = 0.0;
    for (int x = 0; x < hid; ++x)
      for (int y = 0; y < hid; ++y) {
        sr += gram_ref(node, x, y) * gram_ref(node, x, y);
        sp += gram_paper(node, x, y) * gram_paper(node, x, y);
      }
    norm_ref(node) = kmath::sqrt(sr);
    norm_paper(node) = kmath::sqrt(sp);
  });

  // Spectrum of the operator per node and the alignment of W_mu with its top eigenspace.
  View2<real> eigenvalues("stats.covop_eigenvalues", L, hid);
  View1<real> alignment("stats.covop_alignment", L);
  Kokkos::deep_copy(eigenvalues, nan);
  Kokkos::deep_copy(alignment, nan);
  if (hid <= kCovopSpectrumMaxHid) {
    double p0, p1;
    covop_spectrum(
        t, gram_paper, params_,
        [&](std::int64_t first, const View1<real>& delta) { class_mean_difference(delta, &p0, &p1, first); },
        eigenvalues, alignment, kCovopWorkBytes);
  }

  EvalResult r;
  if (all_pairs_) r.corr_full = host_vector(corr_pairs);
  r.best_corr = host_vector(best);
  r.level_mean_best_corr = host_vector(level_mean);
  r.covop_norm_ref = host_vector(norm_ref);
  r.covop_norm_paper = host_vector(norm_paper);
  r.gram_paper = host_vector(gram_paper);
  r.covop_eigenvalues = host_vector(eigenvalues);
  r.covop_alignment = host_vector(alignment);
  r.corr = host_vector(own);
  r.dead_fraction = host_vector(dead);
  {
    View1<real> root_gram("stats.root_gram", static_cast<std::int64_t>(hid) * hid);
    Kokkos::deep_copy(root_gram, Kokkos::subview(acc, Kokkos::make_pair(o_root_gram_, o_root_gram_ + hid * hid)));
    const auto gram = host_vector(root_gram);
    double trace = 0.0, frob2 = 0.0;
    for (int i = 0; i < hid; ++i) trace += gram[static_cast<size_t>(i * hid + i)];
    for (double g : gram) frob2 += g * g;
    r.output_rank1_gap = trace > 0.0 ? std::max(0.0, 1.0 - std::sqrt(frob2) / trace) : 0.0;
  }
  r.active_fraction = host_vector(active);
  auto counts = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Kokkos::subview(acc, Kokkos::make_pair(0, 2)));
  r.samples = static_cast<std::int64_t>(counts(0) + counts(1));
  return r;
}

void Evaluator::class_mean_difference(const View1<real>& delta, double* p0, double* p1, std::int64_t first) const {
  auto counts = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(),
                                                    Kokkos::subview(total_, Kokkos::make_pair(0, 2)));
  const double n0 = from_fixed(counts(0), kStatFixed), n1 = from_fixed(counts(1), kStatFixed);
  *p0 = n0 / (n0 + n1);
  *p1 = n1 / (n0 + n1);
  const auto total = total_;
  const std::int64_t o_c0 = o_conn0_ + first, o_c1 = o_conn1_ + first;
  // The same arithmetic as finish()'s covop_gram, so both see the same Delta bits.
  Kokkos::parallel_for("stats::covop_delta", range(delta.extent(0)), KOKKOS_LAMBDA(const std::int64_t e) {
    delta(e) = from_fixed(total(o_c0 + e), kStatFixed) / n0 - from_fixed(total(o_c1 + e), kStatFixed) / n1;
  });
}

}  // namespace dualnet
