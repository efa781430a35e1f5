#pragma once
// Provenance: which build wrote an HDF5 file. Every file dualnet writes (metrics.h5,
// checkpoints, covop reports) carries the same root attributes, written here once:
// dualnet_version and git_commit (the source), kokkos_version and execution_space (the
// backend it ran on, e.g. "3.4.1" and "Serial"). Layout: docs/metrics-format.md.
#include <string>

#include "io/hdf5.hpp"

namespace dualnet {

// Writes the provenance attributes on `file` (its root group).
void write_provenance(const h5::Handle& file);

}  // namespace dualnet
