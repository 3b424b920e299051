#!/usr/bin/env bash
# clade slurm on a real Slurm: munged, slurmctld and slurmd for this one machine (a generated
# slurm.conf, one node of this machine's CPUs, proctrack/linuxproc, no cgroups, state in a
# temporary folder; all stopped at the end, even on failure). The sample suite as an array of
# 3 with `clade slurm --submit`: the dependent merge job's database gives the same `clade
# results` as a single-process run. Then one array task is killed with scancel mid-run: the
# merged run is incomplete and names it; `clade slurm --resubmit` reruns only that shard and
# the merge is complete and equal again. PRAGMA integrity_check after every step. Where the
# daemons cannot start, says why: fails in CI (CI=true), skips elsewhere.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/shards_common.sh"
cannot() {
  if [ "${CI:-}" = true ]; then echo "FAIL: Slurm cannot run here (CI must run this test): $*" >&2; exit 1; fi
  echo "SKIP: Slurm cannot run here: $*" >&2
  exit 77
}
for b in munged munge slurmctld slurmd sbatch squeue scancel scontrol sinfo; do
  command -v "$b" >/dev/null || cannot "$b is not installed (ci/deps installs slurm-wlm and munge)"
done
[ "$(id -u)" = 0 ] || cannot "the test runs the daemons as root (SlurmUser=root), and this is uid $(id -u)"
chmod 755 "$T"
export SLURM_CONF="$T/slurm.conf"
started=0
stop_all() {
  local rc=$?
  if [ $started = 1 ]; then
    scontrol shutdown >/dev/null 2>&1 || true
    for f in slurmctld slurmd; do # shutdown is asynchronous: wait, then make sure
      for _ in $(seq 1 50); do [ -e "$T/$f.pid" ] && kill -0 "$(cat "$T/$f.pid")" 2>/dev/null || break; sleep 0.1; done
      [ -e "$T/$f.pid" ] && kill -9 "$(cat "$T/$f.pid")" 2>/dev/null || true
    done
  fi
  [ -e "$T/munge/munged.pid" ] && kill "$(cat "$T/munge/munged.pid")" 2>/dev/null || true
  if [ $rc != 0 ] && [ $rc != 77 ]; then
    for f in "$T"/log/*.log "$T"/sl*/logs/*.out; do [ -e "$f" ] && { echo "---- $f"; tail -n 15 "$f"; }; done >&2
  fi
  rm -rf "$T"
}
trap stop_all EXIT

# munge: a fresh key and socket of our own
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/log"
chmod 700 "$T/munge"
head -c 1024 /dev/urandom > "$T/munge/munge.key"
chmod 600 "$T/munge/munge.key"
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" --pid-file="$T/munge/munged.pid" \
  --log-file="$T/log/munged.log" --seed-file="$T/munge/seed" 2> "$T/munged.err" || cannot "munged: $(cat "$T/munged.err")"
echo x | munge -S "$T/munge/munge.sock" | unmunge -S "$T/munge/munge.sock" >/dev/null 2>&1 || cannot "munge does not round-trip"

read -r P1 P2 < <($PY -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
host=$(hostname -s)
cat > "$SLURM_CONF" <<CONF
ClusterName=cladetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$P1
SlurmdPort=$P2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
KillWait=2
MinJobAge=600
NodeName=cladenode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=clade Nodes=cladenode Default=YES MaxTime=INFINITE State=UP
CONF
started=1
slurmctld -i 2> "$T/ctld.err" || cannot "slurmctld: $(cat "$T/ctld.err") $(tail -n 5 "$T/log/slurmctld.log" 2>/dev/null)"
slurmd -N cladenode 2> "$T/slurmd.err" || cannot "slurmd: $(cat "$T/slurmd.err") $(tail -n 5 "$T/log/slurmd.log" 2>/dev/null)"
for i in $(seq 1 100); do
  [ "$(sinfo -h -n cladenode -o %T 2>/dev/null)" = idle ] && break
  [ "$i" = 100 ] && cannot "the node never came up: $(sinfo 2>&1) $(tail -n 5 "$T/log/slurmd.log" "$T/log/slurmctld.log" 2>/dev/null)"
  sleep 0.2
done

make_experiment
X="$T/x.lua"
"$CLADE" run "$X" --db "$T/single.db" --quiet 2>/dev/null
cell_rows "$T/single.db" > "$T/single.rows"
"$CLADE" results --db "$T/single.db" --format csv | cut -d, -f2- > "$T/single.csv"

# wait_jobs DIR: until no job of DIR/jobs.tsv is pending or running (at most 3 minutes)
wait_jobs() {
  local ids
  ids=$(awk -F'\t' '$1 == "array" || $1 == "merge" { print $2 }' "$1/jobs.tsv" | paste -sd,)
  for _ in $(seq 1 900); do
    [ -z "$(squeue -h -j "$ids" -o %i 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  fail "jobs $ids still queued after 3 minutes: $(squeue)"
}
# same DB: the merged run equals the single run, row for row and in clade results
same() {
  cell_rows "$1" | cmp -s - "$T/single.rows" || { cell_rows "$1" | diff "$T/single.rows" - | head -5; fail "$1 differs from the single run"; }
  "$CLADE" results --db "$1" --format csv | cut -d, -f2- | cmp -s - "$T/single.csv" || fail "clade results of $1 differ"
}

# 1: an array of 3 and its merge job
export CLADE_CACHE_DIR="$T/node1" # the node-local cache (the default is $TMPDIR or /tmp)
"$CLADE" slurm "$X" --array 3 --dir "$T/sl" --into "$T/merged.db" --cpus-per-task 1 --time 10 --submit > "$T/out" 2> "$T/err" ||
  fail "clade slurm --submit: $(cat "$T/err")"
grep -q '^#SBATCH --array=0-2$' "$T/sl/array.sbatch" || fail "array.sbatch: $(cat "$T/sl/array.sbatch")"
grep -q '^merge	[0-9]' "$T/out" || fail "no merge job submitted: $(cat "$T/out")"
wait_jobs "$T/sl"
integrity "$T/merged.db" "$T"/sl/shards/*.db
[ "$(run_status "$T/merged.db")" = complete ] || fail "merged run is $(run_status "$T/merged.db"): $(cat "$T"/sl/logs/merge-*.out)"
same "$T/merged.db"
A=$(awk -F'\t' '$1 == "array" { print $2; exit }' "$T/sl/jobs.tsv")
for i in 0 1 2; do
  got=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT slurm_job FROM runs").fetchone()[0])' "$T/sl/shards/$i.db")
  [ "$got" = "${A}_$i" ] || fail "shard $i recorded Slurm job $got, not ${A}_$i"
done
[ -s "$T/node1/clade-cache/cache.db" ] || fail "the shards did not use the node-local cache"
"$CLADE" slurm --status --dir "$T/sl" > "$T/status" || fail "--status of a finished array: $(cat "$T/status")"
grep -q '^total	3/3 done	6/6	' "$T/status" || fail "status: $(cat "$T/status")"

# 2: a task killed with scancel mid-run (cold cache: it is slow), then --resubmit
export CLADE_CACHE_DIR="$T/node2"
"$CLADE" slurm "$X" --array 3 --dir "$T/sl2" --into "$T/merged2.db" --submit > "$T/out" 2> "$T/err" ||
  fail "clade slurm --submit: $(cat "$T/err")"
A=$(awk -F'\t' '$1 == "array" { print $2; exit }' "$T/sl2/jobs.tsv")
$PY - "$T/sl2/shards/1.db" <<'PY' || fail "shard 1 never began"
import sqlite3, sys, time
for _ in range(3000):
    try:
        if sqlite3.connect(sys.argv[1]).execute("SELECT plan_hash FROM runs").fetchone()[0]:
            sys.exit(0)
    except (sqlite3.Error, TypeError):
        pass
    time.sleep(0.02)
sys.exit(1)
PY
scancel "${A}_1"
wait_jobs "$T/sl2"
integrity "$T/merged2.db" "$T"/sl2/shards/*.db
[ "$(run_status "$T/sl2/shards/1.db")" != complete ] || fail "shard 1 finished before scancel reached it"
[ "$(run_status "$T/merged2.db")" = incomplete ] || fail "merged run with a cancelled shard is $(run_status "$T/merged2.db")"
grep -q "incomplete: shards 1 (" "$T"/sl2/logs/merge-*.out || fail "the merge does not name shard 1: $(cat "$T"/sl2/logs/merge-*.out)"
set +e
"$CLADE" slurm "$X" --status --dir "$T/sl2" > "$T/status"; rc=$?
set -e
[ $rc = 3 ] && grep -q "^1	failed	" "$T/status" && grep -q "^0	done	" "$T/status" || fail "status after scancel (exit $rc): $(cat "$T/status")"
"$CLADE" slurm "$X" --resubmit --dir "$T/sl2" > "$T/out" 2> "$T/err" || fail "--resubmit: $(cat "$T/err")"
grep -q '^array	[0-9]*	1$' "$T/out" || fail "--resubmit did not resubmit shard 1 alone: $(cat "$T/out")"
wait_jobs "$T/sl2"
integrity "$T/merged2.db" "$T"/sl2/shards/*.db
[ "$(run_status "$T/merged2.db")" = complete ] || fail "merged run after --resubmit is $(run_status "$T/merged2.db")"
cell_rows "$T/merged2.db" | cmp -s - "$T/single.rows" || fail "merge after --resubmit differs from the single run"
B=$(awk -F'\t' '$1 == "array" { a = $2 } END { print a }' "$T/sl2/jobs.tsv")
got=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT slurm_job FROM runs").fetchone()[0])' "$T/sl2/shards/1.db")
[ "$got" = "${B}_1" ] || fail "the resubmitted shard recorded Slurm job $got, not ${B}_1"
"$CLADE" slurm "$X" --resubmit --dir "$T/sl2" 2>&1 | grep -q "nothing to resubmit" || fail "--resubmit of a finished array submitted again"
echo "test_slurm: ok"
