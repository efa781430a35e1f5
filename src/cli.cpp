#include "cli.hpp"

#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dualnet_version.hpp"
#include "io/run_dir.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

const char* kUsage =
    "usage: dualnet <command> [arguments]\n\n"
    "commands:\n"
    "  train [CONFIG.toml] [key=value ...]   train and measure; 'dualnet train --help' lists the keys\n"
    "  --version                             print the version\n\n"
    "Run on P ranks with: mpirun -n P dualnet train ...; GPUs: add --kokkos-device-id=<local rank>.\n";

bool is_help(const std::string& a) { return a == "--help" || a == "-h" || a == "help"; }

int train(const std::vector<std::string>& args, const World& world) {
  std::string toml_path;
  std::vector<std::string> overrides;
  for (size_t i = 0; i < args.size(); ++i) {
    if (is_help(args[i])) {
      if (world.root()) std::fputs(config_help().c_str(), stdout);
      return 0;
    }
    if (args[i].find('=') == std::string::npos && i == 0) toml_path = args[i];
    else overrides.push_back(args[i]);
  }
  Config cfg;
  on_all_ranks(world, [&] {
    cfg = parse_config(toml_path, overrides);
    validate(cfg, world.size);
  });
  prepare_run_dir(cfg, world);
  std::unique_ptr<Trainer> trainer;
  on_all_ranks(world, [&] { trainer = std::make_unique<Trainer>(cfg, world); });
  trainer->run();
  return 0;
}

}  // namespace

int run_cli(int argc, char* argv[], const World& world) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty() || is_help(args[0])) {
      if (world.root()) std::fputs(kUsage, args.empty() ? stderr : stdout);
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
      if (world.root()) std::printf("dualnet %s (%s)\n", DUALNET_VERSION, DUALNET_GIT_COMMIT);
      return 0;
    }
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "train") return train(rest, world);
    if (world.root()) std::fprintf(stderr, "dualnet: error: unknown command '%s' (try 'dualnet --help')\n", args[0].c_str());
    return 2;
  } catch (const Error& e) {
    const int code = dynamic_cast<const UsageError*>(&e) ? 2 : 1;
    if (e.all_ranks || world.size == 1) {
      if (world.root()) std::fprintf(stderr, "dualnet: error: %s\n", e.what());
      return code;
    }
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, e.what());
    std::fflush(stderr);
    MPI_Abort(world.comm, code);
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, e.what());
    std::fflush(stderr);
    if (world.size > 1) MPI_Abort(world.comm, 1);
    return 1;
  }
}

}  // namespace dualnet
