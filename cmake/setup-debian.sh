#!/usr/bin/env bash
# Installs everything dualnet needs on a fresh Debian 12 machine (as root): the Debian
# packages for the build, the tests and the local Slurm cluster, and a Python virtual
# environment (.venv) with the analysis package. Safe to run again.
#   bash cmake/setup-debian.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
packages=(
  build-essential cmake git pkg-config
  libtrilinos-kokkos-dev                  # Kokkos 3.4.1, Serial backend
  libopenmpi-dev openmpi-bin              # MPI
  libhdf5-openmpi-dev hdf5-tools          # parallel HDF5 (C and HL)
  librandom123-dev libtoml11-dev          # Philox counters, TOML configs
  nlohmann-json3-dev                      # JSON output (timing.json, bench json=)
  libgtest-dev                            # unit tests
  slurm-wlm munge                         # the Slurm test clusters of tests/slurm
  iproute2                                # network namespaces of the multi-node cluster (ip netns)
  shellcheck clang-format                 # lint and format checks (tests/lint/)
  python3-venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root (apt-get needs it), or install these packages first: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

if [[ ! -x $repo/.venv/bin/python ]]; then
  echo "setup: creating $repo/.venv"
  python3 -m venv "$repo/.venv"
fi
"$repo/.venv/bin/pip" install -q --upgrade pip
"$repo/.venv/bin/pip" install -q -e "$repo/analysis[xarray,test]"
# ruff (Python lint, ruff.toml; not a Debian package), pinned: a new release may add findings.
"$repo/.venv/bin/pip" install -q "ruff==0.17.5"
echo "setup: done (analysis: $repo/.venv/bin/dualnet-analyze)"
