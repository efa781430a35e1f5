#include "stats/covop_spectrum.hpp"

#include <limits>

namespace dualnet {

namespace {
constexpr int kMaxSweeps = 100;
// A sweep ends the iteration once the off-diagonal mass is below (kTol * |A|_F)^2.
constexpr double kTol = 1e-15;

// The helpers below work on matrix m of the team: w the matrix being diagonalised, vectors
// the accumulated rotations. Every thread of a team reads the same entries between
// barriers, so the decisions (skip a rotation, end the sweeps) are the same on every thread,
// and the arithmetic on each entry does not depend on the team size: the result is the same
// on any backend.

// Sum of the squares of the entries of w(m) that `which(row, column)` selects, added in one
// fixed order (row by row) by one thread and handed to all: a reduction over the team's
// threads would add in an order that depends on the team size, and then the stopping test
// of the sweeps, which uses these sums, could differ between backends.
template <class Which>
KOKKOS_INLINE_FUNCTION double squares(const Team& team, const View3<real>& w, int m, int n, const Which& which) {
  double total = 0.0;
  Kokkos::single(
      Kokkos::PerTeam(team),
      [&](double& s) {
    s = 0.0;
    for (int e = 0; e < n * n; ++e)
      if (which(e / n, e % n)) s += w(m, e / n, e % n) * w(m, e / n, e % n);
      },
      total);
  return total;
}

// True (and every value and vector `nan`) when w(m) has a non-finite entry.
KOKKOS_INLINE_FUNCTION bool not_finite(const Team& team, const View3<real>& w, const View2<real>& values,
                                       const View3<real>& vectors, int m, int n, double nan) {
  int bad = 0;
  Kokkos::parallel_reduce(
      Kokkos::TeamThreadRange(team, n * n),
      [&](const int e, int& b) {
    const double x = w(m, e / n, e % n);
    if (!(x - x == 0.0)) b += 1;  // NaN or infinite
      },
      bad);
  team.team_barrier();
  if (bad == 0) return false;
  Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n * n), [&](const int e) {
    vectors(m, e / n, e % n) = nan;
    if (e < n) values(m, e) = nan;
  });
  return true;
}

// (x, y) <- (c x - s y, s x + c y): one pair of entries through a plane rotation.
KOKKOS_INLINE_FUNCTION void givens(double c, double s, double& x, double& y) {
  const double a = x, b = y;
  x = c * a - s * b;
  y = s * a + c * b;
}

// The rotation that zeroes (p, q), unless it is zero already: A <- P^T A P, V <- V P.
KOKKOS_INLINE_FUNCTION void rotate(const Team& team, const View3<real>& w, const View3<real>& vectors, int m, int n,
                                   int p, int q) {
  const double apq = w(m, p, q);
  if (apq == 0.0) return;
  // t = tan(phi) is the smaller root of t^2 + 2 theta t - 1 = 0 with theta = (a_qq - a_pp) / (2 a_pq).
  const double theta = (w(m, q, q) - w(m, p, p)) / (2.0 * apq);
  const double at = kmath::fabs(theta);
  double t = at > 1e150 ? 0.5 / at : 1.0 / (at + kmath::sqrt(theta * theta + 1.0));
  if (theta < 0.0) t = -t;
  const double c = 1.0 / kmath::sqrt(t * t + 1.0), s = t * c;
  team.team_barrier();  // everyone has read a_pp, a_qq, a_pq
  // A <- A P and V <- V P, with P(p,p) = P(q,q) = c, P(p,q) = s, P(q,p) = -s.
  Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n), [&](const int k) {
    givens(c, s, w(m, k, p), w(m, k, q));
    givens(c, s, vectors(m, k, p), vectors(m, k, q));
  });
  team.team_barrier();
  // A <- P^T A.
  Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n), [&](const int k) { givens(c, s, w(m, p, k), w(m, q, k)); });
  team.team_barrier();
  Kokkos::single(Kokkos::PerTeam(team), [&]() {
    w(m, p, q) = 0.0;
    w(m, q, p) = 0.0;
  });
  team.team_barrier();
}

// The diagonal of w(m) into values(m) in descending order (selection sort, swapping the
// eigenvector columns), each vector signed so that its largest-magnitude entry is positive.
KOKKOS_INLINE_FUNCTION void sort_descending(const View3<real>& w, const View2<real>& values, const View3<real>& vectors,
                                            int m, int n) {
  for (int j = 0; j < n; ++j) {
    int best = j;
    for (int k = j + 1; k < n; ++k)
      if (w(m, k, k) > w(m, best, best)) best = k;
    if (best != j) {
      const double d = w(m, j, j);
      w(m, j, j) = w(m, best, best);
      w(m, best, best) = d;
      for (int r = 0; r < n; ++r) {
        const double v = vectors(m, r, j);
        vectors(m, r, j) = vectors(m, r, best);
        vectors(m, r, best) = v;
      }
    }
    values(m, j) = w(m, j, j);
    int big = 0;
    for (int r = 1; r < n; ++r)
      if (kmath::fabs(vectors(m, r, j)) > kmath::fabs(vectors(m, big, j))) big = r;
    if (vectors(m, big, j) < 0.0)
      for (int r = 0; r < n; ++r) vectors(m, r, j) = -vectors(m, r, j);
  }
}

}  // namespace

