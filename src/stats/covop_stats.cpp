#include "stats/covop_stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "model/padded_layout.hpp"
#include "model/tile_product.hpp"
#include "stats/covop_spectrum.hpp"
#include "util/error.hpp"
#include "util/fast_div.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {

namespace {
// Workspace bytes of one node's Jacobian and gate list, per anchor.
double node_bytes_per_anchor(const TreeShape& tree) {
  return sizeof(real) * static_cast<double>(tree.hid) * PaddedLayout(tree).stride + sizeof(int) * (tree.hid + 1.0);
}
}  // namespace

TreeWindows CovopStats::windows_of(const TreeShape& tree, int split) {
  return TreeWindows(tree, kEvalBlock * node_bytes_per_anchor(tree), static_cast<double>(kEvalChunkBytes), split);
}

CovopStats::CovopStats(const TreeShape& tree, const EvalLayout& layout, std::int64_t chunk, int split)
    : t_(tree), l_(layout), stride_(PaddedLayout(tree).stride), windows_(windows_of(tree, split)) {
  const int slots = windows_.slots();
  jac_ = View3<real>("stats.jacobian", slots, chunk, static_cast<std::int64_t>(t_.hid) * stride_);
  open_ = View3<int>("stats.open_gates", slots, chunk, t_.hid);
  open_count_ = View2<int>("stats.open_count", slots, chunk);
  row_at_ = View1<std::int64_t>("stats.class_order", chunk);
  class0_count_ = View1<int>("stats.class0_count", chunk / kEvalBlock);
  root_jacobians();
}

// Keep in step with the constructor's Views (Kokkos rounds each allocation to 8 bytes).
double CovopStats::workspace_bytes(const TreeShape& tree, std::int64_t chunk) {
  const auto rounded = [](double bytes) { return 8.0 * std::ceil(bytes / 8.0); };
  const double c = static_cast<double>(chunk), L = windows_of(tree).slots(), hid = tree.hid;
  return sizeof(real) * L * c * hid * PaddedLayout(tree).stride + rounded(sizeof(int) * L * c * hid) +
         rounded(sizeof(int) * L * c) + sizeof(std::int64_t) * c +
         rounded(sizeof(int) * static_cast<double>(chunk / kEvalBlock));
}

double CovopStats::bytes_per_anchor(const TreeShape& tree) {
  return windows_of(tree).slots() * node_bytes_per_anchor(tree) + sizeof(std::int64_t);
}

int CovopStats::batch_nodes(const TreeShape& tree) {
  // Per node: the spectrum's gram copy, eigenvectors and Jacobi work (hid x hid each), and
  // Delta of a node fed by neurons.
  const std::int64_t hh = static_cast<std::int64_t>(tree.hid) * tree.hid;
  const std::int64_t per_node = static_cast<std::int64_t>(sizeof(real)) * (3 * hh + tree.k * tree.hid * hh);
  return static_cast<int>(
      std::max<std::int64_t>(1, std::min<std::int64_t>(tree.n_latent, kEvalWorkspaceBytes / per_node)));
}

