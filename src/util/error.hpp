#pragma once
// Errors dualnet reports to a user. Library code throws; only main() decides the exit code.
//   UsageError   -> exit 2: the user asked for something invalid (config, files, sizes).
//   RuntimeError -> exit 1: something failed while running (I/O, MPI, numerics).
#include <stdexcept>
#include <string>

namespace dualnet {

// all_ranks: every rank has thrown this same error (comm/world.hpp agree()), so ranks can
// exit together; otherwise main() aborts the MPI job rather than leave others waiting.
struct Error : std::runtime_error {
  explicit Error(const std::string& what, bool all_ranks_ = false) : std::runtime_error(what), all_ranks(all_ranks_) {}
  bool all_ranks;
};

struct UsageError : Error {
  using Error::Error;
};

struct RuntimeError : Error {
  using Error::Error;
};

// "file.cpp:123: what" — for checks on library calls whose failure is not the user's fault.
std::string where(const char* file, int line, const std::string& what);

// A message as one line: line breaks and other control characters become spaces, runs of
// them one space (a library's multi-line text, or a user's value echoed back).
std::string one_line(const std::string& text);

}  // namespace dualnet

#define DUALNET_FAIL(msg) throw ::dualnet::RuntimeError(::dualnet::where(__FILE__, __LINE__, (msg)))
