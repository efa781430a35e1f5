#!/usr/bin/env bash
# Class "config files": only a regular, readable file of TOML keys is a config. Anything
# else — missing, a directory, a FIFO, an empty name, binary bytes, malformed or nested
# TOML, unknown keys, values of the wrong shape — is refused with one line, without
# hanging, at 1 and 2 ranks. A run's own saved config.toml is safe to reuse: it never
# overwrites or resumes anything, and a new run made from it gets a new identity.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
make_work

dualnet_np 1 train "${small[@]}" out=run >/dev/null
printf 'depth = 3\nhid = [1, 2\n' >malformed.toml
printf 'depth = 3\nwidth = 4\n' >unknown.toml
printf 'depth = 3\n' >good.toml
printf '[network]\nhid = 4\n' >nested.toml
printf 'depth = [\n  3,\n]\n' >array.toml
printf 'depth = { a = 1 }\n' >table.toml
printf 'lr = 1e400\n' >overflow.toml
printf 'depth = 3\0\n' >nul.toml
head -c 4096 /dev/urandom >binary.toml
printf 'out = "a\\nb"\n' >escaped_newline.toml
printf 'run_id = "x"\ndepth = 3\n' >with_id.toml
printf 'depth = [1,\n2]\n' >multiline_array.toml
printf 'lr = 1e-400\n' >underflow.toml
printf 'depth = 99999999999999999999\n' >hugeint.toml
printf '\x89PNG\r\n\x1a\n\xff\xfe' >png.toml
head -c 1100000 /dev/zero | tr '\0' '#' >huge.toml
"$py" -c 'print("depth = " + "["*100000)' >deep.toml
mkdir dir.toml
mkfifo fifo.toml
ln -s nowhere dangling.toml

cases=(
  # expected words | arguments
  "malformed TOML|malformed.toml"
  "unknown key 'width'|unknown.toml"
  "network|nested.toml"
  "depth|array.toml"
  "depth|table.toml"
  "lr|overflow.toml"
  "nul.toml|nul.toml"
  "binary.toml|binary.toml"
  "out|escaped_newline.toml"
  "missing.toml|missing.toml"
  "dir.toml|dir.toml"
  "fifo.toml|fifo.toml"
  "dangling.toml|dangling.toml"
  "config file ''|''"
  "not of the form key=value|good.toml depth"
  "'depth'|multiline_array.toml"
  "too close to zero|underflow.toml"
  "64-bit integer|hugeint.toml"
  "UTF-8|png.toml"
  "too large|huge.toml"
  "nested|deep.toml"
  "character device|/dev/null"
  # A run's saved config names its own directory: reusing it never replaces that run.
  "already exists|run/config.toml"
  "already exists|run/config.toml hid=2"
)
run_refusals

# The saved config as a template: a new run in a new directory, with a new identity.
dualnet_np 1 train run/config.toml out=copy >/dev/null
id() { sed -n 's/^run_id = "\(.*\)"$/\1/p' "$1/config.toml"; }
[[ -n $(id run) && -n $(id copy) && $(id run) != "$(id copy)" ]] || fail "a run made from a saved config must get its own run_id ($(id run) / $(id copy))"
grep -q '^overwrite = false$' run/config.toml || fail "a saved config must store overwrite = false"
grep -q '^resume = ""$' run/config.toml || fail "a saved config must store resume = \"\""
same_metrics run copy
# A template with a run_id (with_id.toml) starts a run with its own id, not the file's.
dualnet_np 1 train with_id.toml "${small[@]}" out=fromid >/dev/null
[[ $(id fromid) != x ]] || fail "a config file's run_id must not become a new run's identity"
echo "PASS: config files"
