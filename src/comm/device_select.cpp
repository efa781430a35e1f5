#include "comm/device_select.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <random>

#include "util/error.hpp"
#include "util/kokkos_compat.hpp"
#include "util/text.hpp"

#ifdef KOKKOS_ENABLE_CUDA
#include <cuda_runtime.h>
#endif

namespace dualnet {
namespace {

// Kokkos 3.7 brought InitializationSettings and the spellings of Kokkos 4
// (--kokkos-num-threads, --kokkos-tools-libs, --kokkos-FLAG=BOOL) and deprecated --kokkos-numa.
#if KOKKOS_VERSION >= 30700
constexpr bool kNewSpelling = true;
#else
constexpr bool kNewSpelling = false;
#endif

constexpr int kMaxThreads = 65536;
constexpr int kMaxNuma = 1024;
constexpr int kMaxDevices = 1024;

const char* const kThreads[] = {"--kokkos-threads", "--kokkos-num-threads", "--threads", "--num-threads"};
const char* const kNuma[] = {"--kokkos-numa", "--numa"};
const char* const kDeviceId[] = {"--kokkos-device-id", "--kokkos-device", "--device-id", "--device"};
const char* const kNumDevices[] = {"--kokkos-num-devices", "--kokkos-ndevices", "--num-devices", "--ndevices"};

template <std::size_t N>
bool one_of(const std::string& name, const char* const (&names)[N]) {
  for (const char* n : names)
    if (name == n) return true;
  return false;
}

[[noreturn]] void refuse(const std::string& m) { throw UsageError(m); }

std::string option(const std::string& arg) { return "Kokkos option '" + echo(arg) + "'"; }
std::string variable(const std::string& name, const std::string& value) {
  return "environment variable " + name + "='" + echo(value) + "'";
}

// Decimal digits only: Kokkos 3.4 calls std::stoi before it checks (and aborts on "abc"),
// and reads "4abc" from the environment as 4.
bool read_int(const std::string& text, int lo, int hi, int& out) {
  if (text.empty() || text.size() > 9) return false;
  for (const char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  const long v = std::strtol(text.c_str(), nullptr, 10);
  if (v < lo || v > hi) return false;
  out = static_cast<int>(v);
  return true;
}

std::string range(int lo, int hi) { return "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]"; }

bool read_bool(std::string text, int& out) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text == "true" || text == "yes" || text == "on" || text == "1")
    out = 1;
  else if (text == "false" || text == "no" || text == "off" || text == "0")
    out = 0;
  else
    return false;
  return true;
}

// Each library of a ';'-separated list must load, as Kokkos will load it (Kokkos 3.4 prints
// two lines and runs on without the tool when it cannot).
void check_tools_libs(const std::string& libs, const std::string& who) {
  if (libs.empty()) refuse(who + ": the tools library is empty");
  std::size_t start = 0;
  while (start <= libs.size()) {
    const std::size_t end = std::min(libs.find(';', start), libs.size());
    const std::string lib = libs.substr(start, end - start);
    if (!lib.empty() && dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      const char* why = dlerror();
      refuse(who + ": cannot load the tools library '" + echo(lib, 200) + "' (" +
             echo(why ? why : "dlopen failed", 200) + ")");
    }
    start = end + 1;
  }
}

struct Env {
  const GetEnv& getenv;
  const char* get(const char* name) const { return getenv ? getenv(name) : nullptr; }
};

// An integer variable: `cmd` is the command line's value (-1: none); they must agree.
int env_int(const Env& env, const char* name, int lo, int hi, int cmd, const std::string& cmd_arg) {
  const char* s = env.get(name);
  if (!s) return -1;
  int v = 0;
  if (!read_int(s, lo, hi, v)) refuse(variable(name, s) + ": must be " + range(lo, hi));
  if (cmd >= 0 && cmd != v)
    refuse(option(cmd_arg) + " conflicts with " + variable(name, s) + "; Kokkos needs them equal: give one");
  return v;
}

int env_bool(const Env& env, const char* name, int cmd, const std::string& cmd_arg) {
  const char* s = env.get(name);
  if (!s) return -1;
  int v = 0;
  if (!read_bool(s, v)) refuse(variable(name, s) + ": must be true or false (or yes/no, on/off, 1/0)");
  if (cmd >= 0 && cmd != v)
    refuse(option(cmd_arg) + " conflicts with " + variable(name, s) + "; Kokkos needs them equal: give one");
  return v;
}

constexpr const char* kHostTeamSize = "DUALNET_HOST_TEAM_SIZE";
constexpr int kMaxHostTeamSize = 1024;

// DUALNET_HOST_TEAM_SIZE (util/kokkos_compat.hpp): 0 when unset.
int read_host_team_size(const char* s) {
  int v = 0;
  if (s && !read_int(s, 1, kMaxHostTeamSize, v))
    refuse(variable(kHostTeamSize, s) + ": the threads per team on a host backend must be " +
           range(1, kMaxHostTeamSize));
  return v;
}

}  // namespace

