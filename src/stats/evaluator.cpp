#include "stats/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "util/error.hpp"

namespace dualnet {

std::int64_t Evaluator::chunk_for(const NetworkShape& net, std::int64_t max_chunk) {
  const TreeShape& t = net.tree;
  const std::int64_t per_anchor = static_cast<std::int64_t>(std::ceil(CovopStats::bytes_per_anchor(t)));
  const std::int64_t chunk = std::max<std::int64_t>(1, std::min(max_chunk, kEvalChunkBytes / per_anchor));
  // Whole blocks: at least one, even when one block's Jacobians exceed kEvalChunkBytes.
  return std::max(kEvalBlock, chunk / kEvalBlock * kEvalBlock);
}

// total_ is made before the measurements, as workspace_bytes() counts it (the counter in
// tests/memory sees every allocation).
Evaluator::Evaluator(const NetworkShape& net, std::int64_t max_chunk, bool all_pairs)
    : net_(net),
      chunk_(chunk_for(net, max_chunk)),
      all_pairs_(all_pairs),
      layout_(EvalLayout::of(net.tree, all_pairs)),
      total_("stats.totals", layout_.length),
      corr_(net.tree, layout_, all_pairs),
      covop_(net.tree, layout_, chunk_) {}

std::int64_t Evaluator::totals_length(const NetworkShape& net, bool all_pairs) {
  return EvalLayout::of(net.tree, all_pairs).length;
}

// Keep in step with the constructor's Views.
double Evaluator::workspace_bytes(const NetworkShape& net, std::int64_t chunk, bool all_pairs) {
  const EvalLayout l = EvalLayout::of(net.tree, all_pairs);
  return sizeof(std::int64_t) * static_cast<double>(l.length) + CorrelationStats::workspace_bytes(net.tree) +
         CovopStats::workspace_bytes(net.tree, chunk);
}

// Keep in step with finish(): the correlations, then the covariance operator, each freeing
// its Views before the next; the host vectors of the result accumulate through both.
double Evaluator::finish_bytes(const NetworkShape& net, bool all_pairs) {
  const EvalLayout l = EvalLayout::of(net.tree, all_pairs);
  return std::max(CorrelationStats::finish_bytes(net.tree, l), CovopStats::finish_bytes(net.tree)) +
         result_bytes(net, all_pairs);
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

void Evaluator::reset() { Kokkos::deep_copy(total_, std::int64_t(0)); }

void Evaluator::rank_range(std::int64_t n, int rank, int size, std::int64_t* begin, std::int64_t* end) {
  const std::int64_t blocks = (n + kEvalBlock - 1) / kEvalBlock, first = blocks * rank / size;
  block_range(n, first, blocks * (rank + 1) / size - first, begin, end);
}

void Evaluator::block_range(std::int64_t n, std::int64_t first, std::int64_t count, std::int64_t* begin,
                            std::int64_t* end) {
  *begin = std::min(n, first * kEvalBlock);
  *end = std::min(n, (first + count) * kEvalBlock);
}

void Evaluator::accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows) {
  corr_.accumulate(samples, act, rows, total_);
  covop_.accumulate(samples, act, rows, total_);
}

EvalResult Evaluator::finish(const View1<real>& params) const {
  {
    auto overflow = Kokkos::create_mirror_view_and_copy(
        Kokkos::HostSpace(), Kokkos::subview(total_, std::make_pair(total_.extent(0) - 1, total_.extent(0))));
    if (overflow(0) != 0)
      throw RuntimeError(
          "evaluation: a statistic left the exact fixed-point range (|block sum| >= 2^31); the "
          "network's activations diverged",
          true);
  }
  EvalResult r;
  corr_.finish(total_, &r);
  covop_.finish(total_, params, &r);
  return r;
}

void Evaluator::class_mean_difference(const View1<real>& delta, double* p0, double* p1, std::int64_t first) const {
  const RootClasses classes = root_classes(total_);
  *p0 = classes.p0();
  *p1 = classes.p1();
  dualnet::class_mean_difference(layout_, total_, classes, first, delta);
}

}  // namespace dualnet
