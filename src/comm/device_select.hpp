#pragma once
// The Kokkos part of dualnet's command line, checked by dualnet before Kokkos::initialize
// (Kokkos would abort with a backtrace on a bad value, or silently ignore an unknown option),
// and the command line handed to Kokkos::initialize, spelled for the linked Kokkos.
//
// Accepted (Kokkos 3.4 and 4.x spellings; the un-prefixed forms are Kokkos's deprecated ones):
//   --kokkos-help, --kokkos-tools-help       print the help and exit (main does)
//   --kokkos-threads=N, --kokkos-num-threads=N, --threads=N, --num-threads=N
//   --kokkos-numa=N, --numa=N                (ignored by Kokkos >= 3.7)
//   --kokkos-device-id=N, --kokkos-device=N, --device-id=N, --device=N
//   --kokkos-num-devices=N[,SKIP], --kokkos-ndevices=..., --num-devices=..., --ndevices=...
//   --kokkos-map-device-id-by=mpi_rank|random
//   --kokkos-disable-warnings[=BOOL], --kokkos-tune-internals[=BOOL], --kokkos-print-configuration[=BOOL]
//   --kokkos-tools-libs=LIB[;LIB], --kokkos-tools-library=LIB, --kokkos-tools-args=STRING
// and the environment variables Kokkos reads (KOKKOS_NUM_THREADS, KOKKOS_NUMA, KOKKOS_DEVICE_ID,
// KOKKOS_NUM_DEVICES, KOKKOS_RAND_DEVICES, KOKKOS_SKIP_DEVICE, KOKKOS_MAP_DEVICE_ID_BY,
// KOKKOS_VISIBLE_DEVICES, KOKKOS_DISABLE_WARNINGS, KOKKOS_TUNE_INTERNALS,
// KOKKOS_PRINT_CONFIGURATION, KOKKOS_PROFILE_LIBRARY, KOKKOS_TOOLS_LIBS), including the
// combinations Kokkos aborts on (a command-line value that differs from the environment's),
// and dualnet's DUALNET_HOST_TEAM_SIZE (threads per team on host backends, host_team_size()
// in util/kokkos_compat.hpp, defined here).
//
// One GPU per rank: on a CUDA build dualnet picks the device itself and hands Kokkos a
// --kokkos-device-id: the one given, or <local rank % N> skipping SKIP for --kokkos-num-devices,
// or <local rank % GPUs on the host> (mpi_rank, the default), or a random one (random);
// left to Kokkos when only the environment selects a device. Host builds pass no device.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "comm/world.hpp"

namespace dualnet {

struct KokkosOptions {
  bool help = false;        // --kokkos-help: print Kokkos's help, exit 0
  bool tools_help = false;  // --kokkos-tools-help: ask the loaded tool for its help, exit 0
  int num_threads = -1;     // -1: not given (here and below)
  int numa = -1;
  int device_id = -1;
  int num_devices = -1;
  int skip_device = -1;
  std::string map_device_id_by;  // "", "mpi_rank" or "random"
  int disable_warnings = -1;     // -1 not given, 0 false, 1 true
  int tune_internals = -1;
  bool print_configuration = false;  // printed by dualnet, on rank 0 only
  std::optional<std::string> tools_libs, tools_args;
  // The environment selects the device (KOKKOS_DEVICE_ID, _NUM_DEVICES, _RAND_DEVICES,
  // _MAP_DEVICE_ID_BY, _VISIBLE_DEVICES) and the command line does not.
  bool env_selects_device = false;
  // Applied before Kokkos::initialize: variables to set (a value) or to remove (nullopt), so
  // that the linked Kokkos reads what was validated (normalised booleans, no deprecated ones).
  std::vector<std::pair<std::string, std::optional<std::string>>> env_changes;
};

// Whether `arg` is for Kokkos: --kokkos-*, or one of Kokkos's un-prefixed options (exactly,
// or followed by '=').
bool is_kokkos_argument(const std::string& arg);

// Reads the Kokkos arguments (those is_kokkos_argument() picked) and the KOKKOS_* variables
// of `getenv`. A bad or unknown option, a bad value or a conflict is a UsageError, one line.
// With --kokkos-help or --kokkos-tools-help anywhere, nothing else is checked.
using GetEnv = std::function<const char*(const char*)>;
KokkosOptions parse_kokkos_options(const std::vector<std::string>& args, const GetEnv& getenv);

// The device of a rank with `local_rank` among `devices` GPUs on its host, -1 to leave it to
// Kokkos (the environment selects); UsageError if the options name a device that is not there.
int choose_device(const KokkosOptions& o, int local_rank, int devices);

// Arguments for Kokkos::initialize after argv[0], in the spelling of the linked Kokkos
// (KOKKOS_VERSION); `device_id` >= 0 adds --kokkos-device-id.
std::vector<std::string> kokkos_arguments(const KokkosOptions& o, int device_id);

// Applies o.env_changes to this process's environment.
void apply_kokkos_environment(const KokkosOptions& o);

// The text main prints after Kokkos's own --kokkos-help: what dualnet accepts beyond it.
std::string kokkos_help_note();

class KokkosArgs {
 public:
  KokkosArgs(const std::string& argv0, const KokkosOptions& o, const World& w);
  int& argc() { return argc_; }
  char** argv() { return ptrs_.data(); }
  // On a CUDA build without a usable CUDA device: why, in a line for the user (then
  // Kokkos::initialize would throw). "" otherwise, and always on host builds.
  const std::string& no_device() const { return no_device_; }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> ptrs_;
  int argc_ = 0;
  std::string no_device_;
};

}  // namespace dualnet
