#!/usr/bin/env bash
# Sourced by slurm-up.sh and slurm-down.sh.

# alive PID: true for a live process (a zombie, which this machine's init may leave around
# for a while, does not count).
alive() {
    [[ "$1" =~ ^[0-9]+$ && -r "/proc/$1/stat" ]] || return 1
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1)
    [[ -n "$st" && "$st" != Z && "$st" != X ]]
}
