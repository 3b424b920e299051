#!/usr/bin/env bash
# kill -9 at random moments, resume each time: at least one kill lands mid-run (the killed
# process had stored an evaluation and not finished), and the finished run equals a clean run
# made apart (its own folder and embedding cache), row for row, with no duplicates, and the
# database passes PRAGMA integrity_check. Then two processes share one run through the claims
# table.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" --per-class 10 >/dev/null 2>&1
X="$T/x.lua"
cat "$CLADE_SRC/experiments/quickstart.lua" "$CLADE_SRC/experiments/sample_ablation.lua" | grep -v '^model "sample-clip"\|^dataset "rare-sample"\|^local sample' > "$T/body.lua"
{ echo 'local sample = getenv("CLADE_SAMPLE")'
  echo 'model "sample-clip" { path = sample .. "/model" }'
  echo 'dataset "rare-sample" { root = sample .. "/data/rare_sample" }'
  cat "$T/body.lua"; } > "$X"

"$CLADE" run "$X" --db "$T/clean/clean.db" --quiet 2>/dev/null
rows "$T/clean/clean.db" 1 > "$T/clean.rows"
[ -s "$T/clean.rows" ] || fail "clean run produced nothing"

# evaluations stored so far by the unfinished run of $1 (0 when there is none)
stored() {
  $PY - "$1" <<'PY'
import os, sqlite3, sys
if not os.path.exists(sys.argv[1]): print(0); sys.exit()
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT COUNT(*) FROM evaluations e JOIN runs r ON r.id = e.run_id WHERE r.status = 'running'").fetchone()[0])
PY
}
# kill -9 at random points (the first once an evaluation is stored); each restart resumes the
# unfinished run and reaps the dead process's claim
K="$T/k/k.db"
kills=0 midrun=0
for i in $(seq 1 12); do
  before=$(stored "$K")
  "$CLADE" run "$X" --db "$K" --quiet 2>/dev/null &
  pid=$!
  if [ $i = 1 ]; then
    for _ in $(seq 1 400); do [ "$(stored "$K")" -gt 0 ] && break; sleep 0.05; done
  else
    sleep "0.$(( RANDOM % 6 ))$(( RANDOM % 10 ))"
  fi
  if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
  wait $pid 2>/dev/null || true
  after=$(stored "$K")
  [ "$after" -gt "$before" ] && midrun=$((midrun + 1)) # it stored and did not finish
done
[ "$midrun" -ge 1 ] || fail "no kill landed mid-run ($kills kills): nothing was resumed"
"$CLADE" run "$X" --db "$K" --quiet 2>/dev/null
id=$("$CLADE" log --db "$K" --format json | $PY -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["status"]=="complete"]; print(r[0]["id"])')
same_rows "$K" "$id" "$T/clean.rows" "the run resumed after $kills kills ($midrun mid-run)"
intact "$K"
$PY - "$K" <<'PY' || fail "duplicate evaluations"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
dup = db.execute("SELECT COUNT(*) FROM (SELECT run_id, experiment, model, dataset, protocol, text_type, shots, params_json, COUNT(*) c FROM evaluations GROUP BY 1,2,3,4,5,6,7,8 HAVING c > 1)").fetchone()[0]
assert dup == 0, dup
PY
echo "kill -9 x$kills ($midrun mid-run), resumed: equal to a clean run made apart"

# two processes on one database split one run (a fresh cache, so there is work to share)
mkdir -p "$T/two"
"$CLADE" run "$X" --db "$T/two/two.db" --quiet 2>/dev/null & p1=$!
sleep 0.05
"$CLADE" run "$X" --db "$T/two/two.db" --quiet 2>/dev/null & p2=$!
wait $p1; wait $p2
runs=$("$CLADE" log --db "$T/two/two.db" --format json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$runs" = 1 ] || fail "two processes made $runs runs instead of sharing one"
same_rows "$T/two/two.db" 1 "$T/clean.rows" "two processes"
"$CLADE" log --db "$T/two/two.db" | grep complete >/dev/null || fail "shared run not complete"
echo "test_kill_resume: ok"
