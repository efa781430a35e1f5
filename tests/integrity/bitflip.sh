#!/usr/bin/env bash
# Class "bit flips": one flipped bit anywhere in a run's checkpoint, metrics.h5 or
# config.toml. For every damaged position the resume must either refuse with one line and
# exit != 0 within 10 s (no hang, no crash), or finish with metrics and weights identical
# to the resume of the undamaged run. Positions are spread over the whole of each file.
#   FLIPS=N (default 300) positions per HDF5 file, N/3 in config.toml.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work
flips=${FLIPS:-300}

dualnet_np 1 train "${small[@]}" out=run >/dev/null
cp -r run reference
dualnet_np 1 train resume=reference epochs=3 >/dev/null

# damage FILE INDEX COUNT: flips bit (INDEX % 8) of one byte in the INDEX-th of COUNT equal
# strides of FILE, at a pseudo-random offset inside the stride (fixed per INDEX).
damage() {
  "$py" - "$@" <<'PY'
import os, random, sys
path, index, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = os.path.getsize(path)
stride = size / count
pos = int(index * stride + random.Random(index).random() * stride)
with open(path, "r+b") as f:
    f.seek(pos); b = f.read(1)[0]; f.seek(pos); f.write(bytes([b ^ (1 << (index % 8))]))
print(pos)
PY
}

refused=0 identical=0
trial() {
  local file=$1 index=$2 count=$3 rc=0 pos
  rm -rf damaged && cp -r run damaged
  local target=damaged/$file
  [[ $file == checkpoint ]] && target=$(latest_ckpt damaged)
  pos=$(damage "$target" "$index" "$count")
  timeout 10 "$bin" train resume=damaged epochs=3 >"$logs/out" 2>"$logs/err" </dev/null || rc=$?
  [[ $rc != 124 ]] || fail "$file byte $pos: resume hung (> 10 s)"
  if grep -qiE 'terminate|abort|backtrace|core dumped|segmentation' "$logs/err"; then
    fail "$file byte $pos: crash output: $(head -c 500 "$logs/err")"
  fi
  if [[ $rc != 0 ]]; then
    [[ $(error_lines "$logs/err") == 1 ]] || fail "$file byte $pos: exit $rc with $(error_lines "$logs/err") lines: $(head -c 500 "$logs/err")"
    refused=$((refused + 1))
  else
    if ! same_metrics reference damaged 2>"$logs/diff" || ! same_weights reference damaged 2>>"$logs/diff"; then
      fail "$file byte $pos: accepted, but the resume differs from the undamaged one: $(head -3 "$logs/diff")"
    fi
    identical=$((identical + 1))
  fi
}

for file in checkpoint metrics.h5 config.toml; do
  n=$flips
  [[ $file == config.toml ]] && n=$((flips / 3))
  refused=0 identical=0
  for ((i = 0; i < n; i++)); do trial "$file" "$i" "$n"; done
  echo "ok: $file ($(stat -c %s "$(if [[ $file == checkpoint ]]; then latest_ckpt run; else echo "run/$file"; fi)") bytes): $n flipped bits, $refused refused with one line, $identical resumed identically"
done
echo "PASS: bit flips"