namespace {

// The conn sums' teams: a node's inputs in groups of whole tiles whose sums (both root
// classes, inputs x hid x stride) stay under kConnGroupEntries where they can (a group has at
// least one tile of inputs), so that a wide node's work is shared by several teams; a node of
// hid <= 12 is one team.
constexpr int kConnGroupEntries = 16384;

struct ConnGroups {
  int inputs_inner, groups_inner, inputs_leaf, groups_leaf;  // per node fed by neurons / by leaves
  explicit ConnGroups(const TreeShape& t, int stride) {
    // Whole tiles of inputs per group (at least one), as many as the budget holds.
    const std::int64_t per_input = 2 * static_cast<std::int64_t>(t.hid) * stride;
    const std::int64_t fit = kConnGroupEntries / per_input / kTileRows * kTileRows;
    const int most = static_cast<int>(fit > kTileRows ? (fit < (1 << 20) ? fit : (1 << 20)) : kTileRows);
    const auto split = [&](int in, int* inputs, int* groups) {
      *inputs = in < most ? in : most;
      *groups = tile_count(in, *inputs);
    };
    split(t.k * t.hid, &inputs_inner, &groups_inner);
    split(t.k, &inputs_leaf, &groups_leaf);
  }
};

#ifdef DUALNET_TILE_VECTORS
// The conn sums prefetch their inputs when a chunk's rows of activations exceed this
// (measured on a Zen 4 host, 1 MiB of L2: depth 10 at 5 MB gained 4-13 %, depth 5 at 0.3 MB
// lost 1-4 %).
constexpr std::int64_t kConnPrefetchBytes = std::int64_t(1) << 20;
// ... and the next team's totals when the tree's conn totals exceed this (the same host: 1.08-1.09x
// at depth 9 and 10, paired medians of 8 rounds; depth 6 at 1.2 MB 0.97-0.99x).
constexpr std::int64_t kConnTotalsPrefetchBytes = std::int64_t(2) << 20;
#endif

// What a conn-sums team works on (conn_sums).
struct ConnTeam {
  int node, slot, i0, inputs;
  const real* x0;
  std::int64_t x_step;
  std::int64_t conn_row;  // its first input's row of conn totals (EvalLayout::conn_row)
};

// A conn-sums team's scratch: for one block and class, per gate b the anchors where b is
// open (where their inputs start, and their row of J_mu^T in jac).
std::size_t conn_scratch_bytes(int hid) {
  return static_cast<std::size_t>(hid) * kEvalBlock * 2 * sizeof(std::int64_t) + hid * sizeof(int) +
         3 * 64;  // 64: alignment of each allocation
}

#ifdef DUALNET_TILE_VECTORS
// Not inlined on the host: inside the Jacobians' kernel GCC kept the list's bound and
// pointers on the stack and reloaded them for every gate.
#define DUALNET_LIST_NOINLINE __attribute__((noinline))
// For each mask of 4 gates (bit j: gate j open): the open gates' places, then their count.
constexpr signed char kOpenPlaces[16][5] = {{0, 0, 0, 0, 0}, {0, 0, 0, 0, 1}, {1, 0, 0, 0, 1}, {0, 1, 0, 0, 2},
                                            {2, 0, 0, 0, 1}, {0, 2, 0, 0, 2}, {1, 2, 0, 0, 2}, {0, 1, 2, 0, 3},
                                            {3, 0, 0, 0, 1}, {0, 3, 0, 0, 2}, {1, 3, 0, 0, 2}, {0, 1, 3, 0, 3},
                                            {2, 3, 0, 0, 2}, {0, 2, 3, 0, 3}, {1, 2, 3, 0, 3}, {0, 1, 2, 3, 4}};
#else
#define DUALNET_LIST_NOINLINE
#endif

// Lists the open gates of one node for one anchor (its pre-activations h) in gates, ascending,
// and returns their count, without a branch (half the gates are open, at random). The host's
// vector builds take whole groups of 4 gates at once: the group's mask of open gates picks
// their places from a table, and the group writes 4 entries from n <= e on, never past the
// list's hid entries. The last gates (and the portable code) go one at a time.
KOKKOS_FUNCTION DUALNET_LIST_NOINLINE int list_open_gates(const real* h, int hid, int* gates) {
  int n = 0, e = 0;
#ifdef DUALNET_TILE_VECTORS
  for (; e + 4 <= hid; e += 4) {
    const int mask = tile_vec::lane_bits(tile_vec::load(h + e) > tile_vec::v4{});
    for (int j = 0; j < 4; ++j) gates[n + j] = e + kOpenPlaces[mask][j];
    n += kOpenPlaces[mask][4];
  }
#endif
  for (; e < hid; ++e) {
    gates[n] = e;
    n += h[e] > 0.0 ? 1 : 0;
  }
  return n;
}

// The lists of one conn-sums block and class: for each of its anchors (rows[s], s < n) and
// each of the anchor's open gates b (its row of gates[row * gates_step + k], k <
// counts[row * counts_step]), where the anchor's inputs start (row * x_step) and its row k of
// J_mu^T (jt0 + row * jt_step + k * stride) join gate b's list, whose length is found[b]
// (zeroed here). A function of its own on the host for the same reason as list_open_gates:
// inside the kernel GCC kept the lists and steps on the stack (20 instructions per entry).
KOKKOS_FUNCTION DUALNET_LIST_NOINLINE void list_block(const std::int64_t* rows, int n, const int* gates,
                                                      std::int64_t gates_step, const int* counts,
                                                      std::int64_t counts_step, std::int64_t x_step, std::int64_t jt0,
                                                      std::int64_t jt_step, int stride, int hid, int* found,
                                                      std::int64_t* xs, std::int64_t* jts) {
  for (int b = 0; b < hid; ++b) found[b] = 0;
  for (int s = 0; s < n; ++s) {
    const std::int64_t row = rows[s], x = row * x_step;
    const int* const g = gates + row * gates_step;
    const int open = counts[row * counts_step];
    std::int64_t jt = jt0 + row * jt_step;
    for (int k = 0; k < open; ++k, jt += stride) {
      const std::int64_t b = g[k], at = b * kEvalBlock + found[b]++;
      xs[at] = x;
      jts[at] = jt;
    }
  }
}

}  // namespace

