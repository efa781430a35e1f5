# shellcheck shell=bash
# Shared code for the dualnet batch scripts (train.sbatch, sweep.sbatch, scaling.sbatch) and
# the submission helpers. Source it; it defines functions and variables prefixed dn_/DN_ and
# runs nothing by itself.
#
# What it provides:
#   dn_load_site          read the site settings (see jobs/site.env.example) and set defaults
#   dn_prepare_job        dn_load_site + module loads + checks that the dualnet binary runs
#   dn_run_dir_state DIR  print finished | resumable | stale | new
#   dn_train DIR ARGS...  run `dualnet train ARGS...` in run directory DIR under the
#                         launcher, resuming from DIR's latest checkpoint when there is one,
#                         forwarding Slurm's time-limit warning (USR1) to dualnet and
#                         requeueing the job after dualnet has written its checkpoint.
#
# A run directory is *finished* when DIR/timing.json exists: dualnet writes it last, after
# metrics.h5 is complete.

DN_LOG_TAG=${DN_LOG_TAG:-dualnet-job}

dn_log() { printf '[%s %(%F %T)T] %s\n' "$DN_LOG_TAG" -1 "$*" >&2; }

# dn_die STATUS MESSAGE: print MESSAGE and exit with STATUS.
dn_die() {
    local status=$1
    shift
    printf '[%s] error: %s\n' "$DN_LOG_TAG" "$*" >&2
    exit "$status"
}

# dn_usage FILE: print the comment block at the top of FILE (after the #SBATCH lines).
dn_usage() {
    awk 'NR == 1 || /^#SBATCH/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# dn_site_file: print the site settings file that applies, or nothing when there is none.
# Order: $DUALNET_SITE_ENV (must exist), <repo>/jobs/site.env,
# ${XDG_CONFIG_HOME:-$HOME/.config}/dualnet/site.env.
dn_site_file() {
    if [[ -n "${DUALNET_SITE_ENV:-}" ]]; then
        [[ -r "$DUALNET_SITE_ENV" ]] || dn_die 2 "DUALNET_SITE_ENV=$DUALNET_SITE_ENV is not a readable file"
        printf '%s\n' "$DUALNET_SITE_ENV"
        return 0
    fi
    local f
    for f in "$DUALNET_HOME/jobs/site.env" "${XDG_CONFIG_HOME:-${HOME:-/nonexistent}/.config}/dualnet/site.env"; do
        if [[ -r "$f" ]]; then
            printf '%s\n' "$f"
            return 0
        fi
    done
}

# dn_load_site: source the site file (variables already in the environment win over it),
# then fill in defaults. Sets DN_SITE_FILE to the file used ("" when none).
dn_load_site() {
    [[ -n "${DUALNET_HOME:-}" ]] || dn_die 1 "internal: DUALNET_HOME is not set"
    DN_SITE_FILE=$(dn_site_file)
    if [[ -n "$DN_SITE_FILE" ]]; then
        # Remember DUALNET_*/SBATCH_* values given in the environment, so that they override
        # the file whatever style of assignment the file uses.
        local saved=() name
        for name in $(compgen -e); do
            case "$name" in
                DUALNET_*|SBATCH_*) saved+=("$name=${!name}") ;;
            esac
        done
        # shellcheck source=/dev/null
        source "$DN_SITE_FILE" || dn_die 2 "sourcing site settings $DN_SITE_FILE failed"
        local kv
        for kv in "${saved[@]}"; do
            export "${kv%%=*}=${kv#*=}"
        done
    fi
    # The binary: the source tree's build/dualnet; for scripts installed by `cmake --install`
    # (<prefix>/share/dualnet/jobs), the dualnet installed with them (the path relative to
    # DUALNET_HOME is in jobs/lib/installed-bin, written at install time).
    if [[ -z "${DUALNET_BIN:-}" ]]; then
        if [[ -r "$DUALNET_HOME/jobs/lib/installed-bin" ]]; then
            DUALNET_BIN=$DUALNET_HOME/$(<"$DUALNET_HOME/jobs/lib/installed-bin")
        else
            DUALNET_BIN=$DUALNET_HOME/build/dualnet
        fi
    fi
    : "${DUALNET_RUNS_DIR:=${SLURM_SUBMIT_DIR:-$PWD}/runs}"
    : "${DUALNET_LAUNCHER:=srun --mpi=pmix}"
    : "${DUALNET_MODULES:=}"
    : "${DUALNET_GPU:=auto}"
    : "${DUALNET_EXTRA_ARGS:=}"
    : "${DUALNET_MAX_REQUEUES:=20}"
    export DUALNET_HOME DUALNET_BIN DUALNET_RUNS_DIR DUALNET_LAUNCHER DUALNET_MODULES \
        DUALNET_GPU DUALNET_EXTRA_ARGS DUALNET_MAX_REQUEUES
    case "$DUALNET_GPU" in
        auto|0|1) ;;
        *) dn_die 2 "DUALNET_GPU must be auto, 0 or 1 (got '$DUALNET_GPU')" ;;
    esac
    [[ "$DUALNET_MAX_REQUEUES" =~ ^[0-9]+$ ]] || dn_die 2 "DUALNET_MAX_REQUEUES must be a number (got '$DUALNET_MAX_REQUEUES')"
}

