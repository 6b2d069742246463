#!/usr/bin/env bash
# A single-node SLURM "cluster" on localhost for the integration test (tests/slurm/integration.py):
# munge + slurmctld + slurmd (+ MariaDB + slurmdbd so `sacct` works), with fake GPUs announced
# through gres so `--gpus=1` jobs are scheduled and get CUDA_VISIBLE_DEVICES from SLURM.
# Needs root and Debian's packages (tested on Debian 12: slurm-wlm 22.05.8, munge 0.5.15,
# MariaDB 10.11). Overwrites /etc/slurm/{slurm,gres,slurmdbd}.conf.
#
#   tests/slurm/slurm-local.sh start     install + configure + start; waits until the node is idle
#   tests/slurm/slurm-local.sh stop      stop every daemon that `start` started (and only those)
#   tests/slurm/slurm-local.sh status    sinfo + the daemons started and whether they still run
#
# Env knobs:
#   NVOS_SLURM_BASE=/tmp/nvos-slurm   state, spool, logs, pid files, fake GPU device nodes
#   WITH_DBD=1     also run MariaDB + slurmdbd (accounting: `sacct`, the plugin's default status
#                  check). WITH_DBD=0 -> AccountingStorageType=none; then sacct fails and the
#                  Snakemake profile must set `slurm-status-command: squeue`.
#   NGPU=2         number of fake GPUs (character devices cloned from /dev/null)
#
# Exit status: 0 when the cluster is up (start) / everything we started is stopped (stop);
# non-zero with a line "slurm-local: FAILED: <reason>" otherwise.
set -euo pipefail

BASE=${NVOS_SLURM_BASE:-/tmp/nvos-slurm}
WITH_DBD=${WITH_DBD:-1}
NGPU=${NGPU:-2}
STARTED="$BASE/started"          # one "name pidfile" line per daemon this script started

fail() { echo "slurm-local: FAILED: $*" >&2; exit 1; }

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Record a daemon we started, so that `stop` ends exactly those.
started() { echo "$1 $2" >>"$STARTED"; }

stop_all() {
    [ -s "$STARTED" ] || { echo "slurm-local: nothing to stop"; return 0; }
    # reverse start order: slurmd, slurmctld, slurmdbd, mariadb, munged
    tac "$STARTED" | while read -r name pf; do
        if pid_alive "$pf"; then
            pid=$(cat "$pf")
            echo "slurm-local: stopping $name pid=$pid"
            kill "$pid"
            for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            if kill -0 "$pid" 2>/dev/null; then
                echo "slurm-local: $name pid=$pid ignored SIGTERM for 20 s: SIGKILL"
                kill -9 "$pid" 2>/dev/null || true
            fi
        fi
    done
    rm -f "$STARTED"
}

status() {
    sinfo 2>/dev/null || echo "slurm-local: sinfo does not answer"
    [ -s "$STARTED" ] || { echo "slurm-local: no daemon started by this script"; return 0; }
    while read -r name pf; do
        if pid_alive "$pf"; then echo "$name running (pid $(cat "$pf"))"; else echo "$name stopped"; fi
    done <"$STARTED"
}

case "${1:-start}" in
    stop) stop_all; exit 0 ;;
    status) status; exit 0 ;;
    start) ;;
    *) fail "unknown command '$1' (use start, stop or status)" ;;
esac

# ---------------------------------------------------------------- 0. preconditions
[ "$(id -u)" = 0 ] || fail "must run as root (installs packages, writes /etc/slurm, starts daemons)"
command -v apt-get >/dev/null || fail "apt-get not found: this script installs SLURM from Debian packages"
mkdir -p "$BASE"/{state,spool,log,dev}
HOST=$(hostname -s)
[ -n "$HOST" ] || fail "hostname -s is empty: SLURM needs a node name"

