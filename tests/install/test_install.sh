#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed files work from there alone:
# the binary (--version, a smoke run with the installed example config), the job scripts
# (--help; the sweep runner's dry run names the installed binary), the docs.
#
#   tests/install/test_install.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: test_install.sh BUILD_DIR}
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in bin/dualnet share/dualnet/jobs/train.sbatch share/dualnet/jobs/submit.sh share/dualnet/jobs/sweep.py \
  share/dualnet/jobs/lib/dualnet-job.sh share/dualnet/jobs/lib/installed-bin share/dualnet/configs/smoke.toml \
  share/doc/dualnet/README.md share/doc/dualnet/science.md; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
[[ -x $prefix/bin/dualnet && -x $prefix/share/dualnet/jobs/train.sbatch ]] || fail "installed scripts lost their mode"
if find "$prefix" -name __pycache__ -o -name site.env | grep -q .; then fail "installed __pycache__ or site.env"; fi

# The installed binary, run from elsewhere (no build tree on its path).
cd "$work"
version=$("$prefix/bin/dualnet" --version)
[[ $version == "dualnet "* ]] || fail "--version printed '$version'"
"$prefix/bin/dualnet" train "$prefix/share/dualnet/configs/smoke.toml" out=smoke >smoke.log 2>&1 ||
  { cat smoke.log; fail "smoke run of the installed binary"; }
[[ -s smoke/metrics.h5 && -s smoke/timing.json ]] || fail "the smoke run wrote no metrics.h5 or timing.json"

# The installed job scripts: their help, and the binary they find without DUALNET_BIN.
unset DUALNET_BIN DUALNET_HOME DUALNET_SITE_ENV
export XDG_CONFIG_HOME=$work/no-config
"$prefix/share/dualnet/jobs/train.sbatch" --help >help.txt || fail "train.sbatch --help: exit $?"
grep -q "One dualnet training run" help.txt || fail "train.sbatch --help: $(head -3 help.txt)"
python3 "$prefix/share/dualnet/jobs/sweep.py" run "$prefix/share/dualnet/jobs/paper-lite-sweep.toml" \
  --dir "$work/sweep" --dry-run >dry.txt || { cat dry.txt; fail "sweep.py run --dry-run"; }
grep -qF "$(cd "$prefix/bin" && pwd)/dualnet train" dry.txt ||
  fail "the installed sweep runner does not use the installed binary: $(sed -n 2p dry.txt)"
echo "PASS: install into $prefix: $version, smoke run, job scripts find $prefix/bin/dualnet"
