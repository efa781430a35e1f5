#pragma once
// MPI error checks, one style everywhere: DUALNET_MPI_CHECK(MPI_Xxx(...)) throws a
// RuntimeError "file:line: MPI call failed: MPI_Xxx(...): <MPI's reason>" when the call does
// not return MPI_SUCCESS. Under MPI's default handler (MPI_ERRORS_ARE_FATAL) a failed call
// aborts the job before returning; the check is what is left when a handler returns errors.
#include <mpi.h>

#include <string>

#include "util/error.hpp"

namespace dualnet {

[[noreturn]] inline void mpi_fail(int rc, const char* file, int line, const char* call) {
  char reason[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, reason, &len) != MPI_SUCCESS) len = 0;
  std::string what = std::string("MPI call failed: ") + call;
  if (len > 0) what += ": " + std::string(reason, static_cast<size_t>(len));
  throw RuntimeError(where(file, line, one_line(what)));
}

inline void mpi_check(int rc, const char* file, int line, const char* call) {
  if (rc != MPI_SUCCESS) mpi_fail(rc, file, line, call);
}

}  // namespace dualnet

#define DUALNET_MPI_CHECK(call) ::dualnet::mpi_check((call), __FILE__, __LINE__, #call)
