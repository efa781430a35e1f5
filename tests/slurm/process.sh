#!/usr/bin/env bash
# Sourced by slurm-up.sh, slurm-down.sh and multinode-up.sh.

# alive PID: true for a live process (a zombie, which this machine's init may leave around
# for a while, does not count).
alive() {
    [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/stat" ]] || return 1
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1)
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}

# slurm_test_settings: the slurm.conf lines both test clusters share (plugins, scheduling,
# requeue); each cluster adds its hosts, paths and timeouts.
slurm_test_settings() {
    cat <<'CONF'
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule often, so that a requeued job (eligible again after cred_expire) restarts quickly.
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=pmix
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
JobRequeue=1
CONF
}
