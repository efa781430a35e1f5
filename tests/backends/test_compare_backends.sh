#!/usr/bin/env bash
# compare_backends.sh must be able to fail: with DUALNET_BIN as both builds it passes (exit 0),
# and with seed=2 for the candidate only it must report the difference (exit 1, not a usage
# or set-up error). ctest: backends.compare_script.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${DUALNET_BIN:?set DUALNET_BIN to a dualnet binary}
keys="epochs=1 samples_per_pass=3840"

bash "$here/compare_backends.sh" --keys "$keys" "$bin" "$bin"
rc=$?
[[ $rc -eq 0 ]] || { echo "FAIL: the same binary twice gave exit $rc, not 0" >&2; exit 1; }
bash "$here/compare_backends.sh" --keys "$keys" --candidate-keys seed=2 "$bin" "$bin" 2>&1 | tail -n 3
rc=${PIPESTATUS[0]}
[[ $rc -eq 1 ]] || { echo "FAIL: a candidate with another seed gave exit $rc, not 1" >&2; exit 1; }
echo "PASS: identical runs pass, a run with another seed fails"
