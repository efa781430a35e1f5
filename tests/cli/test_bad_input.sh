#!/usr/bin/env bash
# Bad input, at 1 and 2 ranks: every case must end with a non-zero exit code, exactly one
# line on stderr that names the problem (no stack trace, no abort banner), within the time
# limit (no rank left hanging), and without changing any existing file.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
py=${DUALNET_PYTHON:-$repo/.venv/bin/python}
[[ -x $py ]] || fail "no Python with h5py at $py (run cmake/setup-debian.sh, or set DUALNET_PYTHON)"
work=$(mktemp -d)
logs=$(mktemp -d)  # outside $work, whose files must not change
trap 'rm -rf "$work" "$logs"' EXIT
cd "$work"

# Fixtures: a finished run with checkpoints, damaged copies of it, files of every kind.
small=(depth=3 hid=4 samples_per_pass=512 batch=64 epochs=2)
dualnet_np 1 train "${small[@]}" out=run >/dev/null
ckpt() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")"; }
cp -r run truncated && f=$(ckpt truncated) && head -c 3000 "$f" >"$f.cut" && mv "$f.cut" "$f"
cp -r run corrupted && "$py" - "$(ckpt corrupted)" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    offset = f["params"].id.get_offset()
with open(sys.argv[1], "r+b") as raw:   # flip bits inside the weights, leave HDF5 intact
    raw.seek(offset + 16); b = raw.read(8); raw.seek(offset + 16)
    raw.write(bytes(x ^ 0x5A for x in b))
PY
cp -r run newer && "$py" -c "import h5py,sys; h5py.File(sys.argv[1],'r+').attrs['format_version']=99" "$(ckpt newer)"
cp -r run foreign && "$py" -c "import h5py,sys; h5py.File(sys.argv[1],'w').create_dataset('x',data=[1])" foreign/metrics.h5
mkdir -p nockpt && touch nockpt/metrics.h5
printf 'depth = 3\nhid = [1, 2\n' >malformed.toml
printf 'depth = 3\n' >good.toml
printf 'depth = 3\nwidth = 4\n' >unknown.toml
printf '[network]\nhid = 4\n' >nested.toml
printf 'not a dir' >afile
mkdir -p existing && echo keep >existing/notes.txt

cases=(
  # expected-word  |  arguments
  "unknown key 'hidd'|hidd=4"
  "depth|depth=abc"
  "lr|lr=fast"
  "bias|bias=maybe"
  "hid|hid=0"
  "delta_upper|delta_upper=1.5"
  "lr|lr=-0.1"
  "delta_lower|delta_lower=0.9 delta_upper=0.8"
  "loss|loss=mse"
  "negatives|loss=triplet negatives=2"
  "share_levels|depth=3 share_levels=4"
  "micro_batch|batch=64 micro_batch=3"
  "samples_per_pass|batch=64 samples_per_pass=1000"
  "num_children|depth=20 num_children=16"
  "memory|depth=11 num_children=4 hid=64 out=big"
  "not of the form key=value|good.toml depth"
  "malformed TOML|malformed.toml"
  "cannot be read|missing.toml"
  "unknown key 'width'|unknown.toml"
  "network|nested.toml"
  "already exists|out=existing"
  "not a directory|out=afile"
  "cannot create|out=/proc/dualnet-test"
  "out|out="
  "truncated|resume=truncated"
  "checksum|resume=corrupted"
  "newer|resume=newer"
  "hid 4 vs 8|resume=run hid=8"
  "seed|resume=run seed=2"
  "not a dualnet metrics file|resume=foreign"
  "no checkpoint|resume=nockpt"
  "does not exist|resume=run/checkpoints/ckpt-none.h5"
  "unknown command|trian"
)

snapshot() { find . -path ./big -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; }
before=$(snapshot)
n=0
for np in 1 2; do
  for c in "${cases[@]}"; do
    want=${c%%|*}
    read -r -a args <<<"${c#*|}"
    [[ ${args[0]} == trian ]] || args=(train "${args[@]}")
    if [[ $np == 2 ]]; then args+=(batch=64); fi  # divisible by 2 ranks; the case's own value comes first
    rc=0
    if [[ $np == 1 ]]; then launch=("$bin"); else launch=("${mpiexec[@]}" -q -n "$np" "$bin"); fi
    timeout 60 "${launch[@]}" "${args[@]}" >"$logs/out" 2>"$logs/err" || rc=$?
    lines=$(wc -l <"$logs/err")
    [[ $rc != 124 ]] || fail "[$np ranks] ${args[*]}: hung (killed after 60 s)"
    [[ $rc != 0 ]] || fail "[$np ranks] ${args[*]}: exit code 0"
    [[ $lines == 1 ]] || fail "[$np ranks] ${args[*]}: $lines lines on stderr: $(cat "$logs/err")"
    grep -qF -- "$want" "$logs/err" || fail "[$np ranks] ${args[*]}: stderr does not name '$want': $(cat "$logs/err")"
    if grep -qiE 'terminate|abort|backtrace|core dumped' "$logs/err"; then
      fail "[$np ranks] ${args[*]}: crash output: $(cat "$logs/err")"
    fi
    printf '[%d rank(s)] exit %d  %-45s %s\n' "$np" "$rc" "${args[*]}" "$(cat "$logs/err")"
    n=$((n + 1))
  done
done
after=$(snapshot)
[[ $after == "$before" ]] || fail "a bad input changed an existing file: $(diff <(echo "$before") <(echo "$after"))"
[[ ! -e big ]] || fail "a refused run created its directory"
echo "PASS: $n bad-input cases (${#cases[@]} at 1 and 2 ranks), each refused with one line, nothing changed"
