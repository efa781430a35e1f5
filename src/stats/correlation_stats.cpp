#include "stats/correlation_stats.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "model/tile_product.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

CorrelationStats::CorrelationStats(const TreeShape& tree, const EvalLayout& layout, bool all_pairs)
    : t_(tree), l_(layout), all_pairs_(all_pairs) {
  shift_ = View1<real>("stats.shift", t_.n_neuron());
}

// Keep in step with the constructor's Views.
double CorrelationStats::workspace_bytes(const TreeShape& tree) {
  return sizeof(real) * static_cast<double>(tree.n_neuron());
}

// Keep in step with finish(): the totals as doubles, then (at most) the Views of
// correlations() and activity() together.
double CorrelationStats::finish_bytes(const TreeShape& tree, const EvalLayout& layout) {
  const double L = tree.n_latent, hid = tree.hid;
  return sizeof(real) * (static_cast<double>(layout.conn0)           // acc
                         + L * static_cast<double>(layout.zh_width)  // corr_pairs
                         + 2.0 * L + 2.0 * L * hid + tree.depth);    // best, dead, own, active, level_mean
}

void CorrelationStats::set_shift(const Activations& act, std::int64_t row) {
  Kokkos::deep_copy(shift_, Kokkos::subview(act.pre, row, Kokkos::ALL()));
}

void CorrelationStats::accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                                  const View1<std::int64_t>& total) const {
  moment_sums(samples, act, rows, total);
  cross_sums(samples, act, rows, total);
}

// Entries of the moment sums one thread sums at once, in registers over a block's anchors.
constexpr int kMomentCols = 8;

// The moment sums of accumulate(), in tiles of up to kMomentCols entries of one kind:
// the class counts (one tile), z per latent, h, h^2 and activity per neuron (one tile of
// neurons gives all three), and the root's Gram.
struct MomentTiles {
  int z, neuron, gram;  // tile counts of each kind, in this order after the counts tile
  KOKKOS_INLINE_FUNCTION int count() const { return 1 + z + neuron + gram; }
};

// Sums of the moments per block of kEvalBlock anchors: one team per block, one thread per
// tile of entries, the block's anchors in order inside (each entry's sum adds the same values
// in the same order as one pass over the rows would), then each block's sums are rounded to
// fixed point and added as integers. A tile's loops run to the constant kMomentCols
// (for_cols), so its sums stay in registers on a GPU, whose warp threads read adjacent
// entries of a row.
void CorrelationStats::moment_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                                   const View1<std::int64_t>& total) const {
  const TreeShape t = t_;
  const auto shift = shift_;
  const auto z = samples.latent;
  const auto pre = act.pre;
  const int L = t.n_latent, N = t.n_neuron(), hid = t.hid, hh = hid * hid;
  const std::int64_t o_z = l_.sum_z, o_h = l_.sum_h, o_h2 = l_.sum_h2, o_a = l_.active, o_g = l_.root_gram;
  const MomentTiles mt{tile_count(L, kMomentCols), tile_count(N, kMomentCols), tile_count(hh, kMomentCols)};
  const std::int64_t blocks = (rows + kEvalBlock - 1) / kEvalBlock;
  Kokkos::parallel_for(
      "stats::moment_sums", teams(blocks), KOKKOS_LAMBDA(const Team& team) {
        const std::int64_t r0 = team.league_rank() * kEvalBlock;
        const std::int64_t r1 = rows - r0 < kEvalBlock ? rows : r0 + kEvalBlock;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, mt.count()), [&](const int tile) {
          bool overflow = false;
          const auto add = [&](std::int64_t e, double s) {
            Kokkos::atomic_add(&total(e), to_fixed(s, &overflow, kStatFixed));
          };
          if (tile == 0) {              // anchors with root 0 and root 1
            double s0 = 0.0, s1 = 0.0;  // not an array indexed by z: it would leave registers
            for (std::int64_t r = r0; r < r1; ++r) {
              const double one = z(r, 0) ? 1.0 : 0.0;  // counts, exact either way
              s0 += 1.0 - one;
              s1 += one;
            }
            add(0, s0);
            add(1, s1);
          } else if (tile <= mt.z) {
            const int first = (tile - 1) * kMomentCols, w = L - first < kMomentCols ? L - first : kMomentCols;
            double s[kMomentCols] = {};
            for (std::int64_t r = r0; r < r1; ++r) for_cols<kMomentCols>(0, w, [&](int c) { s[c] += z(r, first + c); });
            for_cols<kMomentCols>(0, w, [&](int c) { add(o_z + first + c, s[c]); });
          } else if (tile <= mt.z + mt.neuron) {
            const int first = (tile - 1 - mt.z) * kMomentCols, w = N - first < kMomentCols ? N - first : kMomentCols;
            double sh[kMomentCols] = {}, sh2[kMomentCols] = {}, sa[kMomentCols] = {};
            for (std::int64_t r = r0; r < r1; ++r)
              for_cols<kMomentCols>(0, w, [&](int c) {
                const double p = pre(r, first + c), h = p - shift(first + c);
                sh[c] += h;
                sh2[c] += h * h;
                sa[c] += p > 0.0 ? 1.0 : 0.0;
              });
            for_cols<kMomentCols>(0, w, [&](int c) {
              add(o_h + first + c, sh[c]);
              add(o_h2 + first + c, sh2[c]);
              add(o_a + first + c, sa[c]);
            });
          } else {  // the root's neurons come first
            const int first = (tile - 1 - mt.z - mt.neuron) * kMomentCols;
            const int w = hh - first < kMomentCols ? hh - first : kMomentCols;
            double s[kMomentCols] = {};
            int ni[kMomentCols] = {},
                nj[kMomentCols] = {};  // entry c is the pair of root neurons (ni, nj): once, not per anchor
            for_cols<kMomentCols>(0, w, [&](int c) {
              ni[c] = (first + c) / hid;
              nj[c] = first + c - ni[c] * hid;
            });
            for (std::int64_t r = r0; r < r1; ++r)
              for_cols<kMomentCols>(0, w, [&](int c) {
                const double hi = pre(r, ni[c]), hj = pre(r, nj[c]);
                s[c] += (hi > 0.0 ? hi : 0.0) * (hj > 0.0 ? hj : 0.0);
              });
            for_cols<kMomentCols>(0, w, [&](int c) { add(o_g + first + c, s[c]); });
          }
          count_overflow(total, overflow);
        });
      });
}

