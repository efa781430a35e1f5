#include "comm/world.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "comm/mpi_check.hpp"
#include "util/error.hpp"

namespace dualnet {

World World::from_mpi() {
  World w;
  DUALNET_MPI_CHECK(MPI_Comm_rank(w.comm, &w.rank));
  DUALNET_MPI_CHECK(MPI_Comm_size(w.comm, &w.size));
  int level = MPI_THREAD_SINGLE;
  DUALNET_MPI_CHECK(MPI_Query_thread(&level));
  w.threads = level >= MPI_THREAD_FUNNELED;
  MPI_Comm local;
  DUALNET_MPI_CHECK(MPI_Comm_split_type(w.comm, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &local));
  DUALNET_MPI_CHECK(MPI_Comm_rank(local, &w.local_rank));
  DUALNET_MPI_CHECK(MPI_Comm_size(local, &w.local_size));
  int leader = w.local_rank == 0 ? 1 : 0;
  DUALNET_MPI_CHECK(MPI_Allreduce(&leader, &w.nodes, 1, MPI_INT, MPI_SUM, w.comm));
  DUALNET_MPI_CHECK(MPI_Comm_free(&local));
  DUALNET_MPI_CHECK(MPI_Allreduce(&w.local_size, &w.min_ranks_per_node, 1, MPI_INT, MPI_MIN, w.comm));
  DUALNET_MPI_CHECK(MPI_Allreduce(&w.local_size, &w.max_ranks_per_node, 1, MPI_INT, MPI_MAX, w.comm));
  // Placement: each rank's host name (fixed-width, NUL-padded) and local rank, on every rank.
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  DUALNET_MPI_CHECK(MPI_Get_processor_name(name, &len));
  std::vector<char> names(static_cast<size_t>(w.size) * MPI_MAX_PROCESSOR_NAME);
  DUALNET_MPI_CHECK(
      MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, w.comm));
  w.local_ranks.assign(static_cast<size_t>(w.size), 0);
  DUALNET_MPI_CHECK(MPI_Allgather(&w.local_rank, 1, MPI_INT, w.local_ranks.data(), 1, MPI_INT, w.comm));
  w.hosts.clear();
  for (int r = 0; r < w.size; ++r) {
    const char* n = names.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME;
    w.hosts.emplace_back(n, strnlen(n, MPI_MAX_PROCESSOR_NAME));
  }
  return w;
}

std::string broadcast_string(const World& w, const std::string& s, int from) {
  long long n = static_cast<long long>(s.size());
  DUALNET_MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG_LONG, from, w.comm));
  std::string out = w.rank == from ? s : std::string(static_cast<size_t>(n), '\0');
  if (n > 0) DUALNET_MPI_CHECK(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, from, w.comm));
  return out;
}

void agree(const World& w, const std::string& local_error, bool usage) {
  // Lowest failing rank speaks for all; its kind of error (usage or runtime) is kept.
  int mine = local_error.empty() ? w.size : w.rank;
  int first = w.size;
  DUALNET_MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, w.comm));
  if (first == w.size) return;
  const std::string msg = broadcast_string(w, local_error, first);
  int kind = usage ? 1 : 0;
  DUALNET_MPI_CHECK(MPI_Bcast(&kind, 1, MPI_INT, first, w.comm));
  std::string prefix = (w.size > 1 && first != 0) ? "rank " + std::to_string(first) + ": " : "";
  if (kind == 1) throw UsageError(prefix + msg, true);
  throw RuntimeError(prefix + msg, true);
}

}  // namespace dualnet