# dn_load_modules: `module load` each entry of DUALNET_MODULES (space separated).
dn_load_modules() {
    [[ -n "$DUALNET_MODULES" ]] || return 0
    if ! declare -F module >/dev/null && ! command -v module >/dev/null 2>&1; then
        # Login shells define `module`; batch shells may not have read the init file yet.
        local init
        for init in /etc/profile.d/modules.sh /etc/profile.d/lmod.sh /usr/share/lmod/lmod/init/bash; do
            # shellcheck source=/dev/null
            if [[ -r "$init" ]]; then set +u; source "$init"; set -u; break; fi
        done
    fi
    declare -F module >/dev/null || command -v module >/dev/null 2>&1 \
        || dn_die 2 "DUALNET_MODULES is set ('$DUALNET_MODULES') but there is no 'module' command"
    local m mods
    read -r -a mods <<<"$DUALNET_MODULES"
    for m in "${mods[@]}"; do
        # Module scripts often read unset variables and return odd statuses: relax the shell.
        set +eu
        module load "$m"
        local rc=$?
        set -eu
        ((rc == 0)) || dn_die 2 "module load $m failed (status $rc)"
    done
}

# dn_prepare_job: everything a batch script needs before it can launch dualnet.
dn_prepare_job() {
    dn_load_site
    dn_load_modules
    [[ -x "$DUALNET_BIN" ]] || dn_die 2 "dualnet binary '$DUALNET_BIN' is missing or not executable (set DUALNET_BIN)"
    read -r -a DN_LAUNCHER <<<"$DUALNET_LAUNCHER"
    ((${#DN_LAUNCHER[@]} > 0)) || dn_die 2 "DUALNET_LAUNCHER is empty"
    command -v "${DN_LAUNCHER[0]}" >/dev/null 2>&1 || dn_die 2 "launcher '${DN_LAUNCHER[0]}' not found (DUALNET_LAUNCHER='$DUALNET_LAUNCHER')"
    read -r -a DN_EXTRA_ARGS <<<"$DUALNET_EXTRA_ARGS"
    dn_log "job ${SLURM_JOB_ID:-none}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}, restart ${SLURM_RESTART_COUNT:-0}, host $(hostname -s), site file '${DN_SITE_FILE:-none}', binary $DUALNET_BIN"
}

# dn_run_dir_state DIR: finished (timing.json), resumable (checkpoints/latest), stale (exists,
# no checkpoint) or new.
dn_run_dir_state() {
    if [[ -e "$1/timing.json" ]]; then
        echo finished
    elif [[ -e "$1/checkpoints/latest" ]]; then
        echo resumable
    elif [[ -e "$1" ]]; then
        echo stale
    else
        echo new
    fi
}

# dn_checkpoint_id DIR: something that changes whenever dualnet writes a new checkpoint.
dn_checkpoint_id() {
    local latest="$1/checkpoints/latest"
    [[ -e "$latest" || -L "$latest" ]] || { echo none; return 0; }
    local target=""
    if [[ -L "$latest" ]]; then target=$(readlink "$latest"); fi
    if [[ -f "$latest" ]]; then target+=" $(stat -L -c '%s %Y' "$latest") $(head -c 200 "$latest" | tr -d '\n')"; fi
    if [[ -d "$latest" ]]; then target+=" $(stat -L -c '%Y' "$latest")"; fi
    printf '%s\n' "$target"
}

# dn_progress_id DIR: changes whenever dualnet has touched run directory DIR (created it,
# written metrics or a checkpoint); used to tell a launch that died at start-up.
dn_progress_id() {
    if [[ ! -e "$1" ]]; then echo absent; return 0; fi
    printf '%s %s\n' "$(dn_checkpoint_id "$1")" "$(stat -c '%Y.%s' "$1/metrics.h5" 2>/dev/null || echo none)"
}

# Signal handling. Slurm is asked for USR1 before the time limit (--signal=B:USR1@SECS);
# only this batch shell receives it, and forwards it to the launcher, which forwards it to
# every dualnet rank. slurmctld checks time limits every 30 s and sends the warning at the
# first check that is less than SECS + 30 s before the end, so it arrives between SECS and
# SECS + 30 s before the limit. SIGTERM (scancel, or the time limit itself) is forwarded too.
# The batch scripts set DN_EARLY_USR1=1 from a placeholder trap when USR1 arrives before
# these handlers are installed.
DN_CHILD=""
DN_WARNED=0
DN_TERMINATED=0
DN_INTERRUPTED=0

dn_on_usr1() {
    DN_INTERRUPTED=1
    DN_WARNED=1
    dn_log "time-limit warning (USR1): asking dualnet to checkpoint and stop"
    if [[ -n "$DN_CHILD" ]]; then kill -USR1 "$DN_CHILD" 2>/dev/null || true; fi
}

dn_on_term() {
    DN_INTERRUPTED=1
    DN_TERMINATED=1
    dn_log "SIGTERM: asking dualnet to checkpoint and stop"
    if [[ -n "$DN_CHILD" ]]; then kill -TERM "$DN_CHILD" 2>/dev/null || true; fi
}

dn_install_traps() {
    trap dn_on_usr1 USR1
    trap dn_on_term TERM
    if [[ "${DN_EARLY_USR1:-0}" == 1 ]]; then
        dn_log "time-limit warning (USR1) arrived while the job was starting"
        DN_WARNED=1
    fi
}

# dn_launch ARGS...: run ARGS (a full command line) under the launcher, one dualnet per
# task, in the background, and wait for it while handling signals. Sets DN_RC.
# DN_STEP_NODES / DN_STEP_NTASKS, when set, size the job step (scaling studies).
dn_launch() {
    local cmd=("${DN_LAUNCHER[@]}")
    # A rank that dies (a crash, a SIGKILL) must end the step: the others would otherwise wait
    # in a collective until the time limit, and Slurm's default is KillOnBadExit=0.
    [[ "${DN_LAUNCHER[0]##*/}" != srun ]] || cmd+=(--kill-on-bad-exit=1)
    if [[ -n "${DN_STEP_NTASKS:-}" ]]; then
        case "${DN_LAUNCHER[0]##*/}" in
            srun) cmd+=("--nodes=${DN_STEP_NODES:-1}" "--ntasks=$DN_STEP_NTASKS") ;;
            mpirun|mpiexec|orterun) cmd+=(-n "$DN_STEP_NTASKS") ;;
            *) dn_die 2 "cannot size a job step with launcher '${DN_LAUNCHER[0]}' (use srun or mpirun)" ;;
        esac
    fi
    cmd+=(bash "$DUALNET_HOME/jobs/lib/task.sh" "$@")
    if ((DN_WARNED || DN_TERMINATED)); then
        dn_die 75 "the time-limit warning came before dualnet started: the time limit is shorter than the --signal lead time plus 30 s; not starting"
    fi
    dn_log "launch: ${cmd[*]}"
    "${cmd[@]}" &
    DN_CHILD=$!
    while :; do
        DN_INTERRUPTED=0
        if wait "$DN_CHILD"; then DN_RC=0; else DN_RC=$?; fi
        # A trapped signal interrupts `wait`; the launcher is still running (or its status
        # is still to be collected), so wait again.
        ((DN_INTERRUPTED)) || break
    done
    DN_CHILD=""
}