int host_team_size() {
  // Read once, after Kokkos::initialize: a team cannot have more threads than the backend.
  // main() calls it first, so that a bad value stops every rank before anything runs.
  static const int size = [] {
    if (!Kokkos::SpaceAccessibility<Kokkos::HostSpace, MemSpace>::accessible) return 0;  // a GPU: AUTO
    const char* text = std::getenv(kHostTeamSize);
    const int want = read_host_team_size(text);
    const int threads = ExecSpace().concurrency();
    if (want > threads)
      refuse(variable(kHostTeamSize, text) + " asks for teams of " + std::to_string(want) + " threads, but the " +
             execution_space_name() + " backend has " + std::to_string(threads) +
             " (OpenMP: set OMP_NUM_THREADS; Serial: one)");
    return want;
  }();
  return size;
}

bool is_kokkos_argument(const std::string& arg) {
  if (arg.rfind("--kokkos-", 0) == 0) return true;
  const std::string name = arg.substr(0, arg.find('='));
  return one_of(name, kThreads) || one_of(name, kNuma) || one_of(name, kDeviceId) || one_of(name, kNumDevices);
}

KokkosOptions parse_kokkos_options(const std::vector<std::string>& args, const GetEnv& getenv) {
  KokkosOptions o;
  for (const auto& a : args)
    if (a == "--kokkos-help") {
      o.help = true;  // help first: whatever else the line holds
      return o;
    }
  // The argument that set each value, for conflict messages.
  std::string threads_arg, numa_arg, device_arg, ndev_arg, map_arg, warn_arg, tune_arg, libs_arg;
  for (const auto& a : args) {
    const auto eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const bool has_value = eq != std::string::npos;
    const std::string value = has_value ? a.substr(eq + 1) : "";
    const auto need_value = [&](const char* form) {
      if (!has_value) refuse(option(a) + " needs a value: " + name + "=" + form);
    };
    if (!is_kokkos_argument(a)) refuse(option(a) + " is not a Kokkos option");
    if (one_of(name, kThreads)) {
      need_value("N");
      if (!read_int(value, 1, kMaxThreads, o.num_threads))
        refuse(option(a) + ": the number of threads must be " + range(1, kMaxThreads));
      threads_arg = a;
    } else if (one_of(name, kNuma)) {
      need_value("N");
      if (!read_int(value, 1, kMaxNuma, o.numa))
        refuse(option(a) + ": the number of NUMA regions must be " + range(1, kMaxNuma));
      numa_arg = a;
    } else if (one_of(name, kDeviceId)) {
      need_value("N");
      if (!read_int(value, 0, kMaxDevices - 1, o.device_id))
        refuse(option(a) + ": the device id must be " + range(0, kMaxDevices - 1));
      device_arg = a;
    } else if (one_of(name, kNumDevices)) {
      need_value("N[,SKIP]");
      const auto comma = value.find(',');
      if (!read_int(value.substr(0, comma), 1, kMaxDevices, o.num_devices))
        refuse(option(a) + ": the number of devices must be " + range(1, kMaxDevices) + ", optionally ,SKIP");
      o.skip_device = -1;
      if (comma != std::string::npos && !read_int(value.substr(comma + 1), 0, kMaxDevices - 1, o.skip_device))
        refuse(option(a) + ": the device to skip (after the comma) must be " + range(0, kMaxDevices - 1));
      if (o.num_devices == 1 && o.skip_device == 0) refuse(option(a) + " skips the only device");
      ndev_arg = a;
    } else if (name == "--kokkos-map-device-id-by") {
      need_value("mpi_rank|random");
      if (value != "mpi_rank" && value != "random") refuse(option(a) + ": the value must be mpi_rank or random");
      o.map_device_id_by = value;
      map_arg = a;
    } else if (name == "--kokkos-disable-warnings" || name == "--kokkos-tune-internals" ||
               name == "--kokkos-print-configuration") {
      int v = 1;
      if (has_value && !read_bool(value, v))
        refuse(option(a) + ": the value must be true or false (or yes/no, on/off, 1/0), or none");
      if (name == "--kokkos-disable-warnings")
        o.disable_warnings = v, warn_arg = a;
      else if (name == "--kokkos-tune-internals")
        o.tune_internals = v, tune_arg = a;
      else
        o.print_configuration = v == 1;
    } else if (name == "--kokkos-tools-libs" || name == "--kokkos-tools-library") {
      need_value("LIB");
      o.tools_libs = value;
      libs_arg = a;
    } else if (name == "--kokkos-tools-args") {
      need_value("STRING");
      o.tools_args = value;
    } else if (a == "--kokkos-tools-help") {
      o.tools_help = true;
    } else if (name == "--kokkos-help" || name == "--kokkos-tools-help") {
      refuse(option(a) + " takes no value");
    } else {
      refuse("unknown " + option(a) + " (see dualnet --kokkos-help)");
    }
  }
  if (o.device_id >= 0 && (o.num_devices > 0 || !o.map_device_id_by.empty()))
    refuse(option(device_arg) + " and " + option(o.num_devices > 0 ? ndev_arg : map_arg) +
           " both choose the device: give one");
  if (o.num_devices > 0 && !o.map_device_id_by.empty())
    refuse(option(ndev_arg) + " and " + option(map_arg) + " both choose the device: give one");
  if (o.tools_libs) check_tools_libs(*o.tools_libs, option(libs_arg));

  const Env env{getenv};
  read_host_team_size(env.get(kHostTeamSize));
  env_int(env, "KOKKOS_NUM_THREADS", 1, kMaxThreads, o.num_threads, threads_arg);
  if (env_int(env, "KOKKOS_NUMA", 1, kMaxNuma, o.numa, numa_arg) >= 0 && kNewSpelling)
    o.env_changes.push_back({"KOKKOS_NUMA", std::nullopt});  // deprecated: a warning from every rank
  const bool cmd_selects = o.device_id >= 0 || o.num_devices > 0 || !o.map_device_id_by.empty();
  if (const char* s = env.get("KOKKOS_DEVICE_ID")) {
    int v = 0;
    if (!read_int(s, 0, kMaxDevices - 1, v))
      refuse(variable("KOKKOS_DEVICE_ID", s) + ": must be " + range(0, kMaxDevices - 1));
    if (cmd_selects && o.device_id != v)
      refuse(option(o.device_id >= 0    ? device_arg
                    : o.num_devices > 0 ? ndev_arg
                                        : map_arg) +
             " conflicts with " + variable("KOKKOS_DEVICE_ID", s) + "; Kokkos needs them equal: give one");
    o.env_selects_device = !cmd_selects;
  }
  const char* num_env = env.get("KOKKOS_NUM_DEVICES");
  const char* rand_env = env.get("KOKKOS_RAND_DEVICES");
  if (num_env && rand_env)
    refuse("environment variables KOKKOS_NUM_DEVICES and KOKKOS_RAND_DEVICES are both set: give one");
  const int num = env_int(env, "KOKKOS_NUM_DEVICES", 1, kMaxDevices, o.num_devices, ndev_arg);
  int rand = -1;
  if (rand_env && !read_int(rand_env, 1, kMaxDevices, rand))
    refuse(variable("KOKKOS_RAND_DEVICES", rand_env) + ": must be " + range(1, kMaxDevices));
  if (num >= 0 || rand >= 0) {
    const int skip = env_int(env, "KOKKOS_SKIP_DEVICE", 0, kMaxDevices - 1, o.skip_device, ndev_arg);
    if (skip >= 0 && (num == 1 || rand == 1))
      refuse(variable("KOKKOS_SKIP_DEVICE", env.get("KOKKOS_SKIP_DEVICE")) + " skips the only device of " +
             (num == 1 ? "KOKKOS_NUM_DEVICES=1" : "KOKKOS_RAND_DEVICES=1"));
    o.env_selects_device = o.env_selects_device || !cmd_selects;
  }
  if (const char* s = env.get("KOKKOS_MAP_DEVICE_ID_BY")) {
    if (std::string(s) != "mpi_rank" && std::string(s) != "random")
      refuse(variable("KOKKOS_MAP_DEVICE_ID_BY", s) + ": must be mpi_rank or random");
    if (!o.map_device_id_by.empty() && o.map_device_id_by != s)
      refuse(option(map_arg) + " conflicts with " + variable("KOKKOS_MAP_DEVICE_ID_BY", s) + "; give one");
    o.env_selects_device = o.env_selects_device || !cmd_selects;
  }
  if (const char* s = env.get("KOKKOS_VISIBLE_DEVICES")) {
    const std::string list = s;
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = std::min(list.find(',', start), list.size());
      int id = 0;
      if (!read_int(list.substr(start, end - start), 0, kMaxDevices - 1, id))
        refuse(variable("KOKKOS_VISIBLE_DEVICES", s) + ": must be a comma-separated list of device ids in [0, " +
               std::to_string(kMaxDevices - 1) + "]");
      if (end == list.size()) break;
      start = end + 1;
    }
    o.env_selects_device = o.env_selects_device || !cmd_selects;
  }
  // Booleans: Kokkos 3.4 takes only TRUE/ON/1 as true (and "--kokkos-FLAG=false" as true);
  // Kokkos 4 refuses "on". Each gets the linked Kokkos's spelling.
  const auto normalise = [&](const char* name, int v) {
    if (v < 0) return;
    if (kNewSpelling)
      o.env_changes.push_back({name, std::string(v ? "1" : "0")});
    else
      o.env_changes.push_back({name, v ? std::optional<std::string>("1") : std::nullopt});
  };
  normalise("KOKKOS_DISABLE_WARNINGS", env_bool(env, "KOKKOS_DISABLE_WARNINGS", o.disable_warnings, warn_arg));
  normalise("KOKKOS_TUNE_INTERNALS", env_bool(env, "KOKKOS_TUNE_INTERNALS", o.tune_internals, tune_arg));
  if (env_bool(env, "KOKKOS_PRINT_CONFIGURATION", -1, "") == 1) o.print_configuration = true;
  if (env.get("KOKKOS_PRINT_CONFIGURATION"))  // Kokkos 4 would print on every rank
    o.env_changes.push_back({"KOKKOS_PRINT_CONFIGURATION", std::nullopt});
  const char* profile = env.get("KOKKOS_PROFILE_LIBRARY");
  const char* tools = env.get("KOKKOS_TOOLS_LIBS");
  if (profile && tools && std::string(profile) != tools)
    refuse("environment variables KOKKOS_PROFILE_LIBRARY and KOKKOS_TOOLS_LIBS name different tools: give one");
  if (const char* lib = tools ? tools : profile) {
    const std::string who = variable(tools ? "KOKKOS_TOOLS_LIBS" : "KOKKOS_PROFILE_LIBRARY", lib);
    if (o.tools_libs && *o.tools_libs != lib)
      refuse(option(libs_arg) + " conflicts with " + who + "; Kokkos needs them equal: give one");
    if (!o.tools_libs) check_tools_libs(lib, who);
    if (!kNewSpelling && !profile) o.env_changes.push_back({"KOKKOS_PROFILE_LIBRARY", std::string(lib)});
  }
  return o;
}