// Columns summed at once in registers by cross_sums (8 vectors of 4 on AVX2 hosts).
constexpr int kCrossCols = 32;

// Sums of z_mu * (h_n - shift_n) per block of anchors. z is 0 or 1, so these are sums of h
// over the block's anchors with z_mu = 1: a dense product adds exact zeros for the others
// and multiplies the rest by exactly 1, so summing only the listed anchors changes no bit.
// The shift is taken off afterwards (shift_n times the block's count of z_mu = 1). One team
// per latent: each block's list of anchors with z_mu = 1, then up to kCrossCols neurons at a
// time summed in registers. With all pairs every neuron, else only the latent's own.
void CorrelationStats::cross_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                                  const View1<std::int64_t>& total) const {
  const auto shift = shift_;
  const auto z = samples.latent;
  const auto pre = act.pre;
  const int width = static_cast<int>(l_.zh_width), hid = t_.hid, L = t_.n_latent;
  const std::int64_t o_zh = l_.sum_zh;
  const bool all = all_pairs_;
  const int tiles = tile_count(width, kCrossCols);
  const std::int64_t pre_step = static_cast<std::int64_t>(pre.stride_0());
  // Each block's anchors with z_mu = 1, as offsets of their rows in pre.
  using ScratchN = Kokkos::View<std::int64_t*, ExecSpace::scratch_memory_space, Kokkos::MemoryUnmanaged>;
  Kokkos::parallel_for(
      "stats::cross_sums", teams(L).set_scratch_size(0, Kokkos::PerTeam(ScratchN::shmem_size(kEvalBlock))),
      KOKKOS_LAMBDA(const Team& team) {
        const int mu = team.league_rank();
        const int first = all ? 0 : mu * hid;  // first neuron summed
        const ScratchN listed(team.team_scratch(0), kEvalBlock);
        const std::int64_t base = o_zh + static_cast<std::int64_t>(mu) * width;
        for (std::int64_t r0 = 0; r0 < rows; r0 += kEvalBlock) {
          const int n = static_cast<int>(rows - r0 < kEvalBlock ? rows - r0 : kEvalBlock);
          int count = 0;
          Kokkos::single(
              Kokkos::PerTeam(team),
              [&](int& found) {
        found = 0;
        for (int r = 0; r < n; ++r) {  // without a branch: z is 0 or 1 at random
          listed(found) = r * pre_step;
          found += z(r0 + r, mu) ? 1 : 0;
        }
              },
              count);
          team.team_barrier();  // the list, for every thread
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, tiles), [&](const int tile) {
            const int start = tile_start(tile, width, kCrossCols), skip = tile_overlap(tile, width, kCrossCols);
            const int w = tile_width(width, kCrossCols);
            const real* h = &pre(r0, first + start);
            const ListedB anchors{h, &listed(0)};  // the rows of the anchors with z_mu = 1
            real s[kCrossCols] = {};
            if (w == kCrossCols)  // a constant width: no test per column
              add_row_sums<kCrossCols>(anchors, count, kCrossCols, s);
            else
              add_row_sums<kCrossCols>(anchors, count, w, s);
            bool overflow = false;
            const double c = count;
            add_fixed_shifted<kCrossCols>(s, &shift(first + start), c, skip, w, &total(base + start), &overflow,
                                          kStatFixed);
            count_overflow(total, overflow);
          });
          team.team_barrier();
        }
      });
}