// Keep in step with finish() and covop_spectrum(): the Views finish() holds to the end, and
// the first (largest) batch's Delta and spectrum workspace: gram copy, eigenvectors and
// Jacobi work, values, alignment. The conn sums' team scratch (which host backends keep
// after the kernel) is counted here too.
double CovopStats::finish_bytes(const TreeShape& tree) {
  const double L = tree.n_latent, hid = tree.hid, hh = hid * hid;
  const int batch = batch_nodes(tree);
  const double views = 2.0 * L * hh + 2.0 * L + L * hid + L;  // both grams, both norms, eigenvalues, alignment
  const double spectrum = tree.hid <= kCovopSpectrumMaxHid ? batch * (3.0 * hh + hid + 1.0) : 0.0;
  const double scratch = static_cast<double>(conn_scratch_bytes(tree.hid));
  return sizeof(real) * (views + static_cast<double>(tree.conn_offset(batch)) + spectrum) + scratch;
}

void CovopStats::accumulate(const SampleBatch& samples, const Activations& act, std::int64_t rows,
                            const View1<std::int64_t>& total) const {
  class_order(samples, rows);
  for (int w = 0; w < windows_.windows(); ++w) {
    const TreeWindow win = windows_.window(w);
    jacobians(act, rows, win);
    conn_sums(samples, act, rows, win, total);
  }
}

// Each block's anchors in root-class order (class 0 first, each class in anchor order): the
// conn sums add a class's anchors in this order, so its double sums are the same whatever
// the rank count.
void CovopStats::class_order(const SampleBatch& samples, std::int64_t rows) const {
  const auto z = samples.latent;
  const auto row_at = row_at_;
  const auto class0 = class0_count_;
  Kokkos::parallel_for(
      "stats::class_order", range((rows + kEvalBlock - 1) / kEvalBlock), KOKKOS_LAMBDA(const std::int64_t b) {
        const std::int64_t r0 = b * kEvalBlock, r1 = r0 + kEvalBlock < rows ? r0 + kEvalBlock : rows;
        int n0 = 0;
        for (std::int64_t r = r0; r < r1; ++r) n0 += z(r, 0) ? 0 : 1;
        class0(b) = n0;
        std::int64_t next0 = r0, next1 = r0 + n0;
        for (std::int64_t r = r0; r < r1; ++r) row_at(z(r, 0) ? next1++ : next0++) = r;
      });
}

