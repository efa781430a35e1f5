// The NCCL reducer on device Views: known patterns summed over every rank, for int64 (the
// exact fixed-point gradient sums), double (evaluation statistics) and float, at sizes 0,
// 1, odd and large; make_reducer's choices. One GPU per rank.
//   test_nccl_reducer                 one rank (MPI singleton: no mpirun needed)
//   mpirun -n P test_nccl_reducer     P ranks, P GPUs per host
// Exit 77 (ctest: skipped) on every rank when any rank has no GPU of its own.
#include <gtest/gtest.h>
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "comm/device_select.hpp"
#include "comm/nccl_reducer.hpp"
#include "comm/reducer.hpp"
#include "comm/world.hpp"
#include "gpu_available.hpp"

namespace {

dualnet::World g_world;

// Sizes: empty, one value, small odd, odd and a few MiB, and 2^24 + 3 values (128 MiB of
// int64): more than NCCL's internal chunking, and not a multiple of any of its sizes.
const std::vector<std::int64_t> kSizes = {0, 1, 7, 999983, (std::int64_t(1) << 24) + 3};

// Pattern of rank r at index i, and its sum over ranks 0..P-1, computed on the host.
// int64 values reach 2^55 and are negative for half of the indices, so a transport that
// went through double (53-bit mantissa) or int32 would give wrong sums.
KOKKOS_INLINE_FUNCTION std::int64_t base_i64(std::int64_t i) {
  const std::uint64_t h = static_cast<std::uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
  return static_cast<std::int64_t>(h) >> 8;  // arithmetic shift: |x| < 2^55
}
KOKKOS_INLINE_FUNCTION std::int64_t pattern_i64(std::int64_t i, int r) { return base_i64(i) * (r + 1) + r; }
// Floating patterns are small multiples of powers of two: every partial sum is exact, so
// the result is exact whatever order NCCL adds in.
KOKKOS_INLINE_FUNCTION double pattern_f64(std::int64_t i, int r) {
  return 0.25 * static_cast<double>(i % 4099 - 2049) * (r + 1);
}
KOKKOS_INLINE_FUNCTION float pattern_f32(std::int64_t i, int r) {
  return 0.5f * static_cast<float>(i % 1021 - 510) * (r + 1);
}

KOKKOS_INLINE_FUNCTION void set_pattern(std::int64_t& x, std::int64_t i, int r) { x = pattern_i64(i, r); }
KOKKOS_INLINE_FUNCTION void set_pattern(double& x, std::int64_t i, int r) { x = pattern_f64(i, r); }
KOKKOS_INLINE_FUNCTION void set_pattern(float& x, std::int64_t i, int r) { x = pattern_f32(i, r); }

template <class T>
std::vector<T> expected(std::int64_t n, int ranks, T (*f)(std::int64_t, int)) {
  std::vector<T> e(static_cast<size_t>(n), T(0));
  for (std::int64_t i = 0; i < n; ++i)
    for (int r = 0; r < ranks; ++r) e[static_cast<size_t>(i)] += f(i, r);
  return e;
}

// Rank r's pattern, filled on the device by a named kernel that captures by value.
template <class T>
dualnet::View1<T> filled(std::int64_t n) {
  dualnet::View1<T> buf(Kokkos::view_alloc(Kokkos::WithoutInitializing, "nccl_test_buffer"), n);
  const int rank = g_world.rank;
  Kokkos::parallel_for(
      "nccl_test_fill", dualnet::range(n), KOKKOS_LAMBDA(const std::int64_t i) { set_pattern(buf(i), i, rank); });
  return buf;
}

// Copies the summed buffer back and compares every value with the host's sum.
template <class T>
void expect_sum(const dualnet::View1<T>& buf, T (*f)(std::int64_t, int), const char* type) {
  const std::int64_t n = static_cast<std::int64_t>(buf.extent(0));
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buf);
  const auto want = expected<T>(n, g_world.size, f);
  std::int64_t wrong = 0, first = -1;
  for (std::int64_t i = 0; i < n; ++i)
    if (host(i) != want[static_cast<size_t>(i)]) {
      if (first < 0) first = i;
      ++wrong;
    }
  EXPECT_EQ(wrong, 0) << type << " n=" << n << " on " << g_world.size << " rank(s): first wrong index " << first
                      << (first >= 0 ? ": got " + std::to_string(host(first)) + ", want " +
                                           std::to_string(want[static_cast<size_t>(first)])
                                     : std::string());
}