void CorrelationStats::finish(const View1<std::int64_t>& total, EvalResult* r) const {
  // This measurement's totals as doubles: the counts, the moments and the z*h sums.
  const View1<real> acc("stats.sums", l_.conn0);
  Kokkos::parallel_for(
      "stats::from_fixed", range(acc.extent(0)),
      KOKKOS_LAMBDA(const std::int64_t e) { acc(e) = from_fixed(total(e), kStatFixed); });
  correlations(acc, r);
  activity(acc, r);
  auto counts = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Kokkos::subview(acc, Kokkos::make_pair(0, 2)));
  r->samples = static_cast<std::int64_t>(counts(0) + counts(1));
}

// corr(z_mu, h_n) for the pairs accumulate() summed, each node's own neurons and its best,
// and the mean best per level.
void CorrelationStats::correlations(const View1<real>& acc, EvalResult* r) const {
  const TreeShape t = t_;
  const std::int64_t L = t.n_latent, width = l_.zh_width;
  const int hid = t.hid;
  const std::int64_t o_z = l_.sum_z, o_h = l_.sum_h, o_h2 = l_.sum_h2, o_zh = l_.sum_zh;
  const bool all = all_pairs_;
  View2<real> corr_pairs("stats.corr_pairs", L, width);  // [latent][neuron], or [latent][own neuron j]
  Kokkos::parallel_for(
      "stats::correlations", range(L * width), KOKKOS_LAMBDA(const std::int64_t idx) {
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
  Kokkos::parallel_for(
      "stats::best_corr", range(L), KOKKOS_LAMBDA(const std::int64_t mu) {
        double b = 0.0;
        for (int j = 0; j < hid; ++j) {
          own(mu, j) = corr_pairs(mu, all ? mu * hid + j : j);
          b = kmath::max(b, kmath::fabs(own(mu, j)));
        }
        best(mu) = b;
      });
  View1<real> level_mean("stats.level_mean_best_corr", t.depth);
  Kokkos::parallel_for(
      "stats::level_means", range(t.depth), KOKKOS_LAMBDA(const std::int64_t l) {
        double s = 0.0;
        for (int mu = t.level_start[l]; mu < t.level_start[l + 1]; ++mu) s += best(mu);
        level_mean(l) = s / t.nodes_at(static_cast<int>(l));
      });
  if (all_pairs_) r->corr_full = host_vector(corr_pairs);
  r->best_corr = host_vector(best);
  r->level_mean_best_corr = host_vector(level_mean);
  r->corr = host_vector(own);
}

// Dead and active neurons (exact integer counts), and the root output's rank-1 gap.
void CorrelationStats::activity(const View1<real>& acc, EvalResult* r) const {
  const std::int64_t L = t_.n_latent, o_a = l_.active, o_g = l_.root_gram;
  const int hid = t_.hid;
  View1<real> dead("stats.dead_fraction", L);
  View2<real> active("stats.active_fraction", L, hid);
  // A neuron is dead on this pass when no anchor activated it.
  Kokkos::parallel_for(
      "stats::dead_fraction", range(L), KOKKOS_LAMBDA(const std::int64_t mu) {
        const double count = acc(0) + acc(1);
        int never = 0;
        for (int j = 0; j < hid; ++j) {
          const double n = acc(o_a + mu * hid + j);
          never += n == 0.0 ? 1 : 0;
          active(mu, j) = n / count;
        }
        dead(mu) = static_cast<double>(never) / hid;
      });
  r->dead_fraction = host_vector(dead);
  View1<real> root_gram("stats.root_gram", static_cast<std::int64_t>(hid) * hid);
  Kokkos::deep_copy(root_gram, Kokkos::subview(acc, Kokkos::make_pair(o_g, o_g + hid * hid)));
  const auto gram = host_vector(root_gram);
  double trace = 0.0, frob2 = 0.0;
  for (int i = 0; i < hid; ++i) trace += gram[static_cast<size_t>(i * hid + i)];
  for (double g : gram) frob2 += g * g;
  r->output_rank1_gap = trace > 0.0 ? std::max(0.0, 1.0 - std::sqrt(frob2) / trace) : 0.0;
  r->active_fraction = host_vector(active);
}

}  // namespace dualnet
