// train/work_split.hpp: a split always hands out every unit once, within each rank's bounds;
// fixed shares and measured speeds give the proportions nearest to them; rebalancing moves
// work to the faster rank only where that shortens the slowest rank's time, and not on noise;
// the `balance` key's values are parsed or refused. (That every split gives the same bits is
// tests/cli/test_rank_invariance.sh's: runs with uneven fixed splits against 1 rank.)
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "train/work_split.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

// Every unit once: first() is the running sum of the counts, and they add up to units().
void expect_partition(const WorkSplit& s, std::int64_t least, std::int64_t most) {
  std::int64_t next = 0;
  for (std::size_t r = 0; r < s.counts().size(); ++r) {
    EXPECT_EQ(s.first(static_cast<int>(r)), next) << "rank " << r;
    EXPECT_GE(s.count(static_cast<int>(r)), least) << "rank " << r;
    EXPECT_LE(s.count(static_cast<int>(r)), most) << "rank " << r;
    next += s.count(static_cast<int>(r));
  }
  EXPECT_EQ(next, s.units());
}

TEST(WorkSplit, EvenSplitsDifferByAtMostOneUnit) {
  for (int ranks = 1; ranks <= 7; ++ranks)
    for (std::int64_t units = ranks; units <= 40; ++units) {
      const WorkSplit s(units, ranks, 0, units);
      expect_partition(s, 0, units);
      for (std::int64_t c : s.counts()) {
        EXPECT_GE(c, units / ranks);
        EXPECT_LE(c, units / ranks + 1);
      }
    }
}

TEST(WorkSplit, FixedSharesGiveTheNearestProportionsWithinTheBounds) {
  const WorkSplit three_one(32, 2, 1, 24, {3.0, 1.0});
  EXPECT_EQ(three_one.counts(), (std::vector<std::int64_t>{24, 8}));
  // Ideal 1.6, 3.2, 4.8, 6.4 of 16: the last is held to 6, the unit left goes to the rank
  // furthest below its ideal.
  const WorkSplit clamped(16, 4, 1, 6, {1.0, 2.0, 3.0, 4.0});
  expect_partition(clamped, 1, 6);
  EXPECT_EQ(clamped.counts(), (std::vector<std::int64_t>{2, 3, 5, 6}));
  // Shares far beyond the bounds: every rank keeps at least `least`.
  const WorkSplit extreme(10, 3, 1, 8, {1e9, 1e-9, 1e-9});
  EXPECT_EQ(extreme.counts(), (std::vector<std::int64_t>{8, 1, 1}));
}

TEST(WorkSplit, RebalancingGivesTheSlowerRankFewerUnits) {
  WorkSplit s(32, 2, 1, 32);
  ASSERT_EQ(s.counts(), (std::vector<std::int64_t>{16, 16}));
  // Rank 1 takes twice as long per unit: 2 : 1 is 21.3 : 10.7 units.
  EXPECT_TRUE(s.rebalance({16 * 1.0, 16 * 2.0}));
  EXPECT_EQ(s.counts(), (std::vector<std::int64_t>{21, 11}));
  // The same speeds again: nothing left to gain.
  EXPECT_FALSE(s.rebalance({21 * 1.0, 11 * 2.0}));
  EXPECT_EQ(s.counts(), (std::vector<std::int64_t>{21, 11}));
}

TEST(WorkSplit, NoiseBelowTheGainThresholdLeavesTheSplit) {
  WorkSplit s(1000, 2, 0, 1000);
  // 0.4 % apart: an even split's slowest rank would gain 0.2 %, under kMinGain.
  EXPECT_FALSE(s.rebalance({500 * 1.000, 500 * 1.004}));
  EXPECT_EQ(s.counts(), (std::vector<std::int64_t>{500, 500}));
  // 10 % apart: it moves.
  EXPECT_TRUE(s.rebalance({500 * 1.0, 500 * 1.1}));
  EXPECT_GT(s.count(0), 500);
}

TEST(WorkSplit, EstimatesAreSmoothedOverPasses) {
  WorkSplit s(1000, 2, 0, 1000);
  EXPECT_TRUE(s.rebalance({500 * 1.0, 500 * 3.0}));  // 3 : 1 -> 750 : 250
  EXPECT_EQ(s.counts(), (std::vector<std::int64_t>{750, 250}));
  // One pass with the opposite speeds: the estimates meet at 2 : 2, half way, not 1 : 3.
  EXPECT_TRUE(s.rebalance({750 * 3.0, 250 * 1.0}));
  EXPECT_EQ(s.counts(), (std::vector<std::int64_t>{500, 500}));
}

TEST(WorkSplit, ARankWithoutUnitsIsTakenAtTheMeasuredMean) {
  WorkSplit s(2, 3, 0, 2);
  ASSERT_EQ(s.counts(), (std::vector<std::int64_t>{1, 1, 0}));
  // Ranks 0 and 1 as fast as each other; rank 2, never measured, is assumed as fast: no
  // split of 2 units over 3 ranks is faster than one unit each on two of them.
  EXPECT_FALSE(s.rebalance({1.0, 1.0, 0.0}));
  // Rank 1 now slower (4 per unit, smoothed): rank 2, taken at the first pass's mean (1), takes its unit.
  EXPECT_TRUE(s.rebalance({1.0, 7.0, 0.0}));
  EXPECT_EQ(s.counts(), (std::vector<std::int64_t>{1, 0, 1}));
}

TEST(WorkSplit, HandedOverSplitsAreChecked) {
  WorkSplit s(32, 2, 1, 24);
  s.set_counts({20, 12});
  EXPECT_EQ(s.first(1), 20);
  EXPECT_THROW(s.set_counts({20, 11}), RuntimeError);      // 31 units
  EXPECT_THROW(s.set_counts({25, 7}), RuntimeError);       // above most
  EXPECT_THROW(s.set_counts({32, 0}), RuntimeError);       // below least
  EXPECT_THROW(s.set_counts({10, 11, 11}), RuntimeError);  // three ranks
  EXPECT_THROW(WorkSplit(5, 2, 3, 5), RuntimeError);       // 2 x 3 > 5
  EXPECT_THROW(WorkSplit(5, 2, 0, 2), RuntimeError);       // 2 x 2 < 5
}

TEST(WorkSplit, AStepsBuffersHoldHalfAnEvenShareMore) {
  EXPECT_EQ(most_step_units(32, 2, true), 24);
  EXPECT_EQ(most_step_units(32, 2, false), 16);
  EXPECT_EQ(most_step_units(32, 1, true), 32);
  EXPECT_EQ(most_step_units(2, 2, true), 2);  // at least one more, at most every unit
  EXPECT_EQ(most_step_units(9, 3, true), 4);
}

TEST(WorkSplit, BalanceValuesAreParsedOrRefused) {
  EXPECT_TRUE(balance_shares("auto", 3).empty());
  EXPECT_TRUE(balance_shares("even", 1).empty());
  EXPECT_EQ(balance_shares("3,1", 2), (std::vector<double>{3.0, 1.0}));
  EXPECT_EQ(balance_shares("0.5,2e0,1", 3), (std::vector<double>{0.5, 2.0, 1.0}));
  for (const std::string bad : {"", "3", "3,1,1", "1,0", "1,-1", "a,b", "1,,2", "1,2,", ",1", "1e10,1", "nan,1",
                                "inf,1", "1 ,2", "Auto", "1;2"}) {
    try {
      balance_shares(bad, 2);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("balance must be auto, even, or 2 comma-separated positive shares"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace dualnet
