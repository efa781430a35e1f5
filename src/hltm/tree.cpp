#include "hltm/tree.hpp"

#include "util/error.hpp"

namespace dualnet {

TreeShape::TreeShape(int depth_, int k_, int hid_) : depth(depth_), k(k_), hid(hid_) {
  if (depth < 1 || depth > kMaxDepth || k < 2 || hid < 1)
    throw UsageError("tree shape out of range: depth " + std::to_string(depth) + ", num_children " + std::to_string(k) +
                     ", hid " + std::to_string(hid));
  // Far more nodes than any run can hold (the config allows 2^24 leaves) stop here, before a
  // level's width overflows.
  constexpr std::int64_t kMostNodes = std::int64_t(1) << 27;
  std::int64_t width = 1, start = 0;
  for (int l = 0; l <= depth; ++l) {
    level_start[l] = static_cast<int>(start);
    start += width;
    if (start > kMostNodes)
      throw UsageError("tree shape too large: depth " + std::to_string(depth) + ", num_children " + std::to_string(k) +
                       " has more than 2^27 nodes");
    if (l < depth) width *= k;
  }
  level_start[depth + 1] = static_cast<int>(start);
  n_latent = level_start[depth];
  n_leaf = static_cast<int>(width);
  // parent() divides by k with it: exact for every node while nodes times k stays within 2^32
  // (always for the config's k <= 16; checked for a shape made otherwise).
  if (!FastDiv::exact(k, start))
    throw UsageError("tree shape too large: num_children " + std::to_string(k) + " times " + std::to_string(start) +
                     " nodes exceeds 2^32");
  by_k = FastDiv(k);
}

}  // namespace dualnet
