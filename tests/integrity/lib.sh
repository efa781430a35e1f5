#!/usr/bin/env bash
# Shared by the integrity tests (one script per class of fault: values, config files,
# paths, checkpoints and identity, bit flips, disk, readers, concurrency). A refusal case
# is one line "expected words|arguments" in a script's `cases` array; run_refusals runs
# every case at 1 and 2 ranks and requires of each: exit code != 0, exactly one line on
# stderr naming the problem, no crash or abort output, no rank left hanging, and not one
# byte of any file in the work directory changed, created or removed.
# shellcheck source-path=SCRIPTDIR source=../cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"
# shellcheck disable=SC2034  # used by the scripts that source this file
py=${DUALNET_PYTHON:-$repo/.venv/bin/python}

# Every path under the current directory with its type, link target and content hash.
snapshot() {
  find . -printf '%y %p -> %l\n' | LC_ALL=C sort
  find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
}

# A small run used as a fixture by several classes.
# shellcheck disable=SC2034
small=(depth=3 hid=4 samples_per_pass=512 batch=64 epochs=2)

# refuse_one NP WANT ARGS...: one refused command (see the header for what is required).
refuse_one() {
  local np=$1 want=$2 rc=0 lines environment=()
  shift 2
  if [[ ${1:-} == env ]]; then  # env VAR=VALUE ...: the command's environment
    shift
    while [[ ${1:-} == [A-Z]*=* ]]; do environment+=("$1"); shift; done
  fi
  local launch=("$bin")
  [[ $np == 1 ]] || launch=("${mpiexec[@]}" -q -n "$np" "$bin")
  timeout 60 env "${environment[@]}" "${launch[@]}" "$@" >"$logs/out" 2>"$logs/err" </dev/null || rc=$?
  lines=$(wc -l <"$logs/err")
  [[ $rc != 124 ]] || fail "[$np] $*: hung (killed after 60 s)"
  [[ $rc != 0 ]] || fail "[$np] $*: exit code 0 (stdout: $(tail -2 "$logs/out"))"
  [[ $lines == 1 ]] || fail "[$np] $*: $lines lines on stderr: $(head -c 2000 "$logs/err")"
  grep -qF -- "$want" "$logs/err" || fail "[$np] $*: stderr does not name '$want': $(cat "$logs/err")"
  if [[ ${refusal_stdout_empty:-0} == 1 && -s $logs/out ]]; then
    fail "[$np] $*: a refusal wrote to stdout: $(head -c 500 "$logs/out")"
  fi
  if grep -qiE 'terminate|abort|backtrace|core dumped|segmentation' "$logs/err"; then
    fail "[$np] $*: crash output: $(cat "$logs/err")"
  fi
  printf '[%d] exit %d  %-50.50s %s\n' "$np" "$rc" "$*" "$(cat "$logs/err")"
}

# run_refusals: every entry of the array `cases` at 1 and 2 ranks, in the current directory,
# which must come out byte-identical. Arguments are shell words ($'a\nb' works); a case
# whose first word is not a command runs as `dualnet train ...`; a case may start with
# `env VAR=VALUE ...` to set the command's environment.
# shellcheck disable=SC2154  # `cases` is the calling script's table
run_refusals() {
  local before after c np n=0
  before=$(snapshot)
  for np in 1 2; do
    for c in "${cases[@]}"; do
      local want=${c%%|*} args=()
      eval "args=(${c#*|})"
      local prefix=()
      if [[ ${args[0]:-} == env ]]; then  # keep "env VAR=VALUE ..." in front of the command
        prefix=(env)
        args=("${args[@]:1}")
        while [[ ${args[0]:-} == [A-Z]*=* ]]; do prefix+=("${args[0]}"); args=("${args[@]:1}"); done
      fi
      case ${args[0]:-} in train | covop | bench | trian) ;; *) args=(train "${args[@]}") ;; esac
      args=("${prefix[@]}" "${args[@]}")
      refuse_one "$np" "$want" "${args[@]}"
      n=$((n + 1))
    done
  done
  after=$(snapshot)
  [[ $after == "$before" ]] || fail "a refused command changed the work directory: $(diff <(echo "$before") <(echo "$after") | head -20)"
  echo "ok: $n refusals (${#cases[@]} cases at 1 and 2 ranks), each one line, nothing changed"
}

# error_lines FILE: the lines of a stderr log that are not warnings (a run may warn, e.g. of a
# collapsed network, before it fails; what is checked is the failure's own report).
error_lines() { grep -cv '^dualnet: warning:' "$1" || true; }

# A fresh work directory (and a log directory outside it), removed at exit.
make_work() {
  work=$(mktemp -d)
  logs=$(mktemp -d)
  trap 'rm -rf "$work" "$logs"' EXIT
  cd "$work" || exit 1
}

# The newest checkpoint of a run.
latest_ckpt() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")"; }
