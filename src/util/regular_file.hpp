#pragma once
// Files named by users, checked before any work: an input must be a regular, readable file
// of bounded size (a directory, FIFO, socket or device is refused, and nothing blocks); an
// output must be creatable or replaceable as a regular file. Problems are UsageError with
// one line naming `what` and the path.
#include <cstddef>
#include <string>

namespace dualnet {

// The whole content of `path`. Refused: an empty path, a missing or unreadable file, a
// directory, FIFO, socket or device, a file larger than `max_bytes`.
// `what` names the file's role in messages ("config file").
std::string read_regular_file(const std::string& path, const std::string& what, std::size_t max_bytes);

// Checks that `path` can be written as a regular file, without writing it: its directory
// exists and accepts a new file (tried by creating and removing a temporary file there), and
// `path` is not a directory or another non-regular file; an existing regular file must be
// writable (it will be replaced). Leaves nothing behind.
void check_output_file(const std::string& path, const std::string& what);

}  // namespace dualnet
