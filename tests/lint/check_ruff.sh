#!/usr/bin/env bash
# ruff (ruff.toml at the top) finds nothing in the Python code: analysis/, jobs/, tests/.
#
#   tests/lint/check_ruff.sh [RUFF]     # default: .venv/bin/ruff (cmake/setup-debian.sh installs it)
#
# Exit status: 0 clean, 1 findings or no ruff (a set-up error, not a skip).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
ruff=${1:-$repo/.venv/bin/ruff}
[[ -x $ruff ]] || { echo "no $ruff: run cmake/setup-debian.sh (it installs ruff into .venv)" >&2; exit 1; }
"$ruff" --version
"$ruff" check --no-cache analysis jobs tests