// Fill, sum with `red`, check.
void check_i64(dualnet::Reducer& red, std::int64_t n) {
  auto b = filled<std::int64_t>(n);
  red.sum(b);
  expect_sum<std::int64_t>(b, pattern_i64, "int64");
}
void check_f64(dualnet::Reducer& red, std::int64_t n) {
  auto b = filled<double>(n);
  red.sum(b);
  expect_sum<double>(b, pattern_f64, "float64");
}
void check_f32(dualnet::NcclReducer& red, std::int64_t n) {
  auto b = filled<float>(n);
  red.sum(b);
  expect_sum<float>(b, pattern_f32, "float32");
}

TEST(NcclReducer, Int64KnownPatterns) {
  dualnet::NcclReducer red(g_world);
  for (const auto n : kSizes) check_i64(red, n);
}

TEST(NcclReducer, Float64KnownPatterns) {
  dualnet::NcclReducer red(g_world);
  for (const auto n : kSizes) check_f64(red, n);
}

TEST(NcclReducer, Float32KnownPatterns) {
  dualnet::NcclReducer red(g_world);
  for (const auto n : kSizes) check_f32(red, n);
}

TEST(NcclReducer, RepeatedSumsOnOneCommunicator) {
  // The trainer sums several buffers per step on one communicator, for many steps.
  dualnet::NcclReducer red(g_world);
  for (int rep = 0; rep < 20; ++rep) {
    check_i64(red, 1001);
    check_f64(red, 33);
  }
}

TEST(NcclReducer, MakeReducerChoosesNcclAcrossRanks) {
  // auto = nccl when Kokkos's memory space is CUDA memory, as in this build, and there is
  // more than one rank (one rank has nothing to sum: no NCCL).
  for (const std::string choice : {"nccl", "auto"}) {
    auto red = dualnet::make_reducer(g_world, choice);
    const std::string want = choice == "auto" && g_world.size == 1 ? "serial" : "nccl";
    EXPECT_EQ(red->name().rfind(want, 0), 0u) << choice << " gave " << red->name();
    check_i64(*red, 999983);
    check_f64(*red, 7);
  }
  // reducer=mpi still works in a CUDA build (through host memory) and agrees.
  auto mpi = dualnet::make_reducer(g_world, "mpi");
  check_i64(*mpi, 999983);
  check_f64(*mpi, 7);
}

TEST(NcclReducer, OneGpuPerRank) {
  dualnet::NcclReducer red(g_world);
  EXPECT_EQ(red.device(), g_world.local_rank);
  EXPECT_EQ(red.device(), Kokkos::Cuda().cuda_device());
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  g_world = dualnet::World::from_mpi();
  // Skip on every rank when any rank lacks a GPU of its own (local ranks <= GPUs).
  int local_size = 1;
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  const std::string why = dualnet::gpu_test::why_no_gpu(local_size);
  int ok = why.empty() ? 1 : 0, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    if (!why.empty()) std::printf("SKIPPED (rank %d): %s\n", g_world.rank, why.c_str());
    MPI_Finalize();
    return dualnet::gpu_test::kSkip;
  }
  int rc = 0;
  {
    // Kokkos gets the --kokkos-* options (checked as dualnet checks them), gtest the rest.
    std::vector<std::string> kokkos_args;
    for (int i = 1; i < argc; ++i)
      if (dualnet::is_kokkos_argument(argv[i])) kokkos_args.emplace_back(argv[i]);
    dualnet::KokkosArgs args(argv[0], dualnet::parse_kokkos_options(kokkos_args, std::getenv), g_world);
    Kokkos::initialize(args.argc(), args.argv());
    ::testing::InitGoogleTest(&argc, argv);
    if (!g_world.root())
      delete ::testing::UnitTest::GetInstance()->listeners().Release(
          ::testing::UnitTest::GetInstance()->listeners().default_result_printer());
    rc = RUN_ALL_TESTS();
    Kokkos::finalize();
  }
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
