#pragma once
// How the work units of a step or a pass are shared among ranks: a training step's
// micro-batches, an evaluation pass's blocks of anchors. Every sum dualnet makes is exact and
// kept per unit (a micro-batch's gradient, a block's statistics, in fixed point), so any split
// gives the same bits; the split decides only who waits for whom: the ranks meet at every
// sum, and a rank on a slower or shared core makes the others wait there. With balancing,
// the split follows each rank's measured time per unit after every pass: a slower rank gets
// fewer units, and the ranks reach the sum together.
#include <cstdint>
#include <string>
#include <vector>

namespace dualnet {

class WorkSplit {
 public:
  WorkSplit() = default;
  // `units` over `ranks`, each rank holding between `least` and `most` units (least * ranks <=
  // units <= most * ranks). shares: one positive weight per rank for a fixed split in
  // proportion to them; empty: even.
  WorkSplit(std::int64_t units, int ranks, std::int64_t least, std::int64_t most,
            const std::vector<double>& shares = {});

  std::int64_t units() const { return units_; }
  std::int64_t count(int rank) const { return counts_[static_cast<std::size_t>(rank)]; }
  std::int64_t first(int rank) const;  // the rank's first unit: its units are first .. first + count - 1
  const std::vector<std::int64_t>& counts() const { return counts_; }
  void set_counts(const std::vector<std::int64_t>& counts);  // a split made elsewhere (checked)

  // Every rank's seconds for its count() units in the last pass -> the split for the next pass: in inverse proportion
  // to each rank's time per unit, smoothed over passes, taken only where it shortens the slowest rank's predicted time
  // by more than kMinGain (a split that flips back and forth on noise helps no one). Returns whether the split changed.
  bool rebalance(const std::vector<double>& seconds);
  static constexpr double kMinGain = 0.01;

 private:
  // The split nearest to weights' proportions within [least, most]: each rank's floor, then
  // the units left one at a time to the ranks furthest below their ideal (lowest rank first
  // on a tie), so the same weights always give the same split.
  std::vector<std::int64_t> split_of(const std::vector<double>& weights) const;
  double slowest(const std::vector<std::int64_t>& counts) const;  // predicted seconds of the slowest rank

  std::int64_t units_ = 0, least_ = 0, most_ = 0;
  std::vector<std::int64_t> counts_;
  std::vector<double> cost_;  // smoothed seconds per unit, per rank (0: not measured yet)
};

// The most micro-batches of a step one rank may be given, which its buffers hold: its even
// share of `units`, and half as much again (at least one more) where the split can move.
std::int64_t most_step_units(std::int64_t units, int ranks, bool movable);

// Whether the `balance` key's value names fixed shares (anything but auto and even), which
// may give a rank more than its even share of a step.
bool balance_is_fixed(const std::string& value);

// The `balance` key's value for `ranks` ranks: "auto" or "even" give no shares; a list of
// comma-separated positive numbers, one per rank, gives them. Throws UsageError otherwise.
std::vector<double> balance_shares(const std::string& value, int ranks);

}  // namespace dualnet
