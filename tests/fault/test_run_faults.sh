#!/usr/bin/env bash
# Faults around a run, each ending with a clear message (or none needed), an intact database
# (PRAGMA integrity_check) and a run equal to a clean one made apart: a second writer holding
# the results database's or the cache's write lock (SQLite BUSY: the run waits for it), a
# checkpoint truncated between runs (refused naming the file; restored, the rerun completes),
# SIGTERM in the first batch (stops after the evaluation in flight, marked interrupted; the
# rerun resumes it).
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
sample_zero_shot
# hold DB [SECONDS]: a second writer takes DB's write lock, says so in $T/held, holds it (1.5 s)
hold() {
  rm -f "$T/held"
  $PY - "$1" "${2:-1.5}" "$T/held" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
PY
  for _ in $(seq 1 100); do [ -e "$T/held" ] && return; sleep 0.05; done
  fail "the second writer never took the lock"
}

# 1. BUSY: another writer holds the results database, then the cache: the run waits, completes
mkdir -p "$T/b"
"$CLADE" run "$T/x.lua" --db "$T/b/r.db" --quiet 2>/dev/null # the files exist, the cache is full
hold "$T/b/r.db"
"$CLADE" run "$T/x.lua" --db "$T/b/r.db" --quiet 2> "$T/err" || fail "a run behind a held results database: $(cat "$T/err")"
wait
same_rows "$T/b/r.db" 2 "$T/clean.rows" "a run behind a held results database"
$PY -c 'import sqlite3, sys; d = sqlite3.connect(sys.argv[1]); d.execute("DELETE FROM embeddings"); d.commit()' "$T/b/cache.db"
hold "$T/b/cache.db"
"$CLADE" run "$T/x.lua" --db "$T/b/r.db" --quiet 2> "$T/err" || fail "a run behind a held cache: $(cat "$T/err")"
wait
! grep -q warning "$T/err" || fail "a run behind a held cache warned: $(cat "$T/err")"
same_rows "$T/b/r.db" 3 "$T/clean.rows" "a run behind a held cache"
intact "$T/b/r.db"
intact "$T/b/cache.db"

# 2. the checkpoint truncated between runs: refused naming it; restored, the rerun completes
mkdir -p "$T/c"
"$CLADE" run "$T/x.lua" --db "$T/c/r.db" --quiet 2>/dev/null
W="$T/s/model/open_clip_model.safetensors"
cp "$W" "$T/weights"
truncate -s $(( $(stat -c %s "$W") / 2 )) "$W"
if "$CLADE" run "$T/x.lua" --db "$T/c/r.db" --quiet 2> "$T/err"; then fail "a truncated checkpoint was accepted"; fi
grep -q "open_clip_model.safetensors" "$T/err" || fail "the error does not name the checkpoint: $(cat "$T/err")"
intact "$T/c/r.db"
cp "$T/weights" "$W"
"$CLADE" run "$T/x.lua" --db "$T/c/r.db" --quiet 2> "$T/err" || fail "the rerun with the checkpoint restored: $(cat "$T/err")"
same_rows "$T/c/r.db" "$(last_complete "$T/c/r.db")" "$T/clean.rows" "the rerun after a truncated checkpoint"
intact "$T/c/r.db"

# 3. SIGTERM in the first batch (the evaluation begun, nothing stored yet): a clear stop, resumable
mkdir -p "$T/t"
"$CLADE" run "$T/x.lua" --db "$T/t/r.db" 2> "$T/err" &
pid=$!
for _ in $(seq 1 400); do grep -q "clade: x: m on d, zero_shot" "$T/err" && break; sleep 0.02; done
grep -q "clade: x: m on d, zero_shot" "$T/err" || fail "the evaluation never began: $(cat "$T/err")"
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc = 143 ] || fail "SIGTERM: exit status $rc, not 143: $(cat "$T/err")"
grep -q "SIGTERM: stopping after the evaluation in flight" "$T/err" || fail "no word of SIGTERM: $(cat "$T/err")"
grep -q "run 1 interrupted; \`clade run .*x.lua\` resumes it" "$T/err" || fail "no word of resuming: $(cat "$T/err")"
intact "$T/t/r.db"
"$CLADE" log --db "$T/t/r.db" | grep -q interrupted || fail "the run is not marked interrupted: $("$CLADE" log --db "$T/t/r.db")"
"$CLADE" run "$T/x.lua" --db "$T/t/r.db" --quiet 2> "$T/err" || fail "the rerun after SIGTERM: $(cat "$T/err")"
same_rows "$T/t/r.db" "$(last_complete "$T/t/r.db")" "$T/clean.rows" "the run resumed after SIGTERM"
intact "$T/t/r.db"
echo "test_run_faults: BUSY, a truncated checkpoint and SIGTERM: clear, intact, then equal to a clean run"
