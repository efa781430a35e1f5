// dualnet: twin deep ReLU networks on a hierarchical latent tree model (Tian et al. 2020),
// Kokkos kernels, MPI data parallelism, HDF5 output. main() owns the MPI and Kokkos
// lifetimes and turns errors into exit codes: 2 for bad input, 1 for failures.
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "comm/device_select.hpp"
#include "comm/world.hpp"
#include "commands/commands.hpp"
#include "io/hdf5.hpp"
#include "util/error.hpp"
#include "util/kokkos_compat.hpp"

namespace {

// --kokkos-help, --kokkos-tools-help: Kokkos prints the help while it initializes. Rank 0
// alone asks it and then stops; nothing else runs or is created.
int print_kokkos_help(const std::string& argv0, const dualnet::KokkosOptions& opts, dualnet::KokkosArgs* tools_args,
                      const dualnet::World& world) {
  if (!world.root()) return 0;
  std::unique_ptr<dualnet::KokkosArgs> plain;
  dualnet::KokkosArgs* args = tools_args;  // the tools' help needs the tool: the checked options
  std::string help_flag = "--kokkos-help";
  if (opts.help) {
    // Nothing but the help option, and no KOKKOS_* variable that could make Kokkos abort.
    for (const char* v :
         {"KOKKOS_NUM_THREADS", "KOKKOS_NUMA", "KOKKOS_DEVICE_ID", "KOKKOS_NUM_DEVICES", "KOKKOS_RAND_DEVICES",
          "KOKKOS_SKIP_DEVICE", "KOKKOS_MAP_DEVICE_ID_BY", "KOKKOS_VISIBLE_DEVICES", "KOKKOS_DISABLE_WARNINGS",
          "KOKKOS_TUNE_INTERNALS", "KOKKOS_PRINT_CONFIGURATION", "KOKKOS_PROFILE_LIBRARY", "KOKKOS_TOOLS_LIBS",
          "KOKKOS_TOOLS_ARGS"})
      ::unsetenv(v);
    dualnet::World self = world;
    self.local_rank = 0;
    plain = std::make_unique<dualnet::KokkosArgs>(argv0, dualnet::KokkosOptions(), self);
    args = plain.get();
  }
  if (!args->no_device().empty()) {
    std::fprintf(stderr, "dualnet: %s\n", args->no_device().c_str());
    return 1;
  }
  std::vector<char*> argv(args->argv(), args->argv() + args->argc());
  if (opts.help) argv.push_back(help_flag.data());
  argv.push_back(nullptr);
  int argc = static_cast<int>(argv.size()) - 1;
  Kokkos::initialize(argc, argv.data());
  Kokkos::finalize();
  std::cout.flush();
  if (opts.help) std::fputs(dualnet::kokkos_help_note().c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  // Funneled: rank 0 writes its files on a second thread that never calls MPI (io/write_behind.hpp).
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rc = 0;
  {
    const dualnet::World world = dualnet::World::from_mpi();
    // Kokkos sees only its own arguments (it would answer a plain --help with its own help
    // text); dualnet's command line gets the rest.
    std::vector<std::string> kokkos_args;
    std::vector<char*> cli_argv{argv[0]};
    for (int i = 1; i < argc; ++i) {
      if (dualnet::is_kokkos_argument(argv[i]))
        kokkos_args.emplace_back(argv[i]);
      else
        cli_argv.push_back(argv[i]);
    }
    // Checked on every rank and agreed on (comm/world.hpp): a bad option is one line from
    // rank 0 and exit 2 on every rank, before Kokkos could abort.
    dualnet::KokkosOptions opts;
    std::unique_ptr<dualnet::KokkosArgs> args;
    try {
      dualnet::on_all_ranks(world, [&] { opts = dualnet::parse_kokkos_options(kokkos_args, std::getenv); });
      if (!opts.help) {
        dualnet::apply_kokkos_environment(opts);
        dualnet::on_all_ranks(world, [&] { args = std::make_unique<dualnet::KokkosArgs>(argv[0], opts, world); });
      }
    } catch (const dualnet::Error& e) {
      if (world.root()) std::fprintf(stderr, "dualnet: error: %s\n", e.what());
      rc = 2;
    }
    if (rc != 0) {
      // refused above
    } else if (opts.help || opts.tools_help) {
      rc = print_kokkos_help(argv[0], opts, args.get(), world);
    } else if (!args->no_device().empty()) {
      if (world.root()) std::fprintf(stderr, "dualnet: %s\n", args->no_device().c_str());
      rc = 1;
    } else {
      Kokkos::initialize(args->argc(), args->argv());
      if (opts.print_configuration && world.root()) Kokkos::print_configuration(std::cout);
      std::cout.flush();
      dualnet::h5::quiet_errors();
      try {  // DUALNET_HOST_TEAM_SIZE against the backend's threads (util/kokkos_compat.hpp)
        dualnet::on_all_ranks(world, [] { dualnet::host_team_size(); });
      } catch (const dualnet::Error& e) {
        if (world.root()) std::fprintf(stderr, "dualnet: error: %s\n", e.what());
        rc = 2;
      }
      if (rc == 0) rc = dualnet::run_cli(static_cast<int>(cli_argv.size()), cli_argv.data(), world);
      Kokkos::finalize();
    }
  }
  MPI_Finalize();
  return rc;
}