// Jacobians of one window of the tree (stats/tree_windows.hpp) top-down, each node's in its
// slot, one team per anchor, only where ReLU gates are open. J_mu(a, b) is 0
// for every a where b's gate is closed, so each node keeps the list of its open gates and
// the rows b of J_mu^T behind them (row k: b = open[k], a over the root's neurons, padded to
// stride). A child's row e is
//     J_c^T(e, .) = sum over the parent's open gates k of W_parent(open[k], block c, e) J_p^T(k, .),
// 4 open gates e at a time as one tile product (model/tile_product.hpp) over the parent's
// open gates only: the closed ones add exact zeros in a dense product, so skipping them
// changes no bit. A level's nodes list their gates and make their rows in one loop: the
// parents' (the level above, or the top window) are complete by then. The root has no gate:
// J_root^T = I, all gates listed, made once (root_jacobians).
void CovopStats::jacobians(const Activations& act, std::int64_t rows, const TreeWindow& win) const {
  const TreeShape t = t_;
  const PaddedLayout pad(t);
  const auto jac = jac_;
  const auto open = open_;
  const auto count = open_count_;
  const auto pre = act.pre;
  const auto wb = act.wb;
  const int hid = t.hid, stride = pad.stride, a_tiles = node_col_tile_count(hid);
  const real* const root_rows = act.wt.data() + pad.forward_offset(0);  // B(i, a) = W_root(a, i), padded
  Kokkos::parallel_for(
      "stats::jacobians", teams(rows), KOKKOS_LAMBDA(const Team& team) {
        const std::int64_t r = team.league_rank();
        for (int d = 0; d < win.levels; ++d) {
          if (win.first_level + d == 0) continue;  // the root: made once
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, win.count(d)), [&](const int i) {
            const int node = win.first_node[d] + i, slot = win.first_slot[d] + i;
            const TreeWindow::Parent up = win.parent_of(d, i, t);
            const int parent = up.node, q = node - t.first_child(parent), ps = up.slot;
            int* const gates = &open(slot, r, 0);  // a plain pointer: View indexing cost more than the loops
            const int nc = list_open_gates(&pre(r, node * hid), hid, gates);
            count(slot, r) = nc;
            const real* w = &wb(pad.backward_offset(parent) + q * stride);  // W_parent(j, block q, e) = w[j*row + e]
            const std::int64_t row = pad.backward_row();
            real* const out = &jac(slot, r, 0);
            if (parent == 0) {
              // Below the root, J_root^T = I: the product's sum for (e, a) is W_root(a, block q, e)
              // plus exact zeros, which rounds it as + 0.0 does (-0 becomes +0); 0 in the padding.
              // Row e is forward's row q*hid + e of the root, W_root(., q*hid + e), contiguous (a
              // column of backward's copy was a strided gather, 8 instructions per value).
              for (int k = 0; k < nc; ++k) {
                const real* const src = root_rows + static_cast<std::int64_t>(q * hid + gates[k]) * stride;
                real* const dst = out + k * stride;
#ifdef DUALNET_TILE_VECTORS
                if (stride % 4 == 0) {  // whole vectors (a scalar loop here became a memset call per row)
                  const tile_vec::i4 lane = {0, 1, 2, 3};
                  for (int a = 0; a < stride; a += 4)
                    tile_vec::store(lane + a < hid ? tile_vec::load(src + a) + 0.0 : tile_vec::v4{}, dst + a);
                  continue;
                }
#endif
                for (int a = 0; a < stride; ++a) dst[a] = a < hid ? src[a] + 0.0 : 0.0;
              }
              return;
            }
            const int np = count(ps, r);
            const ListedK parent_gates{&open(ps, r, 0), row};
            const real* const parent_jt = &jac(ps, r, 0);
            for (int e0 = 0; e0 < nc; e0 += kTileRows) {
              const int e_rows = nc - e0 < kTileRows ? nc - e0 : kTileRows;
              const real* a[kTileRows];  // A(m, k) = W_parent(open_parent[k], block q, gates[e0 + m])
              for (int m = 0; m < kTileRows; ++m) a[m] = w + gates[e0 + (m < e_rows ? m : e_rows - 1)];
              for (int tile = 0; tile < a_tiles; ++tile) {
                const ColTile ct = node_col_tile(tile, hid);
                // All the columns read: the padding's are exact zeros (the root's padding is 0).
                tile_product_rows_at_copy<false, false>(
                    a, e_rows, parent_gates, StridedB{parent_jt + ct.start, stride}, np, ct.read,
                    out + static_cast<std::int64_t>(e0) * stride + ct.start, stride);
              }
            }
          });
          team.team_barrier();
        }
      });
}

// The root's slot (0, in the top window) for every anchor of a chunk: J_root^T = I, every
// gate listed. No window writes slot 0 otherwise, so it is made once, not per pass.
void CovopStats::root_jacobians() const {
  const auto jac = jac_;
  const auto open = open_;
  const auto count = open_count_;
  const int hid = t_.hid, stride = stride_;
  Kokkos::parallel_for(
      "stats::root_jacobians", range(jac.extent(1)), KOKKOS_LAMBDA(const std::int64_t r) {
        for (int k = 0; k < hid; ++k) {
          for (int a = 0; a < stride; ++a) jac(0, r, k * stride + a) = k == a ? 1.0 : 0.0;
          open(0, r, k) = k;
        }
        count(0, r) = hid;
      });
}