# dn_seconds TIME: Slurm's [D-]HH:MM:SS / MM:SS / MM to seconds; empty when unknown.
dn_seconds() {
    local t=$1 d=0 h=0 m=0 sec=0
    if [[ "$t" =~ ^([0-9]+)-(.*)$ ]]; then d=${BASH_REMATCH[1]}; t=${BASH_REMATCH[2]}; fi
    if [[ "$t" =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]]; then
        h=${BASH_REMATCH[1]} m=${BASH_REMATCH[2]} sec=${BASH_REMATCH[3]}
    elif [[ "$t" =~ ^([0-9]+):([0-9]+)$ ]]; then
        m=${BASH_REMATCH[1]} sec=${BASH_REMATCH[2]}
    elif [[ "$t" =~ ^([0-9]+)$ ]]; then
        m=${BASH_REMATCH[1]}
    else
        return 0
    fi
    echo $(((10#$d * 24 + 10#$h) * 3600 + 10#$m * 60 + 10#$sec))
}

# dn_time_left: print "LEFT LIMIT" in seconds for this job, or nothing when unknown.
dn_time_left() {
    [[ -n "${SLURM_JOB_ID:-}" ]] || return 0
    local left limit
    read -r left limit < <(squeue -h -j "$SLURM_JOB_ID" -o '%L %l' 2>/dev/null | head -n 1) || return 0
    left=$(dn_seconds "${left:-}")
    limit=$(dn_seconds "${limit:-}")
    [[ -n "$left" && -n "$limit" ]] && echo "$left $limit"
    return 0
}

# dn_job_state: "JobState=... Reason=..." of this job as slurmctld sees it (NODE_FAIL after a
# node stopped answering, CANCELLED, TIMEOUT ...), or nothing outside Slurm. For messages.
dn_job_state() {
    [[ -n "${SLURM_JOB_ID:-}" ]] || return 0
    # A job that is still RUNNING says nothing new: print only the other states.
    timeout 5 scontrol -o show job "$SLURM_JOB_ID" 2>/dev/null | grep -oE 'JobState=[^ ]+ Reason=[^ ]+' |
        grep -v '^JobState=RUNNING ' | head -n 1 || true
}

# dn_failure_text STATUS: what a launcher's exit status says, for the failure message.
dn_failure_text() {
    local rc=$1 sig
    if ((rc > 128)) && sig=$(kill -l "$((rc - 128))" 2>/dev/null); then
        printf 'status %s, SIG%s: a rank died or was killed (one dead rank ends the whole step)' "$rc" "$sig"
    else
        printf 'status %s' "$rc"
    fi
}

# dn_requeue: put this job back in the queue; it restarts from the top of the script and
# resumes from the checkpoint. Exits.
dn_requeue() {
    local restarts=${SLURM_RESTART_COUNT:-0}
    if [[ -z "${SLURM_JOB_ID:-}" ]]; then
        dn_die 75 "stopped at a checkpoint outside Slurm; run again to resume"
    fi
    if ((restarts >= DUALNET_MAX_REQUEUES)); then
        dn_die 75 "stopped at a checkpoint after $restarts requeues (DUALNET_MAX_REQUEUES); resubmit the same job to resume"
    fi
    # An array task must be named ARRAYID_TASK: the bare id of the last task is also the
    # array's id, and requeueing that requeues every task of the array.
    local id=$SLURM_JOB_ID
    if [[ -n "${SLURM_ARRAY_JOB_ID:-}" && -n "${SLURM_ARRAY_TASK_ID:-}" ]]; then
        id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    fi
    dn_log "requeueing job $id (restart $((restarts + 1))); it resumes from the latest checkpoint"
    if ! scontrol requeue "$id"; then
        dn_die 75 "scontrol requeue $id failed (job submitted with --no-requeue?); resubmit the same job to resume"
    fi
    # Slurm now ends this run of the job; do not let the script do anything else.
    exit 0
}

# dn_train DIR ARGS...: run dualnet train for run directory DIR (see the file header).
# ARGS are the config file and key=value overrides, without out/resume/overwrite.
# Returns (exits) with: 0 finished (or already finished); dualnet's status on failure;
# 75 when stopped at a checkpoint without being able to requeue.
dn_train() {
    local dir=$1
    shift
    local state mode=()
    state=$(dn_run_dir_state "$dir")
    case "$state" in
        finished)
            dn_log "run $dir is already finished (timing.json exists): nothing to do"
            return 0 ;;
        resumable)
            dn_log "resuming run $dir from its latest checkpoint"
            mode=("resume=$dir") ;;
        stale)
            dn_log "run directory $dir exists without a checkpoint: starting it again"
            mode=("out=$dir" overwrite=true) ;;
        new)
            mkdir -p "$(dirname "$dir")"
            mode=("out=$dir") ;;
    esac
    local before
    before=$(dn_checkpoint_id "$dir")
    local inplace=0 startfail=0 progress
    while :; do
        progress=$(dn_progress_id "$dir")
        dn_launch "$DUALNET_BIN" train "$@" "${DN_EXTRA_ARGS[@]}" "${mode[@]}"
        # Ranks killed by a signal before dualnet touched the run directory: a start-up failure,
        # e.g. Open MPI 4.1's race over TCP, where a rank still in MPI_Init segfaults on an early
        # message from another node (docs/cluster.md). Launch once more; a second failure stands.
        if ((DN_RC > 128 && !DN_WARNED && !DN_TERMINATED && startfail == 0)) &&
            [[ "$(dn_progress_id "$dir")" == "$progress" ]]; then
            startfail=1
            dn_log "the ranks died at start-up ($(dn_failure_text "$DN_RC")) before touching $dir: launching once more"
            continue
        fi
        # dualnet stopped at a checkpoint although no warning reached this script (a signal sent
        # to the job steps only, e.g. --signal without B:, or scancel --signal): with more than
        # half of the time limit left, continue right here; otherwise requeue below.
        if ((DN_RC == 0 && !DN_WARNED && !DN_TERMINATED && inplace < 3)) &&
            [[ ! -e "$dir/timing.json" && "$(dn_checkpoint_id "$dir")" != none ]]; then
            local tl
            tl=$(dn_time_left)
            if [[ -n "$tl" ]] && ((${tl% *} * 2 > ${tl#* })); then
                inplace=$((inplace + 1))
                dn_log "dualnet stopped at a checkpoint without a time-limit warning, ${tl% *} s of ${tl#* } s left: resuming in this job"
                mode=("resume=$dir")
                continue
            fi
            DN_WARNED=1
            dn_log "dualnet stopped at a checkpoint without a warning to this script, time left ${tl% *}${tl:+ s}${tl:-unknown}: treating it as the time-limit warning"
        fi
        break
    done
    if [[ -d "$dir" ]]; then
        printf '%(%F %T)T job=%s restart=%s state=%s rc=%s warned=%s\n' -1 "${SLURM_JOB_ID:-none}${SLURM_ARRAY_TASK_ID:+_$SLURM_ARRAY_TASK_ID}" \
            "${SLURM_RESTART_COUNT:-0}" "$state" "$DN_RC" "$DN_WARNED" >>"$dir/jobs.log" || true
    fi
    if ((DN_RC != 0)); then
        local js
        js=$(dn_job_state)
        dn_log "dualnet failed with $(dn_failure_text "$DN_RC")${js:+ ($js)}"
        exit "$DN_RC"
    fi
    if [[ -e "$dir/timing.json" ]]; then
        dn_log "run $dir finished"
        return 0
    fi
    local after
    after=$(dn_checkpoint_id "$dir")
    if [[ "$after" == none ]]; then
        dn_die 1 "dualnet exited 0 but $dir has neither timing.json nor a checkpoint"
    fi
    if ((DN_TERMINATED)); then
        local js
        js=$(dn_job_state)
        # NodeDown / NODE_FAIL: a node of the job stopped answering and Slurm ended the job.
        [[ "$js" != *NodeDown* && "$js" != *NODE_FAIL* ]] || js+=": a node of this job failed"
        dn_die 75 "terminated by Slurm (${js:-scancel or time limit}); $dir has a checkpoint: resubmit the same job to resume"
    fi
    if ((!DN_WARNED)); then
        dn_die 75 "dualnet stopped at a checkpoint without a warning from Slurm; resubmit the same job to resume"
    fi
    if [[ "$after" == "$before" ]]; then
        dn_die 75 "no new checkpoint since the last start; not requeueing (raise the time limit or the --signal lead time)"
    fi
    dn_requeue
}
