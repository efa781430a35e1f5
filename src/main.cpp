// dualnet: twin deep ReLU networks on a hierarchical latent tree model (Tian et al. 2020),
// Kokkos kernels, MPI data parallelism, HDF5 output. main() owns the MPI and Kokkos
// lifetimes and turns errors into exit codes: 2 for bad input, 1 for failures.
#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cli.hpp"
#include "comm/device_select.hpp"
#include "comm/world.hpp"
#include "io/hdf5.hpp"
#include "util/error.hpp"

int main(int argc, char* argv[]) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    const dualnet::World world = dualnet::World::from_mpi();
    // Kokkos sees only its own --kokkos-* arguments (it would answer a plain --help with
    // its own help text); dualnet's command line gets the rest.
    std::vector<char*> kokkos_argv{argv[0]}, cli_argv{argv[0]};
    for (int i = 1; i < argc; ++i)
      (std::strncmp(argv[i], "--kokkos-", 9) == 0 ? kokkos_argv : cli_argv).push_back(argv[i]);
    dualnet::KokkosArgs args(static_cast<int>(kokkos_argv.size()), kokkos_argv.data(), world);  // one GPU per rank
    if (!args.no_device().empty()) {
      if (world.root()) std::fprintf(stderr, "dualnet: %s\n", args.no_device().c_str());
      rc = 1;
    } else {
      Kokkos::initialize(args.argc(), args.argv());  // consumes --kokkos-* arguments
      dualnet::h5::quiet_errors();
      rc = dualnet::run_cli(static_cast<int>(cli_argv.size()), cli_argv.data(), world);
      Kokkos::finalize();
    }
  }
  MPI_Finalize();
  return rc;
}
