#!/usr/bin/env bash
# Class "paths": where a run goes and what it may replace. An existing directory is never
# touched without overwrite=true; every check that can refuse a run (keys, memory,
# reducer, allocation, lock) runs before anything is created, deleted or written, so a
# refused command leaves no directory behind and a refused overwrite=true keeps the run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work

dualnet_np 1 train "${small[@]}" out=run >/dev/null
mkdir -p existing && echo keep >existing/notes.txt
printf 'not a dir' >afile
mkfifo fifo

cases=(
  # expected words | arguments
  "already exists|out=existing"
  "already exists|out=run"
  "not a directory|out=afile"
  "not a directory|out=fifo"
  "cannot create|out=/proc/dualnet-test"
  "cannot create|out=afile/sub"
  # Outputs of the other commands are checked before any work.
  "json file '/proc/x'|bench json=/proc/x"
  "json file 'run'|bench json=run"
  "json file 'fifo'|bench json=fifo"
  "does not exist|bench json=nodir/x.json"
  "steps|bench steps=10x"
  "anchors|bench anchors=1e3"
  "report file '/proc/x.h5'|covop run file=/proc/x.h5"
  "argument is empty|covop ''"
  # Refused after parsing, by checks that used to run after the directory was prepared:
  # the run directory and its files must survive them (and no new directory appears).
  "reducer|${small[*]} overwrite=true reducer=nccl out=run"
  "reducer|${small[*]} reducer=nccl out=fresh"
  "memory|samples_per_pass=8796093022208 overwrite=true out=run"
  "memory|samples_per_pass=8796093022208 out=fresh"
  "memory|depth=11 num_children=4 hid=64 overwrite=true out=run"
)
run_refusals
[[ ! -e fresh ]] || fail "a refused run created its directory"

# The corrected command after a refusal is not refused as "already exists".
dualnet_np 1 train "${small[@]}" reducer=nccl out=second 2>/dev/null && fail "reducer=nccl accepted on a build without NCCL"
dualnet_np 1 train "${small[@]}" out=second >/dev/null
# overwrite=true replaces a run that is not in use, with a new identity.
old=$(sed -n 's/^run_id = //p' run/config.toml)
dualnet_np 2 train "${small[@]}" out=run overwrite=true >/dev/null
[[ $(sed -n 's/^run_id = //p' run/config.toml) != "$old" ]] || fail "an overwritten run must get a new run_id"
same_metrics run second
echo "PASS: paths"
