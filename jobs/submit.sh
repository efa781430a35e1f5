#!/usr/bin/env bash
# Submit a dualnet job script with the site's settings.
#
#   jobs/submit.sh [SBATCH OPTIONS] JOB_SCRIPT [SCRIPT ARGUMENTS...]
#
# e.g.  jobs/submit.sh -J hid20 jobs/train.sbatch configs/reference.toml hid=20
#
# Reads the site settings (DUALNET_SITE_ENV, else jobs/site.env, else
# ~/.config/dualnet/site.env; variables already set in the environment win), then runs
#   sbatch [--partition=$DUALNET_PARTITION] [--account=$DUALNET_ACCOUNT] [--qos=$DUALNET_QOS]
#          $DUALNET_SBATCH_ARGS [SBATCH OPTIONS] JOB_SCRIPT [SCRIPT ARGUMENTS...]
# Options given here come after the site's, so they win. DUALNET_HOME is exported so the job
# finds this repository. Prints sbatch's output; exits with sbatch's status.
# DUALNET_DRY_RUN=1 prints the sbatch command instead of running it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DUALNET_HOME=${DUALNET_HOME:-$(cd "$here/.." && pwd)}
export DUALNET_HOME
DN_LOG_TAG=submit
# shellcheck source-path=SCRIPTDIR source=lib/dualnet-job.sh
source "$here/lib/dualnet-job.sh"

case "${1:-}" in
    ""|-h|--help) dn_usage "${BASH_SOURCE[0]}"; [[ -n "${1:-}" ]] && exit 0; exit 2 ;;
esac

dn_load_site

site=()
[[ -z "${DUALNET_PARTITION:-}" ]] || site+=("--partition=$DUALNET_PARTITION")
[[ -z "${DUALNET_ACCOUNT:-}" ]] || site+=("--account=$DUALNET_ACCOUNT")
[[ -z "${DUALNET_QOS:-}" ]] || site+=("--qos=$DUALNET_QOS")
if [[ -n "${DUALNET_SBATCH_ARGS:-}" ]]; then
    read -r -a extra <<<"$DUALNET_SBATCH_ARGS"
    site+=("${extra[@]}")
fi

if [[ "${DUALNET_DRY_RUN:-0}" == 1 ]]; then
    printf '%q ' sbatch "${site[@]}" "$@"
    printf '\n'
    exit 0
fi
command -v sbatch >/dev/null 2>&1 || dn_die 2 "sbatch not found: is this a Slurm login node?"
exec sbatch "${site[@]}" "$@"
