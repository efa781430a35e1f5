#!/usr/bin/env bash
# Runs shellcheck on every shell script under jobs/, tests/, cmake/ and .ci/ (bash scripts by extension .sh/.sbatch
# or by a bash shebang; sourced libraries are followed with -x).
#
#   tests/slurm/test_shellcheck.sh
#
# Exit status: 0 clean, 1 findings (printed), 77 skipped (shellcheck not installed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

command -v shellcheck >/dev/null 2>&1 || { echo "SKIPPED: shellcheck is not installed"; exit 77; }

scripts=()
while IFS= read -r -d '' f; do
    case "$f" in
        *.sh|*.sbatch|*.bash) scripts+=("$f") ;;
        *)
            # Extensionless executables with a shell shebang count too.
            if head -n 1 "$f" 2>/dev/null | grep -qE '^#!.*\b(ba)?sh\b'; then scripts+=("$f"); fi ;;
    esac
done < <(find jobs tests cmake .ci -type f ! -path '*/__pycache__/*' ! -name '*.py' ! -name '*.toml' \
    ! -name '*.md' ! -name '*.txt' ! -name '*.cpp' ! -name '*.hpp' ! -name '*.h5' -print0 2>/dev/null | sort -z)

((${#scripts[@]} > 0)) || { echo "no shell scripts found under jobs/, tests/, cmake/ and .ci/"; exit 1; }
echo "shellcheck $(shellcheck --version | sed -n 's/^version: //p') on ${#scripts[@]} scripts"
if shellcheck -x -S style "${scripts[@]}"; then
    printf '  %s\n' "${scripts[@]}"
    echo "shellcheck: clean"
else
    exit 1
fi
