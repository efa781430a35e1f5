#!/usr/bin/env bash
# Class "checkpoints and identity": a resume continues exactly one run. Its checkpoint
# must be whole (every byte sealed by a checksum), inside the run directory, and carry the
# same run_id as the run's config.toml and metrics.h5; the requested config must keep the
# science keys and must not delete finished rows. Anything else is refused with one line,
# at 1 and 2 ranks, leaving every file as it was.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work

dualnet_np 1 train "${small[@]}" out=run >/dev/null
dualnet_np 1 train "${small[@]}" seed=2 out=other >/dev/null
dualnet_np 1 train "${small[@]}" hid=8 out=otherhid >/dev/null
name=$(cat run/checkpoints/latest)
copy() { cp -r run "$1"; }

copy truncated && head -c 3000 "$(latest_ckpt run)" >"truncated/checkpoints/$name"
copy corrupted && "$py" - "$(latest_ckpt corrupted)" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    offset = f["params"].id.get_offset()
with open(sys.argv[1], "r+b") as raw:   # flip bits inside the weights, leave HDF5 intact
    raw.seek(offset + 16); b = raw.read(8); raw.seek(offset + 16)
    raw.write(bytes(x ^ 0x5A for x in b))
PY
# One character of the stored config: lr = 0.1 becomes lr = 0.0 (HDF5 still reads it).
copy attrflip && "$py" - "$(latest_ckpt attrflip)" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
at = data.find(b"lr = 0.1")
assert at > 0, "no lr in the checkpoint"
data[at + 7] = ord("0")
open(sys.argv[1], "wb").write(data)
PY
copy rewritten && "$py" -c "import h5py,sys; h5py.File(sys.argv[1],'r+').attrs['epoch']=0" "$(latest_ckpt rewritten)"
# Another run's checkpoint, copied in and named by latest.
copy foreignckpt && cp "$(latest_ckpt other)" foreignckpt/checkpoints/ckpt-e000009-s000000000.h5 &&
  echo ckpt-e000009-s000000000.h5 >foreignckpt/checkpoints/latest
# latest pointing outside the run: by a path, and by a symbolic link.
copy pathlatest && echo "../../other/checkpoints/$name" >pathlatest/checkpoints/latest
copy linklatest && ln -s "$work/other/checkpoints/$name" linklatest/checkpoints/ckpt-e000009-s000000000.h5 &&
  echo ckpt-e000009-s000000000.h5 >linklatest/checkpoints/latest
copy garbagelatest && printf '\x01\xff\n' >garbagelatest/checkpoints/latest
copy fifolatest && rm fifolatest/checkpoints/latest && mkfifo fifolatest/checkpoints/latest
copy nolatest && rm nolatest/checkpoints/latest
# Other runs' metrics.h5 and config.toml.
copy foreignmetrics && cp other/metrics.h5 foreignmetrics/metrics.h5
copy hidmetrics && cp otherhid/metrics.h5 hidmetrics/metrics.h5
copy foreignconfig && cp other/config.toml foreignconfig/config.toml
copy nometrics && rm nometrics/metrics.h5
copy dirmetrics && rm dirmetrics/metrics.h5 && mkdir dirmetrics/metrics.h5
copy noconfig && rm noconfig/config.toml
cp "$(latest_ckpt run)" loose.h5
mkdir -p empty

cases=(
  # expected words | arguments
  "truncated|resume=truncated"
  "checksum|resume=corrupted"
  "checksum|resume=attrflip"
  "checksum|resume=rewritten"
  "belongs to run|resume=foreignckpt"
  "latest|resume=pathlatest"
  "outside the run directory|resume=linklatest"
  "latest|resume=garbagelatest"
  "latest|resume=fifolatest"
  "no checkpoint|resume=nolatest"
  "belongs to run|resume=foreignmetrics"
  "hidmetrics/metrics.h5|resume=hidmetrics"
  "belongs to run|resume=foreignconfig"
  "nometrics/metrics.h5|resume=nometrics"
  "dirmetrics/metrics.h5|resume=dirmetrics"
  "noconfig/config.toml|resume=noconfig"
  "neither a run directory nor|resume=loose.h5"
  "does not exist|resume=run/checkpoints/ckpt-none.h5"
  "does not exist|resume=nowhere"
  "no checkpoint|resume=empty"
  "fewer|resume=run epochs=1"
  "fewer|resume=run epochs=0"
  "hid 4 vs 8|resume=run hid=8"
  "seed|resume=run seed=2"
  "out must not name another directory|resume=run out=other"
  "run_id|resume=run run_id=x"
)
run_refusals

# What stays allowed: extending a finished run, and resuming from an explicit checkpoint.
cp -r run extended
dualnet_np 2 train resume=extended epochs=3 >/dev/null
dualnet_np 1 train resume="$(latest_ckpt run)" >/dev/null
echo "PASS: checkpoints and identity"
