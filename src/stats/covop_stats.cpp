#include "stats/covop_stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "model/padded_layout.hpp"
#include "model/tile_product.hpp"
#include "stats/covop_spectrum.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

CovopStats::CovopStats(const TreeShape& tree, const EvalLayout& layout, std::int64_t chunk) : t_(tree), l_(layout) {
  jac_ = View3<real>("stats.jacobian", t_.n_latent, chunk, t_.hid * t_.hid);
  slot_ = View1<std::int64_t>("stats.class_order_slot", chunk);
  class0_count_ = View1<int>("stats.class0_count", chunk / kEvalBlock);
}

// Keep in step with the constructor's Views.
double CovopStats::workspace_bytes(const TreeShape& tree, std::int64_t chunk) {
  const double hh = static_cast<double>(tree.hid) * tree.hid, c = static_cast<double>(chunk);
  return sizeof(real) * tree.n_latent * c * hh + sizeof(std::int64_t) * c +
         8.0 * std::ceil(sizeof(int) * static_cast<double>(chunk / kEvalBlock) / 8.0);  // Kokkos rounds to 8 bytes
}

int CovopStats::batch_nodes(const TreeShape& tree) {
  // Per node: the spectrum's gram copy, eigenvectors and Jacobi work (hid x hid each), and
  // Delta of a node fed by neurons.
  const std::int64_t hh = static_cast<std::int64_t>(tree.hid) * tree.hid;
  const std::int64_t per_node = static_cast<std::int64_t>(sizeof(real)) * (3 * hh + tree.k * tree.hid * hh);
  return static_cast<int>(
      std::max<std::int64_t>(1, std::min<std::int64_t>(tree.n_latent, kEvalWorkspaceBytes / per_node)));
}

// Keep in step with finish() and covop_spectrum(): the Views finish() holds to the end, and
// the first (largest) batch's Delta and spectrum workspace: gram copy, eigenvectors and
// Jacobi work, values, alignment.
double CovopStats::finish_bytes(const TreeShape& tree) {
  const double L = tree.n_latent, hid = tree.hid, hh = hid * hid;
  const int batch = batch_nodes(tree);
  const double views = 2.0 * L * hh + 2.0 * L + L * hid + L;  // both grams, both norms, eigenvalues, alignment
  const double spectrum = tree.hid <= kCovopSpectrumMaxHid ? batch * (3.0 * hh + hid + 1.0) : 0.0;
  return sizeof(real) * (views + static_cast<double>(tree.conn_offset(batch)) + spectrum);
}

void CovopStats::accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                            const View1<std::int64_t>& total) const {
  class_order(samples, rows);
  jacobians(act, rows);
  conn_sums(samples, act, rows, total);
}

// Each block's anchors in root-class order (class 0 first, each class in anchor order):
// the Jacobians are stored in that order, so each class is one contiguous range of k in
// the conn sums (half the work of masking the other class out).
void CovopStats::class_order(const SampleBatch& samples, std::int64_t rows) const {
  const auto z = samples.latent;
  const auto slot = slot_;
  const auto class0 = class0_count_;
  Kokkos::parallel_for(
      "stats::class_order", range((rows + kEvalBlock - 1) / kEvalBlock), KOKKOS_LAMBDA(const std::int64_t b) {
        const std::int64_t r0 = b * kEvalBlock, r1 = r0 + kEvalBlock < rows ? r0 + kEvalBlock : rows;
        int n0 = 0;
        for (std::int64_t r = r0; r < r1; ++r) n0 += z(r, 0) ? 0 : 1;
        class0(b) = n0;
        std::int64_t next0 = r0, next1 = r0 + n0;
        for (std::int64_t r = r0; r < r1; ++r) slot(r) = z(r, 0) ? next1++ : next0++;
      });
}