int choose_device(const KokkosOptions& o, int local_rank, int devices) {
  const std::string have = "this host has " + std::to_string(devices) + " GPU" + (devices == 1 ? "" : "s");
  if (o.device_id >= 0) {
    if (o.device_id >= devices)
      refuse("Kokkos option --kokkos-device-id=" + std::to_string(o.device_id) + ": " + have + " (ids 0 to " +
             std::to_string(devices - 1) + ")");
    return o.device_id;
  }
  if (o.num_devices > 0) {
    // Kokkos 3.4's rule: round robin over the first num_devices, shifted past skip_device.
    if (o.num_devices > devices)
      refuse("Kokkos option --kokkos-num-devices=" + std::to_string(o.num_devices) + ": " + have);
    int id = local_rank % o.num_devices;
    if (o.skip_device >= 0 && id >= o.skip_device) ++id;
    if (id >= devices)
      refuse("Kokkos option --kokkos-num-devices=" + std::to_string(o.num_devices) + "," +
             std::to_string(o.skip_device) + ": local rank " + std::to_string(local_rank) + " would get device " +
             std::to_string(id) + ", but " + have);
    return id;
  }
  if (o.map_device_id_by == "random") {
    std::default_random_engine gen(static_cast<unsigned>(::getpid()));
    return std::uniform_int_distribution<int>(0, devices - 1)(gen);
  }
  if (o.map_device_id_by.empty() && o.env_selects_device) return -1;
  return local_rank % devices;
}

