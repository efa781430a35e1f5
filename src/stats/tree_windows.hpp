#pragma once
// The windows of the tree an evaluation pass makes its Jacobians in (stats/covop_stats.cpp).
// The conn sums read each node's Jacobians of a whole chunk back after one kernel wrote them
// all; for a deep tree one block's Jacobians outgrow the cache (depth 10, hid 10: 62 MB per
// 64 anchors) and were read back from memory, so the time per node grew with depth. A tree
// whose block of Jacobians does not fit kEvalChunkBytes is cut at a level `split` into the
// top window (levels 0 .. split-1) and one lower window per node of level `split` (its
// subtree): the top's Jacobians are made and summed first and kept, then each lower window's
// in turn, in the same slots. The Jacobians then take (top + one subtree) nodes' room, not
// the whole tree's. Every sum is the same: the windows change where Jacobians are kept and
// when a node is summed, not what is added nor in which order.
// Trivially copyable: kernels capture a TreeWindow by value.
#include <cstdint>

#include "hltm/tree.hpp"

namespace dualnet {

// One window: a node's subtree cut to `levels` levels, its nodes kept in slots first_slot[0]
// on, level by level.
struct TreeWindow {
  int first_level = 0, levels = 0;
  int first_node[kMaxDepth] = {};      // [d]: the window's first node at level first_level + d
  int first_slot[kMaxDepth + 1] = {};  // [d]: its slot; [levels]: one past the window's last slot
  int root_parent_slot = -1;           // slot of the root's parent (in the top window), -1 for the top

  KOKKOS_INLINE_FUNCTION int nodes() const { return first_slot[levels] - first_slot[0]; }
  KOKKOS_INLINE_FUNCTION int count(int d) const { return first_slot[d + 1] - first_slot[d]; }
  // The level (relative) of the window's n-th node (n < nodes(); its slot is first_slot[0] + n).
  KOKKOS_INLINE_FUNCTION int depth_of(int n) const {
    int d = 0;
    while (first_slot[d + 1] - first_slot[0] <= n) ++d;
    return d;
  }
  // The window's n-th node (level by level, in slot order).
  KOKKOS_INLINE_FUNCTION int node_at(int n) const {
    const int d = depth_of(n);
    return first_node[d] + n - (first_slot[d] - first_slot[0]);
  }
  // The parent of node i (< count(d)) of relative level d > 0, or of a lower window's root
  // (d 0: in the top window, whose slots are its nodes' numbers), and its slot.
  struct Parent {
    int node, slot;
  };
  KOKKOS_INLINE_FUNCTION Parent parent_of(int d, int i, const TreeShape& t) const {
    if (d == 0) return Parent{root_parent_slot, root_parent_slot};
    const int parent = t.parent(first_node[d] + i);
    return Parent{parent, first_slot[d - 1] + parent - first_node[d - 1]};
  }
};

struct TreeWindows {
  TreeShape t;
  int split = 0;  // the first level of the lower windows; depth: one window, the whole tree

  TreeWindows() = default;
  // split 0: the level that keeps the fewest slots where one block of the whole tree's
  // Jacobians (block_bytes_per_node per node) exceeds budget, else no cut; a test may force
  // a level 1 .. depth.
  TreeWindows(const TreeShape& tree, double block_bytes_per_node, double budget, int forced_split = 0) : t(tree) {
    split = t.depth;
    if (forced_split > 0) {
      split = forced_split < t.depth ? forced_split : t.depth;
      return;
    }
    if (block_bytes_per_node * t.n_latent <= budget) return;
    for (int s = 1; s < t.depth; ++s)
      if (slots_at(s) < slots_at(split)) split = s;
  }

  int windows() const { return split == t.depth ? 1 : 1 + t.nodes_at(split); }
  int slots() const { return slots_at(split); }

  // Window w: 0 the top, w >= 1 the subtree of node level_start[split] + w - 1.
  TreeWindow window(int w) const {
    TreeWindow win;
    const bool top = w == 0;
    win.first_level = top ? 0 : split;
    win.levels = top ? split : t.depth - split;
    const int root = top ? 0 : t.level_start[split] + w - 1;
    win.root_parent_slot = top ? -1 : t.parent(root);
    int first = root, width = 1, slot = top ? 0 : t.level_start[split];
    for (int d = 0; d < win.levels; ++d) {
      win.first_node[d] = first;
      win.first_slot[d] = slot;
      slot += width;
      first = t.first_child(first);
      width *= t.k;
    }
    win.first_slot[win.levels] = slot;
    return win;
  }

 private:
  // Slots kept with a cut at level s: the top's nodes and one subtree of depth - s levels.
  int slots_at(int s) const {
    if (s >= t.depth) return t.n_latent;
    int sub = 0, width = 1;
    for (int d = s; d < t.depth; ++d, width *= t.k) sub += width;
    return t.level_start[s] + sub;
  }
};

}  // namespace dualnet
