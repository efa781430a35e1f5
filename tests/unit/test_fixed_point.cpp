// util/fixed_point.hpp on its own: the rounding is exact where it must be (round trips of
// values on the grid, round to nearest with ties to even), sums of fixed-point values are
// exactly integer arithmetic (so independent of order and split), the range bound is where the
// header says it is, and a training pass whose gradients leave the range ends with the
// trainer's error message (the overflow error path).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "comm/world.hpp"
#include "config/config.hpp"
#include "io/run_dir.hpp"
#include "model/tile_product.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"
#include "util/fixed_point.hpp"

namespace dualnet {
namespace {

std::int64_t fixed(double x, bool* overflow, FixedPoint f) { return to_fixed(x, overflow, f); }

TEST(FixedPoint, ScalesAndLimitsAreTheDocumentedPowersOfTwo) {
  EXPECT_EQ(kGradFixed.scale, std::ldexp(1.0, 40));
  EXPECT_EQ(kGradFixed.limit, std::ldexp(1.0, 23));
  EXPECT_EQ(kStatFixed.scale, std::ldexp(1.0, 32));
  EXPECT_EQ(kStatFixed.limit, std::ldexp(1.0, 31));
  // The largest value in range times the scale still fits an int64 with room for sums.
  for (const FixedPoint f : {kGradFixed, kStatFixed}) EXPECT_LE(f.limit * f.scale, std::ldexp(1.0, 63));
}

TEST(FixedPoint, ValuesOnTheGridRoundTripExactly) {
  for (const FixedPoint f : {kGradFixed, kStatFixed}) {
    std::mt19937_64 rng(12345);
    // Every integer up to 2^53 is a double; with the scale a power of two, n / scale is then
    // exactly a grid value. Larger grid values: the largest below the limit.
    const std::int64_t max_int = std::int64_t(1) << 53;
    std::uniform_int_distribution<std::int64_t> any(-max_int, max_int);
    std::vector<std::int64_t> ns = {max_int, -max_int, std::numeric_limits<std::int64_t>::max() - 2047};  // 2^63 - 2^11
    for (int i = 0; i < 100000; ++i) ns.push_back(any(rng));
    for (const std::int64_t n : ns) {
      const double x = static_cast<double>(n) / f.scale;  // a multiple of 1/scale: on the grid
      ASSERT_EQ(static_cast<std::int64_t>(x * f.scale), n);
      bool overflow = false;
      const std::int64_t v = fixed(x, &overflow, f);
      ASSERT_FALSE(overflow) << x;
      ASSERT_EQ(v, n) << x;
      ASSERT_EQ(from_fixed(v, f), x);
    }
    bool overflow = false;
    EXPECT_EQ(fixed(0.0, &overflow, f), 0);
    EXPECT_EQ(fixed(-0.0, &overflow, f), 0);
    EXPECT_EQ(fixed(1.0 / f.scale, &overflow, f), 1);
    EXPECT_EQ(fixed(-1.0 / f.scale, &overflow, f), -1);
    EXPECT_FALSE(overflow);
  }
}

TEST(FixedPoint, RoundsToNearestWithTiesToEven) {
  const FixedPoint f = kGradFixed;
  const double u = 1.0 / f.scale;  // one unit
  bool overflow = false;
  EXPECT_EQ(fixed(0.4 * u, &overflow, f), 0);
  EXPECT_EQ(fixed(0.6 * u, &overflow, f), 1);
  EXPECT_EQ(fixed(0.5 * u, &overflow, f), 0);  // tie: to even
  EXPECT_EQ(fixed(1.5 * u, &overflow, f), 2);
  EXPECT_EQ(fixed(2.5 * u, &overflow, f), 2);
  EXPECT_EQ(fixed(-0.5 * u, &overflow, f), 0);
  EXPECT_EQ(fixed(-1.5 * u, &overflow, f), -2);
  EXPECT_EQ(fixed(-2.5 * u, &overflow, f), -2);
  EXPECT_FALSE(overflow);
  // Off the grid: the error is at most half a unit.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> any(-1000.0, 1000.0);
  for (int i = 0; i < 10000; ++i) {
    const double x = any(rng);
    const double back = from_fixed(fixed(x, &overflow, f), f);
    ASSERT_LE(std::fabs(back - x), 0.5 * u) << x;
  }
  EXPECT_FALSE(overflow);
}

// The sum of the rounded values is an integer sum: exact, so any order and any split into
// partial sums (ranks, threads, blocks) gives the same bits; and it matches exact integer
// arithmetic on the rounded values (long double/int128 reference).
TEST(FixedPoint, SumsAreExactIntegerArithmeticInAnyOrderAndSplit) {
  for (const FixedPoint f : {kGradFixed, kStatFixed}) {
    std::mt19937_64 rng(99);
    std::uniform_real_distribution<double> any(-0.999 * f.limit / 4096, 0.999 * f.limit / 4096);
    std::vector<double> x(4096);
    for (double& v : x) v = any(rng);
    bool overflow = false;
    std::vector<std::int64_t> q(x.size());
    for (size_t i = 0; i < x.size(); ++i) q[i] = fixed(x[i], &overflow, f);
    ASSERT_FALSE(overflow);
    __int128 exact = 0;
    for (const std::int64_t v : q) exact += v;
    // Forward, backward, and in blocks of every size that a split could produce.
    std::int64_t forward = 0, backward = 0;
    for (size_t i = 0; i < q.size(); ++i) forward += q[i];
    for (size_t i = q.size(); i-- > 0;) backward += q[i];
    EXPECT_EQ(static_cast<__int128>(forward), exact);
    EXPECT_EQ(backward, forward);
    for (const size_t block : {1u, 3u, 64u, 1000u}) {
      std::int64_t total = 0;
      for (size_t b = 0; b < q.size(); b += block) {
        std::int64_t part = 0;
        for (size_t i = b; i < std::min(q.size(), b + block); ++i) part += q[i];
        total += part;
      }
      EXPECT_EQ(total, forward) << "block " << block;
    }
    // The same values summed as doubles in two orders need not agree; the fixed-point sum
    // is within n/2 units of the exact real sum.
    long double real_sum = 0.0L;
    for (const double v : x) real_sum += v;
    EXPECT_LE(std::fabs(static_cast<double>(real_sum - static_cast<long double>(from_fixed(forward, f)))),
              0.5 * static_cast<double>(x.size()) / f.scale);
  }
}

TEST(FixedPoint, OverflowIsFlaggedExactlyAtTheLimitAndValueIsZero) {
  for (const FixedPoint f : {kGradFixed, kStatFixed}) {
    const double below = std::nextafter(f.limit, 0.0);
    bool overflow = false;
    EXPECT_EQ(fixed(below, &overflow, f), static_cast<std::int64_t>(below * f.scale));
    EXPECT_EQ(fixed(-below, &overflow, f), -static_cast<std::int64_t>(below * f.scale));
    EXPECT_FALSE(overflow) << "just below the limit " << f.limit;
    for (const double bad : {f.limit, -f.limit, 2 * f.limit, std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
      bool o = false;
      EXPECT_EQ(fixed(bad, &o, f), 0) << bad;
      EXPECT_TRUE(o) << bad << " is not flagged (limit " << f.limit << ")";
    }
    // The flag is sticky: a later value in range does not clear it.
    bool o = false;
    fixed(f.limit, &o, f);
    fixed(1.0, &o, f);
    EXPECT_TRUE(o);
  }
}

// A tile product joining fixed-point sums (tile_product_add_fixed_rows, the kernels' one path
// into exact sums) gives to_fixed's integers whichever way a tile goes: the host's vector path
// (a tile whose magnitudes sum below 2^51 / scale), the exact fallback for a tile whose values
// each fit but whose magnitudes sum past it, a value past the vector range but within the
// limit, and a NaN or a value past the limit (flagged, the others still added). Every product
// here is exact, so the expected integers are to_fixed of the products.
TEST(FixedPoint, TileSumsAreToFixedOfEveryValueOnEveryPath) {
  constexpr int K = 3, kCols = 12;
  for (const FixedPoint f : {kGradFixed, kStatFixed}) {
    const double vector_bound = std::ldexp(1.0, 51) / f.scale;
    struct Case {
      const char* what;
      double big;   // B(0, 2)
      double each;  // B(0, e) = each * (1 + e % 3) for the other e
      bool overflow;
    };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const Case& c : {Case{"small values", 0.375, -0.25, false},
                          Case{"each fits, sum past the bound", 0.75 * vector_bound, -0.25 * vector_bound, false},
                          Case{"past the vector range, below the limit", 4 * vector_bound, 1.0, false},
                          Case{"NaN", nan, 1.0, true}, Case{"past the limit", 2 * f.limit, 1.0, true}}) {
      for (const int read : {4, 8, 12}) {
        // A(m, k) = a[m * 5 + 2 k]: rows 0..3 scale row 0 of B by 1, -1, 0.5, 0.25 (k = 0
        // only); B(1, e) and B(2, e) meet zeros in A.
        std::vector<double> a(4 * 5, 0.0), b(K * kCols, 3.0);
        const double row_scale[4] = {1.0, -1.0, 0.5, 0.25};
        for (int m = 0; m < 4; ++m) a[m * 5] = row_scale[m];
        for (int e = 0; e < kCols; ++e) b[e] = e == 2 ? c.big : c.each * (1 + e % 3);
        const std::int64_t step = 16;
        std::vector<std::int64_t> acc(4 * step, 7), want(4 * step, 7);
        bool overflow = false, want_overflow = false;
        tile_product_add_fixed_rows(a.data(), 5, 4, StridedK{2}, StridedB{b.data(), kCols}, K, 0, read, acc.data(),
                                    step, &overflow, f);
        for (int m = 0; m < 4; ++m)
          for (int e = 0; e < read; ++e) want[m * step + e] += to_fixed(row_scale[m] * b[e], &want_overflow, f);
        EXPECT_EQ(overflow, c.overflow) << c.what << ", " << read << " columns";
        EXPECT_EQ(overflow, want_overflow);
        EXPECT_EQ(acc, want) << c.what << ", " << read << " columns";
      }
    }
  }
}

// The overflow error path: a training pass whose gradient sums leave |x| < 2^23 (an lr that
// makes an unnormalised network diverge) ends with the trainer's one-line RuntimeError.
TEST(FixedPoint, DivergingTrainingEndsWithTheOverflowError) {
  World w = World::from_mpi();
  if (w.size != 1) GTEST_SKIP() << "one rank";
  const auto dir = std::filesystem::temp_directory_path() / ("dualnet-fixed-overflow-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  Config cfg;
  cfg.depth = 3;
  cfg.hid = 4;
  cfg.loss = "simp";
  cfg.normalize_output = false;
  cfg.lr = 1e6;
  cfg.batch = 32;
  cfg.samples_per_pass = 256;
  cfg.epochs = 1;
  cfg.seed = 3;
  cfg.out = dir.string();
  ASSERT_NO_THROW(validate(cfg, w.size));
  std::string message;
  try {
    const RunLock lock = prepare_run_dir(cfg, w);  // as `dualnet train` does
    Trainer t(cfg, w);
    t.run();
  } catch (const RuntimeError& e) {
    message = e.what();
  }
  std::filesystem::remove_all(dir);
  EXPECT_NE(message.find("epoch 0: a gradient or batch sum left the exact fixed-point range (|x| >= 2^23)"),
            std::string::npos)
      << "message: '" << message << "'";
  EXPECT_NE(message.find("lower lr"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
}

}  // namespace
}  // namespace dualnet
