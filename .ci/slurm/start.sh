#!/usr/bin/env bash
# Start a one-node Slurm cluster on this host (CI): munge, MariaDB + slurmdbd (real accounting, so sacct works),
# slurmctld and slurmd, all started by hand (no systemd). Idempotent: when the cluster is healthy this is a
# no-op; keys and the accounting database are created only once. Needs root.
#
#   .ci/slurm/start.sh                      # install (first time), configure, start, wait for an idle node
#   SLURM_CI_ACCOUNTING=0 .ci/slurm/start.sh  # without slurmdbd/MariaDB (sacct then fails; use squeue)
set -euo pipefail

ACCOUNTING=${SLURM_CI_ACCOUNTING:-1}
CLUSTER=${SLURM_CI_CLUSTER:-lotlip}
PARTITION=${SLURM_CI_PARTITION:-main}
CRED_EXPIRE=${SLURM_CI_CRED_EXPIRE:-10}  # a requeued job restarts about this many seconds later
NODE=$(hostname -s)
ETC=/etc/slurm
LOGS=/var/log/slurm
PACKAGES=(slurmctld slurmd slurm-client munge)
((ACCOUNTING)) && PACKAGES+=(slurmdbd mariadb-server)

say() { echo "slurm-ci: $*"; }
die() { echo "slurm-ci: error: $*" >&2; exit 1; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  say "installing ${missing[*]}"
  compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

node_state() { timeout 10 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }

healthy() {
  alive /run/munge/munged.pid && alive /run/slurmctld.pid && alive /run/slurmd.pid || return 1
  if ((ACCOUNTING)); then alive /run/slurmdbd.pid && alive /run/mysqld/mysqld.pid || return 1; fi
  [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]
}

start_munge() {
  [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  alive /run/munge/munged.pid && return 0
  install -d -o munge -g munge -m 0755 /run/munge
  rm -f /run/munge/munge.socket.2*  # a stale socket from a killed munged blocks a new one
  runuser -u munge -- /usr/sbin/munged
  munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"
}

start_mariadb() {
  if ! alive /run/mysqld/mysqld.pid; then
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mysqld.pid \
      --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 >>"$LOGS/mariadb.log" 2>&1 < /dev/null &
  fi
  for _ in $(seq 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb-admin ping >/dev/null 2>&1 || die "MariaDB did not start (see $LOGS/mariadb.log)"
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-ci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

write_slurmdbd_conf() {
  cat >"$ETC/slurmdbd.conf.new" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-ci
StorageLoc=slurm_acct_db
PidFile=/run/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
EOF
  chmod 0600 "$ETC/slurmdbd.conf.new" && mv "$ETC/slurmdbd.conf.new" "$ETC/slurmdbd.conf"
}

start_slurmdbd() {
  write_slurmdbd_conf
  alive /run/slurmdbd.pid || /usr/sbin/slurmdbd
  for _ in $(seq 60); do timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
  timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 || die "slurmdbd did not answer (see $LOGS/slurmdbd.log)"
  local have
  have=$(timeout 5 sacctmgr -n -P list cluster format=cluster)
  grep -qx "$CLUSTER" <<<"$have" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

write_slurm_conf() {
  local mem_mb accounting=accounting_storage/none
  mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  ((ACCOUNTING)) && accounting=accounting_storage/slurmdbd
  mkdir -p "$ETC" "$LOGS" /var/spool/slurmctld /var/spool/slurmd
  cat >"$ETC/slurm.conf.new" <<EOF
# One-node CI cluster written by .ci/slurm/start.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
GresTypes=gpu
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ReturnToService=2
MinJobAge=600
KillWait=5
OverTimeLimit=0
InactiveLimit=0
JobRequeue=1
AccountingStorageType=$accounting
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=2 RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  echo "NodeName=$NODE Name=gpu File=/dev/null" >"$ETC/gres.conf"
  if cmp -s "$ETC/slurm.conf.new" "$ETC/slurm.conf"; then rm "$ETC/slurm.conf.new"; return 1; fi
  mv "$ETC/slurm.conf.new" "$ETC/slurm.conf"
}

stop_pid() { alive "$1" && kill "$(cat "$1")" && for _ in $(seq 50); do alive "$1" || break; sleep 0.1; done; true; }

start_slurm() {  # start_slurm CHANGED: restart the daemons when their configuration changed
  if (($1)); then stop_pid /run/slurmd.pid; stop_pid /run/slurmctld.pid; fi
  alive /run/slurmctld.pid || /usr/sbin/slurmctld
  alive /run/slurmd.pid || /usr/sbin/slurmd
}

wait_idle() {
  local state=""
  for _ in $(seq 60); do
    state=$(node_state)
    [[ $state =~ ^(idle|mixed|allocated|completing)$ ]] && return 0
    [[ $state =~ ^(down|drained|draining) ]] && scontrol update nodename="$NODE" state=resume 2>/dev/null || true
    sleep 0.5
  done
  die "node $NODE is '${state:-unknown}', not idle (see $LOGS/slurmctld.log and $LOGS/slurmd.log)"
}

main() {
  [[ $(id -u) == 0 ]] || die "run as root"
  if command -v sinfo >/dev/null && healthy; then say "already up ($NODE $(node_state))"; exit 0; fi
  local t0=$SECONDS
  install_packages
  local changed=0
  write_slurm_conf && changed=1  # clients (sacctmgr) read it too
  start_munge
  if ((ACCOUNTING)); then start_mariadb; start_slurmdbd; fi
  start_slurm "$changed"
  wait_idle
  say "up in $((SECONDS - t0)) s: node $NODE $(node_state), partition $PARTITION, accounting=$ACCOUNTING"
}

main "$@"
