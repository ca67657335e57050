#!/usr/bin/env bash
# Stop the CI Slurm cluster started by .ci/slurm/start.sh: cancel its jobs, then stop slurmd, slurmctld,
# slurmdbd, MariaDB and munged by their pid files. Keys, state and the accounting database are kept.
set -euo pipefail

say() { echo "slurm-ci: $*"; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() {  # stop_pid NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL
  local name=$1 pidfile=$2 pid
  alive "$pidfile" || return 0
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { say "stopped $name ($pid)"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  say "killed $name ($pid)"
}

[[ $(id -u) == 0 ]] || { echo "slurm-ci: error: run as root" >&2; exit 1; }
if alive /run/slurmctld.pid; then timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true; fi
stop_pid slurmd /run/slurmd.pid
stop_pid slurmctld /run/slurmctld.pid
stop_pid slurmdbd /run/slurmdbd.pid
stop_pid mariadb /run/mysqld/mysqld.pid
stop_pid munged /run/munge/munged.pid
say "down"
