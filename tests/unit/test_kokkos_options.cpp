// Kokkos options: dualnet checks every --kokkos-* argument (and Kokkos's un-prefixed and
// environment forms) before Kokkos::initialize, which would abort with a backtrace on a bad
// value or ignore an unknown option; and hands the linked Kokkos its own spelling.
#include <gtest/gtest.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "comm/device_select.hpp"
#include "util/error.hpp"
#include "util/kokkos_compat.hpp"

namespace dualnet {
namespace {

using Env = std::map<std::string, std::string>;

KokkosOptions parse(const std::vector<std::string>& args, const Env& env = {}) {
  return parse_kokkos_options(args, [&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::vector<std::string>& args, const Env& env = {}) {
  try {
    parse(args, env);
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UsageError for " << (args.empty() ? std::string("(env)") : args[0]);
  return "";
}

// One case per line: arguments, environment, a word the one-line message must contain.
struct Bad {
  std::vector<std::string> args;
  Env env;
  std::string word;
};

const std::vector<Bad> kBad = {
    {{"--kokkos-threads=abc"}, {}, "--kokkos-threads=abc"},
    {{"--kokkos-threads=-3"}, {}, "threads"},
    {{"--kokkos-threads=0"}, {}, "[1, 65536]"},
    {{"--kokkos-threads=99999999999"}, {}, "threads"},  // std::stoi would throw in Kokkos 3.4
    {{"--kokkos-threads=4x"}, {}, "threads"},
    {{"--kokkos-threads= 4"}, {}, "threads"},
    {{"--kokkos-threads"}, {}, "needs a value"},
    {{"--kokkos-num-threads=abc"}, {}, "threads"},
    {{"--threads=abc"}, {}, "--threads=abc"},
    {{"--num-threads="}, {}, "threads"},
    {{"--kokkos-numa=-3"}, {}, "NUMA"},
    {{"--numa=x"}, {}, "NUMA"},
    {{"--kokkos-device-id=-1"}, {}, "device id"},
    {{"--kokkos-device=x"}, {}, "device id"},
    {{"--device=1.5"}, {}, "device id"},
    {{"--kokkos-num-devices=0"}, {}, "number of devices"},
    {{"--kokkos-num-devices"}, {}, "needs a value"},
    {{"--kokkos-num-devices=2,"}, {}, "skip"},
    {{"--kokkos-num-devices=2,x"}, {}, "skip"},
    {{"--kokkos-ndevices=1,0"}, {}, "skips the only device"},
    {{"--ndevices=a"}, {}, "number of devices"},
    {{"--kokkos-map-device-id-by=foo"}, {}, "mpi_rank or random"},
    {{"--kokkos-map-device-id-by"}, {}, "needs a value"},
    {{"--kokkos-disable-warnings=maybe"}, {}, "true or false"},
    {{"--kokkos-print-configuration=2"}, {}, "true or false"},
    {{"--kokkos-tools-libs"}, {}, "needs a value"},
    {{"--kokkos-tools-libs=/nonexistent/libtool.so"}, {}, "cannot load"},
    {{"--kokkos-tools-library=libdualnet-no-such-tool.so"}, {}, "cannot load"},
    {{"--kokkos-tools-args"}, {}, "needs a value"},
    {{"--kokkos-tools-help=1"}, {}, "takes no value"},
    {{"--kokkos-help=1"}, {}, "takes no value"},
    {{"--kokkos-foo"}, {}, "unknown Kokkos option '--kokkos-foo'"},
    {{"--kokkos-threads=2", "--kokkos-bar=1"}, {}, "--kokkos-bar"},
    {{"--kokkos-"}, {}, "unknown"},
    {{"--kokkos-device-id=0", "--kokkos-num-devices=2"}, {}, "both choose the device"},
    {{"--kokkos-num-devices=2", "--kokkos-map-device-id-by=random"}, {}, "both choose the device"},
    {{"--kokkos-threads=a\nb"}, {}, "a\\nb"},
    // the environment Kokkos reads
    {{}, {{"KOKKOS_NUM_THREADS", "abc"}}, "KOKKOS_NUM_THREADS"},
    {{}, {{"KOKKOS_NUM_THREADS", "4abc"}}, "KOKKOS_NUM_THREADS"},  // Kokkos 3.4 would read 4
    {{}, {{"KOKKOS_NUM_THREADS", ""}}, "KOKKOS_NUM_THREADS"},
    {{}, {{"KOKKOS_NUM_THREADS", "99999999999999999999"}}, "KOKKOS_NUM_THREADS"},
    {{}, {{"KOKKOS_NUMA", "-3"}}, "KOKKOS_NUMA"},
    {{}, {{"KOKKOS_DEVICE_ID", "x"}}, "KOKKOS_DEVICE_ID"},
    {{}, {{"KOKKOS_NUM_DEVICES", "0"}}, "KOKKOS_NUM_DEVICES"},
    {{}, {{"KOKKOS_RAND_DEVICES", "x"}}, "KOKKOS_RAND_DEVICES"},
    {{}, {{"KOKKOS_NUM_DEVICES", "2"}, {"KOKKOS_RAND_DEVICES", "2"}}, "both set"},
    {{}, {{"KOKKOS_NUM_DEVICES", "2"}, {"KOKKOS_SKIP_DEVICE", "x"}}, "KOKKOS_SKIP_DEVICE"},
    {{}, {{"KOKKOS_RAND_DEVICES", "1"}, {"KOKKOS_SKIP_DEVICE", "1"}}, "skips the only device"},
    {{}, {{"KOKKOS_MAP_DEVICE_ID_BY", "foo"}}, "KOKKOS_MAP_DEVICE_ID_BY"},
    {{}, {{"KOKKOS_VISIBLE_DEVICES", "0,x"}}, "KOKKOS_VISIBLE_DEVICES"},
    {{}, {{"KOKKOS_DISABLE_WARNINGS", "maybe"}}, "KOKKOS_DISABLE_WARNINGS"},
    {{}, {{"KOKKOS_TUNE_INTERNALS", "2"}}, "KOKKOS_TUNE_INTERNALS"},
    {{}, {{"KOKKOS_PRINT_CONFIGURATION", "x"}}, "KOKKOS_PRINT_CONFIGURATION"},
    {{}, {{"KOKKOS_PROFILE_LIBRARY", "/nonexistent/tool.so"}}, "cannot load"},
    {{}, {{"KOKKOS_PROFILE_LIBRARY", "libm.so.6"}, {"KOKKOS_TOOLS_LIBS", "libc.so.6"}}, "different tools"},
    // command line and environment must agree (Kokkos 3.4 aborts otherwise)
    {{"--kokkos-threads=4"}, {{"KOKKOS_NUM_THREADS", "2"}}, "conflicts with"},
    {{"--kokkos-numa=2"}, {{"KOKKOS_NUMA", "1"}}, "conflicts with"},
    {{"--kokkos-device-id=1"}, {{"KOKKOS_DEVICE_ID", "0"}}, "conflicts with"},
    {{"--kokkos-num-devices=2"}, {{"KOKKOS_DEVICE_ID", "0"}}, "conflicts with"},
    {{"--kokkos-num-devices=2"}, {{"KOKKOS_NUM_DEVICES", "3"}}, "conflicts with"},
    {{"--kokkos-num-devices=3,1"}, {{"KOKKOS_NUM_DEVICES", "3"}, {"KOKKOS_SKIP_DEVICE", "2"}}, "conflicts with"},
    {{"--kokkos-disable-warnings"}, {{"KOKKOS_DISABLE_WARNINGS", "off"}}, "conflicts with"},
    {{"--kokkos-tune-internals=false"}, {{"KOKKOS_TUNE_INTERNALS", "1"}}, "conflicts with"},
    {{"--kokkos-map-device-id-by=random"}, {{"KOKKOS_MAP_DEVICE_ID_BY", "mpi_rank"}}, "conflicts with"},
    {{"--kokkos-tools-libs=libm.so.6"}, {{"KOKKOS_PROFILE_LIBRARY", "libc.so.6"}}, "conflicts with"},
    // dualnet's own: threads per team on host backends
    {{}, {{"DUALNET_HOST_TEAM_SIZE", "0"}}, "DUALNET_HOST_TEAM_SIZE"},
    {{}, {{"DUALNET_HOST_TEAM_SIZE", "two"}}, "DUALNET_HOST_TEAM_SIZE"},
    {{}, {{"DUALNET_HOST_TEAM_SIZE", ""}}, "DUALNET_HOST_TEAM_SIZE"},
    {{}, {{"DUALNET_HOST_TEAM_SIZE", "2048"}}, "DUALNET_HOST_TEAM_SIZE"},
};

TEST(KokkosOptions, BadOptionsAndEnvironmentAreOneLineNamingThem) {
  for (const auto& c : kBad) {
    const std::string m = error_of(c.args, c.env);
    EXPECT_NE(m.find(c.word), std::string::npos) << (c.args.empty() ? "env" : c.args[0]) << " -> " << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(KokkosOptions, HelpWinsOverEverythingElse) {
  EXPECT_TRUE(parse({"--kokkos-help"}).help);
  EXPECT_TRUE(parse({"--kokkos-foo", "--kokkos-threads=abc", "--kokkos-help"}, {{"KOKKOS_NUM_THREADS", "x"}}).help);
  EXPECT_FALSE(parse({}).help);
  EXPECT_TRUE(parse({"--kokkos-tools-help"}).tools_help);
}

TEST(KokkosOptions, WhichArgumentsAreKokkos) {
  for (const std::string a : {"--kokkos-threads=2", "--kokkos-foo", "--threads=2", "--threads", "--numa=1",
                              "--device=0", "--device-id=0", "--ndevices=2", "--num-devices=2", "--num-threads=2"})
    EXPECT_TRUE(is_kokkos_argument(a)) << a;
  for (const std::string a : {"--help", "--version", "depth=3", "--threads-per-core=2", "-kokkos-threads=2", "--kokkos",
                              "out=--kokkos-threads=2", "train"})
    EXPECT_FALSE(is_kokkos_argument(a)) << a;
}

TEST(KokkosOptions, GoodOptionsAreReadInEverySpelling) {
  for (const std::string a : {"--kokkos-threads=3", "--kokkos-num-threads=3", "--threads=3", "--num-threads=03"})
    EXPECT_EQ(parse({a}).num_threads, 3) << a;
  for (const std::string a : {"--kokkos-device-id=1", "--kokkos-device=1", "--device-id=1", "--device=1"})
    EXPECT_EQ(parse({a}).device_id, 1) << a;
  const KokkosOptions n = parse({"--kokkos-ndevices=4,2"});
  EXPECT_EQ(n.num_devices, 4);
  EXPECT_EQ(n.skip_device, 2);
  EXPECT_EQ(parse({"--kokkos-threads=2", "--kokkos-threads=5"}).num_threads, 5);  // the last one wins
  EXPECT_EQ(parse({"--kokkos-disable-warnings"}).disable_warnings, 1);
  EXPECT_EQ(parse({"--kokkos-disable-warnings=false"}).disable_warnings, 0);
  EXPECT_TRUE(parse({"--kokkos-print-configuration"}).print_configuration);
  EXPECT_TRUE(parse({}, {{"KOKKOS_PRINT_CONFIGURATION", "yes"}}).print_configuration);
  EXPECT_NO_THROW(parse({"--kokkos-threads=4"}, {{"KOKKOS_NUM_THREADS", "4"}}));  // equal: fine
  EXPECT_NO_THROW(parse({"--kokkos-tools-libs=libm.so.6", "--kokkos-tools-args=-c x"}));
  EXPECT_TRUE(parse({}, {{"KOKKOS_DEVICE_ID", "0"}}).env_selects_device);
  EXPECT_FALSE(parse({"--kokkos-device-id=0"}, {{"KOKKOS_DEVICE_ID", "0"}}).env_selects_device);
}

TEST(KokkosOptions, TheLinkedKokkosGetsItsOwnSpelling) {
  const KokkosOptions o = parse({"--threads=2", "--kokkos-numa=1", "--kokkos-disable-warnings=false",
                                 "--kokkos-tune-internals", "--kokkos-print-configuration", "--kokkos-tools-args=-x"});
  const std::vector<std::string> a = kokkos_arguments(o, 1);
#if KOKKOS_VERSION >= 30700
  const std::vector<std::string> want = {"--kokkos-num-threads=2", "--kokkos-device-id=1",
                                         "--kokkos-disable-warnings=false", "--kokkos-tune-internals=true",
                                         "--kokkos-tools-args=-x"};
#else
  const std::vector<std::string> want = {"--kokkos-threads=2", "--kokkos-numa=1", "--kokkos-device-id=1",
                                         "--kokkos-tune-internals", "--kokkos-tools-args=-x"};
#endif
  EXPECT_EQ(a, want);
  EXPECT_TRUE(kokkos_arguments(KokkosOptions(), -1).empty());
}

TEST(KokkosOptions, EnvironmentIsNormalisedForTheLinkedKokkos) {
  const KokkosOptions o = parse(
      {}, {{"KOKKOS_DISABLE_WARNINGS", "ON"}, {"KOKKOS_TUNE_INTERNALS", "no"}, {"KOKKOS_PRINT_CONFIGURATION", "0"}});
  std::map<std::string, std::string> changes;
  for (const auto& [name, value] : o.env_changes) changes[name] = value ? *value : "(unset)";
  EXPECT_EQ(changes["KOKKOS_DISABLE_WARNINGS"], "1");
#if KOKKOS_VERSION >= 30700
  EXPECT_EQ(changes["KOKKOS_TUNE_INTERNALS"], "0");
#else
  EXPECT_EQ(changes["KOKKOS_TUNE_INTERNALS"], "(unset)");
#endif
  EXPECT_EQ(changes["KOKKOS_PRINT_CONFIGURATION"], "(unset)");  // dualnet prints it, on rank 0
}

TEST(KokkosOptions, OneDevicePerRank) {
  // local rank, GPUs on the host -> device
  EXPECT_EQ(choose_device(parse({}), 0, 4), 0);
  EXPECT_EQ(choose_device(parse({}), 5, 4), 1);
  EXPECT_EQ(choose_device(parse({"--kokkos-device-id=2"}), 5, 4), 2);
  EXPECT_EQ(choose_device(parse({"--kokkos-num-devices=2"}), 3, 4), 1);
  EXPECT_EQ(choose_device(parse({"--kokkos-num-devices=2,0"}), 2, 4), 1);  // Kokkos 3.4: skip shifts up
  EXPECT_EQ(choose_device(parse({"--kokkos-num-devices=2,1"}), 1, 4), 2);
  EXPECT_EQ(choose_device(parse({"--kokkos-map-device-id-by=mpi_rank"}), 3, 2), 1);
  const int r = choose_device(parse({"--kokkos-map-device-id-by=random"}), 0, 3);
  EXPECT_TRUE(r >= 0 && r < 3);
  EXPECT_EQ(choose_device(parse({}, {{"KOKKOS_DEVICE_ID", "1"}}), 0, 4), -1);  // left to Kokkos
  EXPECT_EQ(choose_device(parse({}, {{"KOKKOS_NUM_DEVICES", "2"}}), 0, 4), -1);
  EXPECT_THROW(choose_device(parse({"--kokkos-device-id=4"}), 0, 4), UsageError);
  EXPECT_THROW(choose_device(parse({"--kokkos-num-devices=5"}), 0, 4), UsageError);
  EXPECT_THROW(choose_device(parse({"--kokkos-num-devices=4,0"}), 3, 4), UsageError);  // 3+1 is not there
}

// teams() (util/kokkos_compat.hpp): Kokkos::AUTO, or on a host backend the DUALNET_HOST_TEAM_SIZE
// threads per team; every member of every team runs. CI's OpenMP job sets 2 threads and teams
// of 2, so that the team kernels' barriers and shared scratch run as on a GPU.
TEST(KokkosOptions, TeamsHaveTheRequestedThreads) {
  const int league = 5, size = teams(league).team_size();
  std::printf("%s backend, %d threads, teams of %d (DUALNET_HOST_TEAM_SIZE=%s)\n", execution_space_name(),
              ExecSpace().concurrency(), size,
              std::getenv("DUALNET_HOST_TEAM_SIZE") ? std::getenv("DUALNET_HOST_TEAM_SIZE") : "unset");
  ASSERT_GE(size, 1);
  if (Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible && host_team_size() > 0) {
    EXPECT_EQ(size, host_team_size());
  }
  View1<int> seen("seen", league * size);
  Kokkos::parallel_for(
      "test::team_members", teams(league), KOKKOS_LAMBDA(const Team& team) {
        Kokkos::atomic_add(&seen(team.league_rank() * team.team_size() + team.team_rank()), 1);
      });
  for (double v : host_vector(seen)) EXPECT_EQ(v, 1.0);
}

}  // namespace
}  // namespace dualnet
