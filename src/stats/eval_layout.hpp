#pragma once
// Where each exact sum of an evaluation pass sits in the one int64 View that every rank
// all-reduces (Evaluator::totals()), in this order:
//   [0], [1]        anchors with root 0 and root 1 (both measurements read them);
//   sum_z .. sum_zh the correlation statistics (stats/correlation_stats.hpp);
//   conn0, conn1    the class sums of conn, root 0 then root 1 (stats/covop_stats.hpp), each
//                   [node][i][b][a] with a (the root's neurons) padded to conn_stride: the
//                   conn sums add their tiles (rows i, columns a) in place; Delta reads them
//                   in its own order (node, i, a, b) (stats/class_mean_difference.cpp);
//   overflow        the count of sums that left the fixed-point range.
// One layout for the units that write the totals and for the memory estimate's sizing.
#include <cstdint>

#include "hltm/tree.hpp"
#include "model/padded_layout.hpp"
#include "util/fixed_point.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {

// Anchors per block: each block's sums are rounded to fixed point (kStatFixed) on their own.
constexpr std::int64_t kEvalBlock = 64;

// The evaluation's workspace cap: the covariance-operator work of one batch of nodes
// (stats/covop_stats.cpp) stays under it, so an evaluation's memory does not grow with the
// tree beyond its results.
constexpr std::int64_t kEvalWorkspaceBytes = std::int64_t(64) << 20;

// The per-anchor Jacobians of one chunk (stats/evaluator.cpp): one kernel writes them and the
// next reads them, so they are kept small enough to be read back from cache, not memory (the
// reference configuration: 128 anchors, about 4 MiB; a chunk of 512 took 1.5x as long).
constexpr std::int64_t kEvalChunkBytes = std::int64_t(4) << 20;

struct EvalLayout {
  std::int64_t sum_z, sum_h, sum_h2, active, root_gram, sum_zh, zh_width, conn0, conn1, overflow, length;
  int hid, conn_stride;  // the root's neurons, and a row of conn sums: them and their padding

  // Conn entry (i, a, b) of a node lies after conn0 or conn1 at conn_at(conn_row(node_first)
  // + i, a, b), where node_first is where the node's flat conn entries start
  // (TreeShape::conn_offset): each (node, i) has hid rows b of conn_stride, and conn_row is the
  // flat (node, 0) index. Two steps, so that a kernel divides once per node, not per tile.
  KOKKOS_INLINE_FUNCTION std::int64_t conn_row(std::int64_t node_first) const { return node_first / hid / hid; }
  KOKKOS_INLINE_FUNCTION std::int64_t conn_at(std::int64_t row, int a, int b) const {
    return (row * hid + b) * conn_stride + a;
  }
  // The same for flat conn entry e (node, i, a, b).
  KOKKOS_INLINE_FUNCTION std::int64_t conn_at(std::int64_t e) const {
    const std::int64_t row = e / hid;  // (node, i, a)
    return conn_at(0, static_cast<int>(row % hid), static_cast<int>(e % hid)) + row / hid * hid * conn_stride;
  }

  // all_pairs: z*h for every latent and every neuron (corr_full), else only each node's own.
  static EvalLayout of(const TreeShape& t, bool all_pairs) {
    const std::int64_t L = t.n_latent, N = L * t.hid;
    EvalLayout l;
    l.sum_z = 2;
    l.sum_h = l.sum_z + L;
    l.sum_h2 = l.sum_h + N;
    l.active = l.sum_h2 + N;     // per neuron: anchors with pre-activation > 0
    l.root_gram = l.active + N;  // [hid][hid]: sums of relu(h_i) relu(h_j) over the root's neurons
    l.sum_zh = l.root_gram + static_cast<std::int64_t>(t.hid) * t.hid;
    l.zh_width = all_pairs ? N : t.hid;  // per latent: every neuron, or its own
    l.hid = t.hid;
    l.conn_stride = PaddedLayout(t).stride;
    const std::int64_t conn_padded = t.n_conn() / t.hid * l.conn_stride;
    l.conn0 = l.sum_zh + L * l.zh_width;
    l.conn1 = l.conn0 + conn_padded;
    l.overflow = l.conn1 + conn_padded;
    l.length = l.overflow + 1;
    return l;
  }
};

// A sum that left the fixed-point range counts once in the totals' last entry.
KOKKOS_INLINE_FUNCTION void count_overflow(const View1<std::int64_t>& total, bool overflow) {
  if (overflow) Kokkos::atomic_add(&total(total.extent(0) - 1), std::int64_t(1));
}

}  // namespace dualnet
