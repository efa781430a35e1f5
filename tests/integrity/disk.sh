#!/usr/bin/env bash
# Class "disk": the disk fills while a run writes. Whatever write hits it — config.toml,
# metrics.h5, a checkpoint, timing.json, a covop report — the run ends with one line and
# exit != 0 on every rank, the rows and checkpoints written before stay intact (a prefix
# of an undisturbed run's), no temporary file is left, and once space is freed the run
# resumes (or, if it had no checkpoint yet, is started again) to bit-identical metrics.
# Runs on a small tmpfs; exits 77 (skipped) where mounting one is not permitted.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work=$(mktemp -d)
logs=$(mktemp -d)
disk=$work/disk
mkdir -p "$disk"
cleanup() {
  umount "$disk" 2>/dev/null || true
  rm -rf "$work" "$logs"
}
trap cleanup EXIT
size=2m
if ! mount -t tmpfs -o "size=$size" tmpfs "$disk" 2>"$logs/mount"; then
  echo "SKIPPED: cannot mount a tmpfs here ($(cat "$logs/mount")); the disk-full tests need one"
  exit 77
fi
cd "$work"
page=4096
capacity=$(($(stat -f -c '%b' "$disk") * $(stat -f -c '%S' "$disk")))

# prefix_of RUN REFERENCE: every /metrics dataset of RUN equals the first rows of REFERENCE's.
prefix_of() {
  "$py" - "$1/metrics.h5" "$2/metrics.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    n = a["metrics/epoch"].shape[0]
    for name in a["metrics"]:
        if name == "samples_per_s" or a["metrics"][name].shape[:1] != a["metrics/epoch"].shape[:1]:
            continue
        x, y = a["metrics"][name][...], b["metrics"][name][:n]
        if not np.array_equal(x, y, equal_nan=True):
            sys.exit(f"rows of /metrics/{name} differ from the undisturbed run's")
PY
}

hits=""
# sweep NAME NP KEY=VALUE...: runs the config with F bytes free for F over [0, peak], where
# peak is the largest usage of an undisturbed run, in about 24 steps.
sweep() {
  local name=$1 np=$2
  shift 2
  local cfg=("$@" keep_checkpoints=2)
  dualnet_np "$np" train "${cfg[@]}" out="$work/ref-$name" >/dev/null
  local need steps free rc writer
  need=$(du -s --block-size=1 "$work/ref-$name" | cut -f1)
  need=$((need * 2 + 8 * page))  # a metrics append holds the old and the new file at once
  steps=24
  for ((i = 0; i <= steps; i++)); do
    free=$((i * need / steps / page * page))
    rm -rf "${disk:?}"/*
    head -c $((capacity - free)) /dev/zero >"$disk/pad" 2>/dev/null || true
    rc=0
    local launch=("$bin")
    [[ $np == 1 ]] || launch=("${mpiexec[@]}" -q -n "$np" "$bin")
    timeout 120 "${launch[@]}" train "${cfg[@]}" out="$disk/run" >"$logs/out" 2>"$logs/err" </dev/null || rc=$?
    [[ $rc != 124 ]] || fail "$name, $free bytes free: hung"
    if [[ $rc == 0 ]]; then
      same_metrics "$work/ref-$name" "$disk/run" >/dev/null || fail "$name: a run that fit differs"
      continue
    fi
    [[ $(error_lines "$logs/err") == 1 ]] || fail "$name, $free bytes free: exit $rc, $(error_lines "$logs/err") lines: $(head -c 1500 "$logs/err")"
    grep -qiE 'terminate|abort|backtrace|core dumped|segmentation' "$logs/err" && fail "$name, $free bytes free: crash: $(cat "$logs/err")"
    writer=$(grep -oE 'config\.toml|metrics\.h5|ckpt-|timing\.json|latest' "$logs/err" | head -1 || true)
    [[ -n $writer ]] || fail "$name, $free bytes free: the error does not name the file: $(cat "$logs/err")"
    hits="$hits $writer"
    local message
    message=$(cat "$logs/err")
    if find "$disk" -name '*.tmp*' | grep -q .; then fail "$name, $free bytes free: temporary files left: $(find "$disk" -name '*.tmp*')"; fi
    [[ ! -f $disk/run/metrics.h5 ]] || prefix_of "$disk/run" "$work/ref-$name" || fail "$name, $free bytes free: earlier rows damaged"
    rm -f "$disk/pad"
    if [[ -f $disk/run/checkpoints/latest ]]; then
      dualnet_np "$np" train resume="$disk/run" >/dev/null 2>"$logs/err" || fail "$name, $free bytes free: resume failed: $(cat "$logs/err")"
    else
      # Nothing to resume: the failed run must have left nothing that blocks a new start.
      dualnet_np "$np" train "${cfg[@]}" out="$disk/run" >/dev/null 2>"$logs/err" ||
        fail "$name, $free bytes free: starting again failed: $(cat "$logs/err")"
    fi
    same_metrics "$work/ref-$name" "$disk/run" >/dev/null || fail "$name, $free bytes free: the completed run differs"
    printf '%s [%d] %7d bytes free: %-12s %s\n' "$name" "$np" "$free" "$writer" "${message:0:110}"
  done
}

sweep metrics-heavy 1 "${small[@]}" epochs=6
sweep checkpoint-heavy 1 depth=3 hid=32 samples_per_pass=512 batch=64 epochs=3
sweep two-ranks 2 "${small[@]}" epochs=4
for w in config.toml metrics.h5 ckpt-; do
  [[ $hits == *"$w"* ]] || fail "no disk-full case hit $w (hits:$hits); adjust the sweep"
done
echo "ok: disk-full failures hit:$(tr ' ' '\n' <<<"$hits" | sort | uniq -c | tr '\n' ' ')"

# timing.json is written last and is smaller than what the run needed before it; a
# directory in the way of its temporary file makes the same write fail.
cp -r "$work/ref-metrics-heavy" "$work/late"
rm "$work/late/timing.json"
mkdir "$work/late/timing.json.tmp"
rc=0
"$bin" train resume="$work/late" >/dev/null 2>"$logs/err" || rc=$?
if [[ $rc == 0 || $(error_lines "$logs/err") != 1 ]] || ! grep -q timing.json "$logs/err"; then
  fail "timing.json failure: exit $rc: $(cat "$logs/err")"
fi
rmdir "$work/late/timing.json.tmp"
"$bin" train resume="$work/late" >/dev/null
[[ -f $work/late/timing.json ]] || fail "no timing.json after the resume"
same_metrics "$work/ref-metrics-heavy" "$work/late"

# A covop report on a full disk: one line, no partial report.
rm -rf "${disk:?}"/*
head -c "$capacity" /dev/zero >"$disk/pad" 2>/dev/null || true
rc=0
"$bin" covop "$work/ref-metrics-heavy" batch=4096 samples=4096 file="$disk/report.h5" >/dev/null 2>"$logs/err" || rc=$?
[[ $rc != 0 && $(error_lines "$logs/err") == 1 ]] || fail "covop on a full disk: exit $rc: $(cat "$logs/err")"
if [[ -e $disk/report.h5 ]] || find "$disk" -name '*.tmp*' | grep -q .; then fail "covop left a partial report"; fi
echo "PASS: disk full"
