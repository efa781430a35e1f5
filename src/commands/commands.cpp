#include "commands/commands.hpp"

#include <mpi.h>

#include <cstdio>

#include "commands/arguments.hpp"
#include "dualnet_version.hpp"
#include "util/error.hpp"

namespace dualnet {
namespace {

struct Command {
  const char* name;
  const char* synopsis;
  const char* purpose;
  int (*run)(const std::vector<std::string>&, const World&);
  std::string (*help)();
};

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"train", "train [CONFIG.toml] [key=value ...]", "train and measure", train_command, train_help},
      {"covop", "covop [RUN|CHECKPOINT|CONFIG.toml] [key=value ...]",
       "check the covariance-operator theorem on a network's weights", covop_command, covop_help},
      {"bench", "bench [key=value ...]", "throughput, time per phase, FLOP rates, memory", bench_command, bench_help},
  };
  return list;
}

std::string usage() {
  std::string s = "usage: dualnet <command> [arguments]\n\ncommands:\n";
  for (const auto& c : commands()) s += "  " + std::string(c.synopsis) + "\n      " + c.purpose + "\n";
  s += "  --version\n      print the version\n\n"
       "'dualnet <command> --help' lists a command's keys.\n"
       "Run on P ranks with: mpirun -n P dualnet train ...; GPUs: add --kokkos-device-id=<local rank>.\n";
  return s;
}

int run(const std::vector<std::string>& args, const World& world) {
  if (args.empty() || is_help(args[0])) {
    if (world.root()) std::fputs(usage().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    if (world.root()) std::printf("dualnet %s (%s)\n", DUALNET_VERSION, DUALNET_GIT_COMMIT);
    return 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& c : commands()) {
    if (args[0] != c.name) continue;
    if (asks_help(rest)) {
      if (world.root()) std::fputs(c.help().c_str(), stdout);
      return 0;
    }
    return c.run(rest, world);
  }
  if (world.root())
    std::fprintf(stderr, "dualnet: error: unknown command '%s' (try 'dualnet --help')\n", args[0].c_str());
  return 2;
}

}  // namespace

int run_cli(int argc, char* argv[], const World& world) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc), world);
  } catch (const Error& e) {
    const int code = dynamic_cast<const UsageError*>(&e) ? 2 : 1;
    if (e.all_ranks || world.size == 1) {
      if (world.root()) std::fprintf(stderr, "dualnet: error: %s\n", one_line(e.what()).c_str());
      return code;
    }
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, one_line(e.what()).c_str());
    std::fflush(stderr);
    MPI_Abort(world.comm, code);
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dualnet: error on rank %d: %s\n", world.rank, one_line(e.what()).c_str());
    std::fflush(stderr);
    if (world.size > 1) MPI_Abort(world.comm, 1);
    return 1;
  }
}

}  // namespace dualnet
