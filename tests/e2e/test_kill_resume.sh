#!/usr/bin/env bash
# kill -9 at random moments, resume each time: the finished run equals a clean run, row for
# row, with no duplicates, and the database passes PRAGMA integrity_check. Then two
# processes share one run through the claims table.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
T=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" --per-class 10 >/dev/null 2>&1
X="$T/x.lua"
cat "$CLADE_SRC/experiments/quickstart.lua" "$CLADE_SRC/experiments/sample_ablation.lua" | grep -v '^model "sample-clip"\|^dataset "rare-sample"\|^local sample' > "$T/body.lua"
{ echo 'local sample = getenv("CLADE_SAMPLE")'
  echo 'model "sample-clip" { path = sample .. "/model" }'
  echo 'dataset "rare-sample" { root = sample .. "/data/rare_sample" }'
  cat "$T/body.lua"; } > "$X"

rows() { # results and predictions of a run, without run ids, sorted
  "$CLADE" results --db "$1" --run "$2" --format csv | tail -n +2 | cut -d, -f2- | sort
  "$CLADE" predictions --db "$1" --run "$2" --format csv | tail -n +2 | sort
}
"$CLADE" run "$X" --db "$T/clean.db" --quiet 2>/dev/null
rows "$T/clean.db" 1 > "$T/clean.rows"
[ -s "$T/clean.rows" ] || fail "clean run produced nothing"

# kill -9 at random points; each restart resumes (and reaps the dead process's claim)
kills=0
for i in $(seq 1 12); do
  "$CLADE" run "$X" --db "$T/k.db" --quiet 2>/dev/null &
  pid=$!
  sleep "0.$(( RANDOM % 6 ))$(( RANDOM % 10 ))"
  if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
  wait $pid 2>/dev/null || true
done
"$CLADE" run "$X" --db "$T/k.db" --quiet 2>/dev/null
id=$("$CLADE" log --db "$T/k.db" --format json | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["status"]=="complete"]; print(r[0]["id"])')
rows "$T/k.db" "$id" > "$T/k.rows"
diff -q "$T/clean.rows" "$T/k.rows" >/dev/null || { diff "$T/clean.rows" "$T/k.rows" | head -5; fail "resumed run differs from a clean run ($kills kills)"; }
python3 - "$T/k.db" <<'PY' || fail "integrity or duplicates"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
dup = db.execute("SELECT COUNT(*) FROM (SELECT run_id, experiment, model, dataset, protocol, text_type, shots, params_json, COUNT(*) c FROM evaluations GROUP BY 1,2,3,4,5,6,7,8 HAVING c > 1)").fetchone()[0]
assert dup == 0, dup
PY
echo "kill -9 x$kills, resumed: equal to the clean run"

# two processes on one database split one run (a fresh cache, so there is work to share)
mkdir -p "$T/two"
"$CLADE" run "$X" --db "$T/two/two.db" --quiet 2>/dev/null & p1=$!
sleep 0.05
"$CLADE" run "$X" --db "$T/two/two.db" --quiet 2>/dev/null & p2=$!
wait $p1; wait $p2
runs=$("$CLADE" log --db "$T/two/two.db" --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
if [ "$runs" = 1 ]; then
  rows "$T/two/two.db" 1 > "$T/two.rows"
  diff -q "$T/clean.rows" "$T/two.rows" >/dev/null || fail "two processes: rows differ from a clean run"
  "$CLADE" log --db "$T/two/two.db" | grep complete >/dev/null || fail "shared run not complete"
else
  fail "two processes made $runs runs instead of sharing one"
fi
echo "test_kill_resume: ok"