std::vector<std::string> kokkos_arguments(const KokkosOptions& o, int device_id) {
  std::vector<std::string> a;
  if (o.num_threads > 0)
    a.push_back((kNewSpelling ? "--kokkos-num-threads=" : "--kokkos-threads=") + std::to_string(o.num_threads));
  if (o.numa > 0 && !kNewSpelling) a.push_back("--kokkos-numa=" + std::to_string(o.numa));
  if (device_id >= 0) a.push_back("--kokkos-device-id=" + std::to_string(device_id));
  // Kokkos 3.4 reads "--kokkos-disable-warnings=false" as true: false is left out there.
  const auto flag = [&](const char* name, int v) {
    if (v < 0) return;
    if (kNewSpelling)
      a.push_back(std::string(name) + (v ? "=true" : "=false"));
    else if (v)
      a.push_back(name);
  };
  flag("--kokkos-disable-warnings", o.disable_warnings);
  flag("--kokkos-tune-internals", o.tune_internals);
  if (o.tools_libs) a.push_back((kNewSpelling ? "--kokkos-tools-libs=" : "--kokkos-tools-library=") + *o.tools_libs);
  if (o.tools_args) a.push_back("--kokkos-tools-args=" + *o.tools_args);
  if (o.tools_help) a.push_back("--kokkos-tools-help");
  return a;
}