// Jacobians top-down, one team per block of 4 anchors: J_root = I; row a of J_c is
// sum_j J_parent(a, j) W_parent(j, block c), then the ReLU gate of c closes columns. Row a
// of the four anchors' Jacobians is one tile product of 4 rows x up to 12 columns
// (model/tile_product.hpp), W_parent read in its padded layout (model/padded_layout.hpp).
// An anchor's Jacobians live at row slot(anchor) of jac.
void CovopStats::jacobians(const Activations& act, std::int64_t rows) const {
  const TreeShape t = t_;
  const PaddedLayout pad(t);
  const auto jac = jac_;
  const auto slot = slot_;
  const auto pre = act.pre;
  const auto wb = act.wb;
  const int hid = t.hid, hh = hid * hid, b_tiles = node_col_tile_count(hid);
  const std::int64_t pre_step = static_cast<std::int64_t>(pre.stride_0());
  Kokkos::parallel_for(
      "stats::jacobians", teams(row_blocks(rows)), KOKKOS_LAMBDA(const Team& team) {
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
            const int parent = t.parent(node), q = node - 1 - parent * t.k;
            const std::int64_t w_off = pad.backward_offset(parent) + q * pad.stride;
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
                const Tile s =
                    tile_product<false, false>(jp, 1, &wb(w_off + ct.start), pad.backward_row(), hid, ct.read);
                const real* h = &pre(rb.first, node * hid + ct.start);
                tile_store(s, rb.count, ct.width,
                           [&](int m, int e, double v) { jc[m][ct.start + e] = h[m * pre_step + e] > 0.0 ? v : 0.0; });
              }
            }
          });
          team.team_barrier();
        }
      });
}

// Class sums of conn_mu(i, a, b) = input_mu(i) * J_mu(a, b), a block of anchors at a time:
// one team per node and group of four inputs. A tile's rows are the four inputs, its
// columns 8 entries (a, b), its k the block's anchors of one root class (a contiguous range
// in class order); each block's sums go straight into the exact totals.
void CovopStats::conn_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                           const View1<std::int64_t>& total) const {
  const TreeShape t = t_;
  const auto jac = jac_;
  const auto slot = slot_;
  const auto class0 = class0_count_;
  const auto pre = act.pre;
  const auto leaves = samples.leaves;
  const int hh = t.hid * t.hid;
  const std::int64_t o_c0 = l_.conn0, o_c1 = l_.conn1;
  const int inner = t.level_start[t.depth - 1];  // nodes whose inputs are neurons, then those fed by leaves
  const int groups_inner = tile_count(t.k * t.hid, kTileRows), groups_leaf = tile_count(t.k, kTileRows);
  const int group_teams = inner * groups_inner + (t.n_latent - inner) * groups_leaf;
  const int ab_tiles = col_tile_count(hh);
  Kokkos::parallel_for(
      "stats::conn_sums", teams(group_teams), KOKKOS_LAMBDA(const Team& team) {
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
              add_fixed(s, ct.width, fixed, &overflow, kStatFixed);  // the whole tile at once (vectors on the host)
              const std::int64_t o = (c == 0 ? o_c0 : o_c1) + base + ct.start;
              for (int q = 0; q < inputs; ++q)
                for (int e = ct.skip; e < ct.width; ++e)
                  total(o + static_cast<std::int64_t>(q) * hh + e) += fixed[q][e];
            }
            count_overflow(total, overflow);
          });
          team.team_barrier();
        }
      });
}