# ---------------------------------------------------------------- 1. packages
export DEBIAN_FRONTEND=noninteractive
PKGS="munge slurmctld slurmd slurm-client"
[ "$WITH_DBD" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Status}\n' $PKGS 2>/dev/null | grep -c 'install ok installed' || true)
if [ "$installed" != "$(wc -w <<<"$PKGS")" ]; then
    echo "slurm-local: apt-get install $PKGS"
    apt-get update -qq >"$BASE/log/apt.log" 2>&1 \
        || { tail -n 20 "$BASE/log/apt.log" >&2; fail "apt-get update failed (no package registry?)"; }
    # Debian's postinst tries to start the services through invoke-rc.d; without systemd that is
    # refused, which is fine: the daemons are started by hand below.
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $PKGS >>"$BASE/log/apt.log" 2>&1 \
        || { tail -n 20 "$BASE/log/apt.log" >&2; fail "apt-get install $PKGS failed"; }
fi

# ---------------------------------------------------------------- 2. munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
if ! pid_alive /run/munge/munged.pid; then
    su -s /bin/sh munge -c /usr/sbin/munged || fail "munged did not start"   # writes its pid file
    started munged /run/munge/munged.pid
fi
munge -n | unmunge >/dev/null || fail "munge cannot encode/decode a credential"

# ---------------------------------------------------------------- 3. fake GPUs
# gres.conf with only `Count=` (no File=) does not work for gpu on 22.05: slurmd reports 0 GPUs
# and slurmctld marks the node INVAL. Device files are required; clones of /dev/null (c 1 3)
# suffice because no cgroup device constraint is configured.
for i in $(seq 0 $((NGPU - 1))); do
    [ -e "$BASE/dev/fakegpu$i" ] || mknod "$BASE/dev/fakegpu$i" c 1 3 \
        || fail "cannot create the fake GPU device $BASE/dev/fakegpu$i (mknod needs CAP_MKNOD)"
done

# ---------------------------------------------------------------- 4. MariaDB + slurmdbd
ACCT_LINES="AccountingStorageType=accounting_storage/none"
if [ "$WITH_DBD" = 1 ]; then
    mkdir -p "$BASE/mysql" "$BASE/mysql-run"
    chown mysql:mysql "$BASE/mysql" "$BASE/mysql-run"
    if [ ! -d "$BASE/mysql/mysql" ]; then
        mariadb-install-db --user=mysql --datadir="$BASE/mysql" \
            --auth-root-authentication-method=socket >"$BASE/log/mysql-install.log" 2>&1 \
            || fail "mariadb-install-db failed (see $BASE/log/mysql-install.log)"
    fi
    if ! pid_alive "$BASE/mysql-run/mysql.pid"; then
        setsid mariadbd --user=mysql --datadir="$BASE/mysql" \
            --socket="$BASE/mysql-run/mysql.sock" --pid-file="$BASE/mysql-run/mysql.pid" \
            --bind-address=127.0.0.1 --port=3306 \
            --log-error="$BASE/log/mysql.err" </dev/null >/dev/null 2>&1 &
        for _ in $(seq 60); do [ -S "$BASE/mysql-run/mysql.sock" ] && break; sleep 0.5; done
        [ -S "$BASE/mysql-run/mysql.sock" ] || fail "mariadbd did not start (see $BASE/log/mysql.err)"
        for _ in $(seq 20); do [ -s "$BASE/mysql-run/mysql.pid" ] && break; sleep 0.5; done
        started mariadbd "$BASE/mysql-run/mysql.pid"
    fi
    # slurmdbd talks TCP to 127.0.0.1 (the client library's "localhost" means the default
    # /run/mysqld socket, which is not used here)
    mariadb --socket="$BASE/mysql-run/mysql.sock" -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;" \
        || fail "cannot create the slurm database user"
    cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$BASE/log/slurmdbd.log