void apply_kokkos_environment(const KokkosOptions& o) {
  for (const auto& [name, value] : o.env_changes) {
    if (value)
      ::setenv(name.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
}

std::string kokkos_help_note() {
  return "dualnet checks these options (and the KOKKOS_* environment variables) before Kokkos starts,\n"
         "and also accepts the Kokkos 4 spellings: --kokkos-num-threads=N, --kokkos-map-device-id-by=mpi_rank|random,\n"
         "--kokkos-print-configuration (printed by rank 0), --kokkos-tools-libs=LIB. On a GPU build each rank\n"
         "gets one device: <local rank> % <GPUs on the host>, unless chosen with the options above.\n";
}

KokkosArgs::KokkosArgs(const std::string& argv0, const KokkosOptions& o, const World& w) {
  int device = -1;
#ifdef KOKKOS_ENABLE_CUDA
  int devices = 0;
  const cudaError_t rc = cudaGetDeviceCount(&devices);  // leaves `devices` unwritten on error
  if (rc != cudaSuccess || devices < 1) {
    no_device_ =
        std::string("this dualnet is a CUDA build, and no CUDA device is usable here (") +
        (rc != cudaSuccess ? std::string("cudaGetDeviceCount: ") + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc)
                           : std::string("no device found")) +
        "); run it on a machine with an NVIDIA GPU and driver, or use a CPU build";
  } else {
    device = choose_device(o, w.local_rank, devices);
  }
#else
  (void)w;  // host backends: no device to choose
#endif
  strings_.push_back(argv0);
  for (auto& s : kokkos_arguments(o, device)) strings_.push_back(s);
  for (auto& s : strings_) ptrs_.push_back(s.data());
  argc_ = static_cast<int>(strings_.size());
  ptrs_.push_back(nullptr);
}

}  // namespace dualnet