namespace {

// The Gram matrices of Delta's two reshapes for nodes [first, first + count), from their
// Delta (entries from conn_offset(first) on); never the dd x dd operator itself:
//   ref:   rows (i, a), cols b  ->  G_ref(b, b')   = p0 p1 sum_{i,a} Delta(i,a,b) Delta(i,a,b')
//   paper: rows (i, b), cols a  ->  G_paper(a, a') = p0 p1 sum_{i,b} Delta(i,a,b) Delta(i,a',b)
// ||G||_F is the Frobenius norm of the operator p0 p1 Delta Delta^T; NaN where a class is empty.
void covop_grams(const TreeShape& tree, const RootClasses& classes, int first, int count, const View1<real>& delta,
                 const View3<real>& gram_ref, const View3<real>& gram_paper) {
  const TreeShape t = tree;
  const int hid = t.hid;
  const double w = classes.p0() * classes.p1(), nan = std::numeric_limits<double>::quiet_NaN();
  const bool defined = classes.both();
  const std::int64_t c0 = t.conn_offset(first);
  Kokkos::parallel_for(
      "stats::covop_gram", range(static_cast<std::int64_t>(count) * hid * hid), KOKKOS_LAMBDA(const std::int64_t idx) {
        const int node = first + static_cast<int>(idx / (hid * hid));
        const int x = static_cast<int>((idx / hid) % hid), y = static_cast<int>(idx % hid);
        const std::int64_t base = t.conn_offset(node) - c0;
        const int in = t.in_size(node);
        const auto d = [&](int i, int a, int b) {
          return delta(base + (static_cast<std::int64_t>(i) * hid + a) * hid + b);
        };
        double gr = 0.0, gp = 0.0;
        for (int i = 0; i < in; ++i)
          for (int m = 0; m < hid; ++m) {
            gr += d(i, m, x) * d(i, m, y);
            gp += d(i, x, m) * d(i, y, m);
          }
        gram_ref(node, x, y) = defined ? w * gr : nan;
        gram_paper(node, x, y) = defined ? w * gp : nan;
      });
}

// Frobenius norms of each node's two Gram matrices.
void frobenius_norms(const View3<real>& gram_ref, const View3<real>& gram_paper, const View1<real>& norm_ref,
                     const View1<real>& norm_paper) {
  const int hid = static_cast<int>(gram_ref.extent(1));
  Kokkos::parallel_for(
      "stats::covop_norms", range(gram_ref.extent(0)), KOKKOS_LAMBDA(const std::int64_t node) {
        double sr = 0.0, sp = 0.0;
        for (int x = 0; x < hid; ++x)
          for (int y = 0; y < hid; ++y) {
            sr += gram_ref(node, x, y) * gram_ref(node, x, y);
            sp += gram_paper(node, x, y) * gram_paper(node, x, y);
          }
        norm_ref(node) = kmath::sqrt(sr);
        norm_paper(node) = kmath::sqrt(sp);
      });
}

}  // namespace

// A batch of nodes at a time: Delta of the batch, then its Gram matrices and (for hid up to
// kCovopSpectrumMaxHid) its spectrum and alignment; the norms once every Gram is made.
void CovopStats::finish(const View1<std::int64_t>& total, const View1<real>& params, EvalResult* r) const {
  const TreeShape& t = t_;
  const RootClasses classes = root_classes(total);
  View3<real> gram_ref("stats.gram_ref", t.n_latent, t.hid, t.hid),
      gram_paper("stats.gram_paper", t.n_latent, t.hid, t.hid);
  View2<real> eigenvalues("stats.covop_eigenvalues", t.n_latent, t.hid);
  View1<real> alignment("stats.covop_alignment", t.n_latent);
  Kokkos::deep_copy(eigenvalues, std::numeric_limits<double>::quiet_NaN());
  Kokkos::deep_copy(alignment, std::numeric_limits<double>::quiet_NaN());
  const int batch = batch_nodes(t);
  for (int first = 0; first < t.n_latent; first += batch) {
    const int count = std::min(batch, t.n_latent - first);
    const std::int64_t e0 = t.conn_offset(first), e1 = t.conn_offset(first + count);
    const View1<real> delta("stats.covop_delta_batch", e1 - e0);
    class_mean_difference(l_, total, classes, e0, delta);
    covop_grams(t, classes, first, count, delta, gram_ref, gram_paper);
    if (t.hid <= kCovopSpectrumMaxHid)
      covop_spectrum(t, first, count, gram_paper, delta, params, eigenvalues, alignment);
  }
  View1<real> norm_ref("stats.covop_norm_ref", t.n_latent), norm_paper("stats.covop_norm_paper", t.n_latent);
  frobenius_norms(gram_ref, gram_paper, norm_ref, norm_paper);
  r->covop_norm_ref = host_vector(norm_ref);
  r->covop_norm_paper = host_vector(norm_paper);
  r->gram_paper = host_vector(gram_paper);
  r->covop_eigenvalues = host_vector(eigenvalues);
  r->covop_alignment = host_vector(alignment);
}

}  // namespace dualnet
