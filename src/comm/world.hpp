#pragma once
// The MPI world as dualnet uses it: rank, size, local rank, and the few collective helpers
// that keep every rank in agreement (an error on one rank becomes the same error on all,
// so a bad input never leaves the others waiting in a collective).
#include <mpi.h>

#include <string>
#include <vector>

namespace dualnet {

struct World {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0;
  int size = 1;
  // The one place the local rank is computed (from_mpi: the ranks sharing memory with this
  // one, MPI_COMM_TYPE_SHARED); the device choice and the NCCL reducer read it here.
  int local_rank = 0;  // rank among the ranks on the same host
  int local_size = 1;  // ranks on the same host
  int nodes = 1;       // distinct hosts
  // Ranks per host, fewest and most (equal on a regular layout); for the header and timing.json.
  int min_ranks_per_node = 1;
  int max_ranks_per_node = 1;
  // Every rank's host name and local rank, by rank (gathered once in from_mpi): timing.json
  // records them so that a test can check the local-rank detection across nodes.
  std::vector<std::string> hosts{""};
  std::vector<int> local_ranks{0};
  // Whether MPI was started for a process with other threads, all MPI calls on the main one
  // (MPI_THREAD_FUNNELED or more): rank 0's write-behind thread needs it (io/write_behind.hpp).
  bool threads = false;
  static World from_mpi();
  bool root() const { return rank == 0; }
};

// Every rank calls this with its own outcome; if any rank failed, all ranks throw the
// first failing rank's message (UsageError if `usage`, else RuntimeError).
void agree(const World& w, const std::string& local_error, bool usage);

// Runs f() on every rank and turns a failure anywhere into the same exception everywhere.
template <class F>
void on_all_ranks(const World& w, F&& f);

std::string broadcast_string(const World& w, const std::string& s, int from = 0);

}  // namespace dualnet

#include "util/error.hpp"

template <class F>
void dualnet::on_all_ranks(const World& w, F&& f) {
  std::string err;
  bool usage = false;
  try {
    f();
  } catch (const UsageError& e) {
    err = e.what();
    usage = true;
  } catch (const std::exception& e) {
    err = e.what();
  }
  agree(w, err, usage);
}
