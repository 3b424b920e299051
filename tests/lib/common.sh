# Shared by the shell tests (sourced): a temporary folder, fail, and a run's rows for comparing.
: "${CLADE:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
MOUNTS=() # what a test mounts, unmounted on exit
cleanup() {
  kill -9 $(jobs -p) 2>/dev/null || true
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || true; done
  chmod -R u+w "$T" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# rows DB RUN: results and predictions of a run, without run ids, sorted.
rows() {
  "$CLADE" results --db "$1" --run "$2" --format csv | tail -n +2 | cut -d, -f2- | sort
  "$CLADE" predictions --db "$1" --run "$2" --format csv | tail -n +2 | sort
}

# same_rows DB RUN WANT_FILE WHAT: the run's rows equal WANT_FILE's, or fail naming WHAT.
same_rows() {
  rows "$1" "$2" > "$T/got.rows"
  [ -s "$3" ] || fail "$4: the reference rows are empty"
  diff -q "$3" "$T/got.rows" >/dev/null || { diff "$3" "$T/got.rows" | head -5 >&2; fail "$4: rows differ from a clean run"; }
}

# intact DB: PRAGMA integrity_check says ok.
intact() {
  local r
  r=$($PY -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$1")
  [ "$r" = ok ] || fail "$1: integrity_check: $r"
}

# last_complete DB: the id of the newest complete run.
last_complete() {
  "$CLADE" log --db "$1" --format json |
    $PY -c 'import json, sys; r = [x["id"] for x in json.load(sys.stdin) if x["status"] == "complete"]; print(max(r) if r else "")'
}

# sample_zero_shot: the synthetic sample in $T/s, a zero-shot experiment on it in $T/x.lua,
# and the rows of a clean run of it, made apart, in $T/clean.rows.
sample_zero_shot() {
  "$CLADE" synth --out "$T/s" >/dev/null 2>&1
  cat > "$T/x.lua" <<LUA
model "m" { path = "$T/s/model" }
dataset "d" { root = "$T/s/data/rare_sample" }
experiment "x" { models = { "m" }, datasets = { "d" }, protocol = zero_shot { text_types = { "common" } } }
LUA
  "$CLADE" run "$T/x.lua" --db "$T/clean/r.db" --quiet 2>/dev/null
  rows "$T/clean/r.db" 1 > "$T/clean.rows"
}

# private_mounts "$0" "$@", right after sourcing: as root, reruns the test in a private mount
# namespace, so that what it mounts vanishes with it (skips where that is not permitted).
private_mounts() {
  [ "$(id -u)" = 0 ] && [ -z "${CLADE_TEST_NS:-}" ] || return 0
  unshare -m --propagation private true 2>/dev/null || { echo "SKIP: mount namespaces are not permitted here" >&2; exit 77; }
  rm -rf "$T"
  trap - EXIT
  CLADE_TEST_NS=1 exec unshare -m --propagation private bash "$@"
}

# read_only DIR...: makes folders read-only: a read-only bind mount as root (who writes
# through permissions), chmod otherwise.
read_only() {
  local d
  for d in "$@"; do
    if [ "$(id -u)" = 0 ]; then
      mount --bind "$d" "$d" 2>/dev/null || { echo "SKIP: bind mounts are not permitted here" >&2; exit 77; }
      MOUNTS+=("$d")
      mount -o remount,ro,bind "$d" 2>/dev/null || { echo "SKIP: read-only remounts are not permitted here" >&2; exit 77; }
    else
      chmod a-w "$d"
    fi
  done
}

# kill_at_state PID LO HI PATTERN: kill -9 PID once the training state file (PATTERN, a glob
# expanded at each look) names state-N with LO <= N <= HI; prints N ("" when PID ended first).
# Run in $(...): the caller then waits for PID.
kill_at_state() {
  local pid=$1 lo=$2 hi=$3 pattern=$4 st n
  for _ in $(seq 1 3000); do
    st=$(cat $pattern 2>/dev/null || true)
    n=${st#state-}
    if [ -n "$st" ] && [ "$n" -ge "$lo" ] && [ "$n" -le "$hi" ]; then
      kill -9 "$pid"
      echo "$n"
      return
    fi
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.02
  done
}