// Class sums of conn_mu(i, a, b) = input_mu(i) * J_mu(a, b) for the nodes of one window,
// right after its Jacobians, one team per node (or group of its inputs), a block of anchors
// and a root class at a time. J_mu(., b) is 0 wherever b's
// gate is closed, so for each gate b the team lists the block's anchors (of the class, in
// class order) where b is open, and sums over them only: four inputs x the root's neurons a
// as one tile product (model/tile_product.hpp) whose k runs over the list, reading each
// anchor's input row and its row of J_mu^T. A dense product adds an exact zero for every
// closed gate, so skipping them changes no bit: each (i, a, b) sums the same products in the
// same order. Each block's sums join the totals as exact integers (fixed point) in place:
// the totals keep conn as [node][i][b][a] with a padded (stats/eval_layout.hpp), so a tile
// is whole vectors of them, and each entry belongs to one thread of one team.
void CovopStats::conn_sums(const SampleBatch& samples, const Activations& act, std::int64_t rows, const TreeWindow& win,
                           const View1<std::int64_t>& total) const {
  const TreeShape t = t_;
  const int stride = stride_;
  const auto jac = jac_;
  const auto open = open_;
  const auto count = open_count_;
  const auto row_at = row_at_;
  const auto class0 = class0_count_;
  const auto post = act.post;
  const auto leaves = samples.leaves;
  const std::int64_t post_step = static_cast<std::int64_t>(post.stride_0()),
                     leaves_step = static_cast<std::int64_t>(leaves.stride_0());
  const int hid = t.hid, a_tiles = node_col_tile_count(hid);
  const std::int64_t open_step = static_cast<std::int64_t>(open.stride_1()),
                     count_step = static_cast<std::int64_t>(count.stride_1()),
                     jac_step = static_cast<std::int64_t>(jac.stride_1());
  const EvalLayout l = l_;
  // The window's nodes whose inputs are neurons, then those fed by leaves (its last level,
  // where that is the tree's).
  const bool has_leaf_level = win.first_level + win.levels == t.depth;
  const int inner = win.nodes() - (has_leaf_level ? win.count(win.levels - 1) : 0);
  const ConnGroups g(t, stride);
  const int group_teams = inner * g.groups_inner + (win.nodes() - inner) * g.groups_leaf;
  // A team's threads take (gate, tile of inputs) pairs, hid times its tiles (the budget of a
  // group bounds them), split without a hardware divide.
  const int most_tiles = tile_count(g.inputs_inner > g.inputs_leaf ? g.inputs_inner : g.inputs_leaf, kTileRows);
  if (!FastDiv::exact(most_tiles, static_cast<std::int64_t>(hid) * most_tiles))
    DUALNET_FAIL("conn sums: " + std::to_string(most_tiles) + " input tiles per team are too many");
#ifdef DUALNET_TILE_VECTORS
  // Where a chunk's activation rows outgrow L2, a team's reads of its inputs, rows
  // 10 KB and more apart, miss: each team then requests the next team's inputs ahead.
  const bool prefetch = rows * post_step * static_cast<std::int64_t>(sizeof(real)) > kConnPrefetchBytes;
  const bool prefetch_totals =
      2 * (l.conn1 - l.conn0) * static_cast<std::int64_t>(sizeof(std::int64_t)) > kConnTotalsPrefetchBytes;
#endif
  using ScratchSpace = ExecSpace::scratch_memory_space;
  using ScratchI = Kokkos::View<std::int64_t*, ScratchSpace, Kokkos::MemoryUnmanaged>;
  using ScratchN = Kokkos::View<int*, ScratchSpace, Kokkos::MemoryUnmanaged>;
  Kokkos::parallel_for(
      "stats::conn_sums", teams(group_teams).set_scratch_size(1, Kokkos::PerTeam(conn_scratch_bytes(hid))),
      KOKKOS_LAMBDA(const Team& team) {
        // Team q's node and window slot, its group's first input and their count, and where
        // the group's inputs start in each anchor's row: the ReLU of the node's children's
        // neurons (as forward stored them) or its leaves, adjacent in memory; and the row of
        // conn totals its first input adds into.
        const auto team_of = [&](const int q) {
          ConnTeam c;
          const bool on_inner = q < inner * g.groups_inner;
          const int wn = on_inner ? q / g.groups_inner : inner + (q - inner * g.groups_inner) / g.groups_leaf;
          c.node = win.node_at(wn);
          c.slot = win.first_slot[0] + wn;
          const int group = on_inner ? q % g.groups_inner : (q - inner * g.groups_inner) % g.groups_leaf;
          const int per_group = on_inner ? g.inputs_inner : g.inputs_leaf;
          const int in = t.in_size(c.node);
          c.i0 = group * per_group;
          c.inputs = in - c.i0 < per_group ? in - c.i0 : per_group;
          const bool on_leaves = t.feeds_on_leaves(c.node);
          c.x0 = on_leaves ? &leaves(0, t.first_child(c.node) - t.n_latent + c.i0)
                           : &post(0, t.first_child(c.node) * hid + c.i0);
          c.x_step = on_leaves ? leaves_step : post_step;
          c.conn_row = l.conn_row(t.conn_offset(c.node)) + c.i0;
          return c;
        };
        const ConnTeam me = team_of(team.league_rank());
        const int slot = me.slot, inputs = me.inputs;
        const real* const x0 = me.x0;
        const std::int64_t x_step = me.x_step;
#ifdef DUALNET_TILE_VECTORS
        // The next team's input rows requested while this one works.
        if ((prefetch || prefetch_totals) && team.league_rank() + 1 < group_teams) {
          const ConnTeam next = team_of(team.league_rank() + 1);
          if (prefetch) prefetch_rows(next.x0, next.x_step, rows, next.inputs);
          // ... and its totals, both classes, to be added into: a chunk of one block visits
          // each node's totals once per 64 anchors, from L3 in large trees.
          if (prefetch_totals) {
            const std::int64_t at = l.conn_at(next.conn_row, 0, 0),
                               bytes = static_cast<std::int64_t>(next.inputs) * hid * stride * sizeof(std::int64_t);
            prefetch_span_for_write(&total(l.conn0 + at), bytes);
            prefetch_span_for_write(&total(l.conn1 + at), bytes);
          }
        }
#endif
        // Each View from its layout: the constructor from extents counts them at run time, and
        // its abort path gave the kernel a stack frame on a GPU.
        // per gate, where each listed anchor's inputs start (from x0) and its row of J_mu^T in jac
        const ScratchI listed_x(team.team_scratch(1), ScratchI::array_layout(hid * kEvalBlock));
        const ScratchI listed_jt(team.team_scratch(1), ScratchI::array_layout(hid * kEvalBlock));
        const ScratchN listed(team.team_scratch(1), ScratchN::array_layout(hid));
        const int i_tiles = tile_count(inputs, kTileRows);
        const FastDiv by_tiles(i_tiles);  // idx -> (gate, input tile)
        const std::int64_t conn_row = me.conn_row;
        for (std::int64_t r0 = 0; r0 < rows; r0 += kEvalBlock) {
          const int n = static_cast<int>(rows - r0 < kEvalBlock ? rows - r0 : kEvalBlock);
          const int n0 = class0(r0 / kEvalBlock);
          for (int c = 0; c < 2; ++c) {
            Kokkos::single(Kokkos::PerTeam(team), [&]() {
              // The class's anchors in the block: rows row_at(r0 + from) ... row_at(r0 + to - 1).
              const int from = c == 0 ? 0 : n0, to = c == 0 ? n0 : n;
              list_block(row_at.data() + r0 + from, to - from, &open(slot, 0, 0), open_step, &count(slot, 0),
                         count_step, x_step, &jac(slot, 0, 0) - jac.data(), jac_step, stride, hid, listed.data(),
                         listed_x.data(), listed_jt.data());
            });
            team.team_barrier();
            Kokkos::parallel_for(Kokkos::TeamThreadRange(team, hid * i_tiles), [&](const int idx) {
              const int b = by_tiles.quot(idx), it = idx - b * i_tiles, K = listed(b);
              if (K == 0) return;
              const int i_first = kTileRows * it, i_rows = inputs - i_first < kTileRows ? inputs - i_first : kTileRows;
              const OffsetK anchors{&listed_x(b * kEvalBlock)};  // A(m, k) = x0[row_k * x_step + i_first + m]
              bool overflow = false;
              for (int tile = 0; tile < a_tiles; ++tile) {
                const ColTile ct = node_col_tile(tile, hid);
                const ListedB jt{jac.data() + ct.start, &listed_jt(b * kEvalBlock)};
                tile_product_add_fixed_rows(
                    x0 + i_first, 1, i_rows, anchors, jt, K, ct.skip, ct.read,
                    &total((c == 0 ? l.conn0 : l.conn1) + l.conn_at(conn_row + i_first, ct.start, b)),
                    static_cast<std::int64_t>(hid) * stride, &overflow, kStatFixed);
              }
              count_overflow(total, overflow);
            });
            team.team_barrier();
          }
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