PidFile=$BASE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmpw
EOF
    chmod 600 /etc/slurm/slurmdbd.conf    # slurmdbd refuses a config others can read (password)
    if ! pid_alive "$BASE/slurmdbd.pid"; then
        /usr/sbin/slurmdbd || fail "slurmdbd did not start (see $BASE/log/slurmdbd.log)"
        started slurmdbd "$BASE/slurmdbd.pid"
    fi
    # slurmctld must not start before slurmdbd listens: with AccountingStorageTRES=gres/gpu it
    # creates that TRES in the database on first start and dies ("fatal: Problem adding tres")
    # if it cannot.
    for _ in $(seq 60); do timeout 1 bash -c '</dev/tcp/127.0.0.1/6819' 2>/dev/null && break; sleep 0.5; done
    timeout 1 bash -c '</dev/tcp/127.0.0.1/6819' 2>/dev/null \
        || fail "slurmdbd does not listen on port 6819 (see $BASE/log/slurmdbd.log)"
    ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
# store sbatch --comment (the plugin puts rule + wildcards there)
AccountingStoreFlags=job_comment"
fi

# ---------------------------------------------------------------- 5. slurm.conf / gres.conf
# Node line from the hardware probe, keeping ~10% of the memory back.
NODE_LINE=$(slurmd -C | head -1)                  # NodeName=vm CPUs=2 ... RealMemory=24105
REALMEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
[ -n "$REALMEM" ] || fail "cannot read RealMemory from 'slurmd -C': $NODE_LINE"
NODE_LINE=$(sed "s/RealMemory=[0-9]*/RealMemory=$((REALMEM * 9 / 10))/" <<<"$NODE_LINE")

cat >/etc/slurm/slurm.conf <<EOF
ClusterName=localcluster
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
# no cgroups in a container: plain process tracking, no task affinity/containment
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
$ACCT_LINES
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
# without DefMemPerCPU a job that gives no --mem gets the whole node's memory (jobs serialize)
DefMemPerCPU=1000
# keep finished jobs visible to squeue/scontrol for 10 min (the squeue status mode needs it)
MinJobAge=600
ReturnToService=2
MpiDefault=none
GresTypes=gpu
$NODE_LINE Gres=gpu:$NGPU State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

cat >/etc/slurm/gres.conf <<EOF
AutoDetect=off
NodeName=$HOST Name=gpu File=$BASE/dev/fakegpu[0-$((NGPU - 1))]
EOF

# ---------------------------------------------------------------- 6. slurmctld + slurmd
if ! pid_alive "$BASE/slurmctld.pid"; then
    /usr/sbin/slurmctld || fail "slurmctld did not start (see $BASE/log/slurmctld.log)"
    started slurmctld "$BASE/slurmctld.pid"
fi
for _ in $(seq 60); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
if ! scontrol ping 2>/dev/null | grep -q UP; then
    tail -n 20 "$BASE/log/slurmctld.log" >&2
    fail "slurmctld does not answer 'scontrol ping'"
fi
if ! pid_alive "$BASE/slurmd.pid"; then
    /usr/sbin/slurmd || fail "slurmd did not start (see $BASE/log/slurmd.log)"
    started slurmd "$BASE/slurmd.pid"
fi

# ---------------------------------------------------------------- 7. wait for the node
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null || true)
    [ "$state" = idle ] && break
    case "$state" in
        drain* | inval* | down*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
done
sinfo
if [ "$state" != idle ]; then
    scontrol show node "$HOST" | grep -i reason >&2 || true
    fail "node $HOST is not idle (state=$state)"
fi

# ---------------------------------------------------------------- 8. smoke test
out="$BASE/log/smoke.out"
sbatch --wait -o "$out" --gpus=1 --wrap 'echo host=$(hostname) CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES' >/dev/null \
    || fail "a one-GPU smoke job did not run (see $out and $BASE/log/slurmd.log)"
grep -q "CUDA_VISIBLE_DEVICES=[0-9]" "$out" \
    || fail "the one-GPU smoke job got no CUDA_VISIBLE_DEVICES: $(cat "$out")"
cat "$out"
echo "slurm-local: SLURM ready on $HOST ($NGPU fake GPUs, accounting: $([ "$WITH_DBD" = 1 ] && echo slurmdbd || echo none))"