void symmetric_eigen(const View3<real>& a, const View2<real>& values, const View3<real>& vectors) {
  const int count = static_cast<int>(a.extent(0));
  const int n = static_cast<int>(a.extent(1));
  const View3<real> w("stats.covop_jacobi_work", count, n, n);
  Kokkos::deep_copy(w, a);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Kokkos::parallel_for(
      "stats::covop_jacobi", teams(count), KOKKOS_LAMBDA(const Team& team) {
        const int m = team.league_rank();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n * n),
                             [&](const int e) { vectors(m, e / n, e % n) = (e / n == e % n) ? 1.0 : 0.0; });
        if (not_finite(team, w, values, vectors, m, n, nan)) return;
        const double total = squares(team, w, m, n, [](int, int) { return true; });
        for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
          const double off = squares(team, w, m, n, [](int r, int c) { return r != c; });
          if (off <= kTol * kTol * total) break;
          for (int p = 0; p + 1 < n; ++p)
            for (int q = p + 1; q < n; ++q) rotate(team, w, vectors, m, n, p, q);
        }
        Kokkos::single(Kokkos::PerTeam(team), [&]() { sort_descending(w, values, vectors, m, n); });
      });
}

void covop_alignment(const TreeShape& tree, int first_node, const View1<real>& delta, const View2<real>& values,
                     const View3<real>& vectors, const View1<real>& params, const View1<real>& alignment) {
  const TreeShape t = tree;
  const std::int64_t c0 = t.conn_offset(first_node);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double tie = kCovopTopTie;
  // One thread per node. For each top eigenvector v_j: u_j = Delta v_j (an eigenvector of
  // OP_mu, |u_j|^2 = lambda_j / (p0 p1)); the u_j are orthogonal, so the squared norm of the
  // projection of w onto their span is sum_j <w, u_j>^2 / |u_j|^2.
  Kokkos::parallel_for(
      "stats::covop_alignment", range(values.extent(0)), KOKKOS_LAMBDA(const std::int64_t m) {
        const int node = first_node + static_cast<int>(m);
        const int hid = t.hid, in = t.in_size(node);
        const std::int64_t wo = t.param_offset(node), co = t.conn_offset(node) - c0;
        const double top = values(m, 0);
        double ww = 0.0;
        for (std::int64_t p = wo; p < wo + static_cast<std::int64_t>(hid) * in; ++p) ww += params(p) * params(p);
        double projected = 0.0;
        for (int j = 0; j < hid && values(m, j) >= top * (1.0 - tie); ++j) {
          double dot = 0.0, uu = 0.0;
          for (int i = 0; i < in; ++i)
            for (int b = 0; b < hid; ++b) {
              double u = 0.0;
              for (int a = 0; a < hid; ++a)
                u += delta(co + (static_cast<std::int64_t>(i) * hid + a) * hid + b) * vectors(m, a, j);
              dot += params(wo + static_cast<std::int64_t>(b) * in + i) * u;
              uu += u * u;
            }
          if (uu > 0.0) projected += dot * dot / uu;
        }
        const bool defined = top > 0.0 && ww > 0.0;
        alignment(m) = defined ? kmath::sqrt(projected / ww) : nan;
      });
}

void covop_spectrum(const TreeShape& tree, int first, int count, const View3<real>& gram, const View1<real>& delta,
                    const View1<real>& params, const View2<real>& values, const View1<real>& alignment) {
  const TreeShape& t = tree;
  const auto nodes = Kokkos::make_pair(first, first + count);
  const View3<real> a("stats.covop_gram_batch", count, t.hid, t.hid);
  Kokkos::deep_copy(a, Kokkos::subview(gram, nodes, Kokkos::ALL(), Kokkos::ALL()));
  const View2<real> val("stats.covop_values_batch", count, t.hid);
  const View3<real> vec("stats.covop_vectors_batch", count, t.hid, t.hid);
  symmetric_eigen(a, val, vec);
  Kokkos::deep_copy(Kokkos::subview(values, nodes, Kokkos::ALL()), val);
  if (params.extent(0) != static_cast<size_t>(t.n_params())) return;
  const View1<real> al("stats.covop_alignment_batch", count);
  covop_alignment(t, first, delta, val, vec, params, al);
  Kokkos::deep_copy(Kokkos::subview(alignment, nodes), al);
}

}  // namespace dualnet
