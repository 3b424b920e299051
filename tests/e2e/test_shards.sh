#!/usr/bin/env bash
# clade run --shard I/N and clade merge: 3 shards merged equal one run row for row (results,
# predictions, supports); merging twice adds nothing; a shard killed mid-run leaves the merged
# run incomplete naming it, complete once it is rerun; two shards disagreeing on a job is an
# error naming it that leaves the target as it was; shards of another plan are refused.
# PRAGMA integrity_check after every step.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/shards_common.sh"
make_experiment
X="$T/x.lua"

"$CLADE" run "$X" --db "$T/single.db" --quiet 2>/dev/null
cell_rows "$T/single.db" > "$T/single.rows"
grep -q '^support|' "$T/single.rows" || fail "the single run stored no supports"
grep -q '^predictions|' "$T/single.rows" || fail "the single run stored no predictions"

# bad shard specifications are refused before anything runs
for bad in 3/3 -1/3 1/0 a/3 1/3x 1; do
  if "$CLADE" run "$X" --shard "$bad" --db "$T/bad.db" 2> "$T/err"; then fail "--shard $bad accepted"; fi
  grep -q -- "--shard is I/N" "$T/err" || fail "--shard $bad: $(cat "$T/err")"
done
[ ! -e "$T/bad.db" ] || fail "a refused --shard created a database"

# 3 shards, each its own database and cache; together they do the run's 6 jobs once
total=0
for i in 0 1 2; do
  "$CLADE" run "$X" --shard "$i/3" --db "$T/s/$i.db" 2> "$T/err$i" || fail "shard $i: $(cat "$T/err$i")"
  n=$(sed -n "s/.*shard $i\/3: \([0-9]*\) of the plan's 6 jobs.*/\1/p" "$T/err$i")
  [ -n "$n" ] && [ "$n" -ge 1 ] || fail "shard $i planned no job: $(cat "$T/err$i")"
  total=$((total + n))
  integrity "$T/s/$i.db"
done
[ "$total" = 6 ] || fail "the shards planned $total jobs, not 6"
"$CLADE" merge "$T"/s/{0,1,2}.db --into "$T/m.db" > "$T/out" 2> "$T/err" || fail "merge: $(cat "$T/err")"
grep -q '^status	complete' "$T/out" || fail "merge not complete: $(cat "$T/out")"
integrity "$T/m.db" "$T"/s/*.db
cell_rows "$T/m.db" > "$T/m.rows"
diff -q "$T/single.rows" "$T/m.rows" >/dev/null || { diff "$T/single.rows" "$T/m.rows" | head -5; fail "3 shards merged differ from a single run"; }
[ "$(run_status "$T/m.db")" = complete ] || fail "merged run not complete"
"$CLADE" results --db "$T/m.db" --format csv | cut -d, -f2- > "$T/m.csv"
"$CLADE" results --db "$T/single.db" --format csv | cut -d, -f2- > "$T/single.csv"
cmp -s "$T/m.csv" "$T/single.csv" || fail "clade results of the merge differ from the single run's"
# idempotent
"$CLADE" merge "$T"/s/{0,1,2}.db --into "$T/m.db" > "$T/out2" 2>/dev/null || fail "second merge failed"
grep -q '^added	0$' "$T/out2" || fail "merging twice added rows: $(cat "$T/out2")"
cell_rows "$T/m.db" | cmp -s - "$T/m.rows" || fail "merging twice changed the rows"
[ "$("$CLADE" log --db "$T/m.db" --format json | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
  fail "merging twice made a second run"
integrity "$T/m.db"

# a shard killed mid-run (kill -9 once its first job is done, with a cold cache)
mkdir -p "$T/k"
cp "$T/s/0.db" "$T/s/2.db" "$T/k/"
"$CLADE" run "$X" --shard 1/3 --db "$T/k/1.db" --cache "$T/k/cold.db" --quiet 2>/dev/null & pid=$!
$PY - "$T/k/1.db" $pid <<'PY'
import os, signal, sqlite3, sys, time
db, pid = sys.argv[1], int(sys.argv[2])
for _ in range(6000):
    try:
        if sqlite3.connect(db).execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0] >= 1:
            break
    except sqlite3.Error:
        pass
    time.sleep(0.005)
os.kill(pid, signal.SIGKILL)
PY
wait $pid 2>/dev/null && fail "the shard finished before it was killed"
integrity "$T/k/1.db"
set +e
"$CLADE" merge "$T"/k/{0,1,2}.db --into "$T/km.db" > "$T/out" 2> "$T/err"; rc=$?
set -e
[ $rc = 3 ] || fail "merge with a killed shard: exit $rc, want 3: $(cat "$T/err")"
grep -q '^rerun	1$' "$T/out" || fail "merge does not name shard 1 to rerun: $(cat "$T/out")"
grep -q "incomplete: shards 1 (running, 1 of 2 jobs, $T/k/1.db)" "$T/err" || fail "merge does not say why: $(cat "$T/err")"
[ "$(run_status "$T/km.db")" = incomplete ] || fail "merged run with a killed shard is $(run_status "$T/km.db")"
"$CLADE" log --db "$T/km.db" | grep -q "x.lua \[merged 3 shards\] .* incomplete " || fail "clade log: $("$CLADE" log --db "$T/km.db")"
# log and results name the shards that are not complete (read whole: grep -q would cut the pipe)
"$CLADE" log --db "$T/km.db" > "$T/log"
grep -q "^ *shards not complete: 1 (running, 1 of 2 jobs, $T/k/1.db)$" "$T/log" || fail "clade log does not name the shard: $(cat "$T/log")"
"$CLADE" log --db "$T/km.db" --format json > "$T/log"
grep -q "\"incomplete_shards\": *\"1 (running, 1 of 2 jobs, $T/k/1.db)\"" "$T/log" || fail "clade log json: $(cat "$T/log")"
"$CLADE" results --db "$T/km.db" > "$T/log"
grep -q "^run 1: .*, incomplete (shards 1 (running, 1 of 2 jobs, $T/k/1.db))," "$T/log" ||
  fail "clade results does not name the shard: $(head -2 "$T/log")"
"$CLADE" log --db "$T/k/1.db" | grep -q "x.lua \[shard 1/3\] " || fail "clade log of a shard: $("$CLADE" log --db "$T/k/1.db")"
integrity "$T/km.db"
# a shard that never ran counts as missing
set +e
"$CLADE" merge "$T"/k/{0,2}.db "$T/k/never.db" --into "$T/km2.db" > "$T/out" 2> "$T/err"; rc=$?
set -e
[ $rc = 3 ] && grep -q "1 (missing)" "$T/err" || fail "a missing shard: exit $rc: $(cat "$T/err")"
# rerun the killed shard (it resumes), merge again: complete and equal to the single run
"$CLADE" run "$X" --shard 1/3 --db "$T/k/1.db" --cache "$T/k/cold.db" 2> "$T/err" || fail "rerun: $(cat "$T/err")"
grep -q "resuming the unfinished run 1" "$T/err" || fail "the rerun did not resume the shard: $(cat "$T/err")"
"$CLADE" merge "$T"/k/{0,1,2}.db --into "$T/km.db" > "$T/out" 2> "$T/err" || fail "merge after rerun: $(cat "$T/err")"
[ "$(run_status "$T/km.db")" = complete ] || fail "merged run not complete after the rerun"
"$CLADE" log --db "$T/km.db" | grep -q "x.lua \[merged 3 shards\] .* complete " || fail "clade log: $("$CLADE" log --db "$T/km.db")"
cell_rows "$T/km.db" | cmp -s - "$T/single.rows" || fail "merge after a kill and rerun differs from the single run"
integrity "$T/km.db" "$T"/k/*.db

# the same job with other values in two shards: an error naming it; the target is untouched
cp "$T/s/2.db" "$T/bad2.db"
$PY - "$T/bad2.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE results SET value = value + 0.25 WHERE rowid = (SELECT min(rowid) FROM results WHERE trial IS NULL)")
db.commit()
PY
cp "$T/m.db" "$T/before.db"
cell_rows "$T/m.db" > "$T/before.rows"
if "$CLADE" merge "$T/s/0.db" "$T/bad2.db" --into "$T/m.db" 2> "$T/err" >/dev/null; then fail "a conflicting shard merged"; fi
grep -q "bad2.db: run 1 (shard 2) records experiment '[^']*', model 'sample-clip', dataset '[^']*', protocol [a-z_]*.* with other values" "$T/err" ||
  fail "the conflict does not name the job: $(cat "$T/err")"
cell_rows "$T/m.db" | cmp -s - "$T/before.rows" || fail "a failed merge changed the target"
integrity "$T/m.db"

# columns and tables later migrations add (say, result axes) merge too: the merge reads them
# from the schema. Shards and target get a results column and a table referencing evaluations.
mkdir -p "$T/g"
"$CLADE" merge "$T/s/0.db" --into "$T/g/m.db" >/dev/null 2>&1 || true
for db in "$T/s/0.db" "$T/s/1.db" "$T/s/2.db" "$T/g/m.db"; do
  [ "$db" = "$T/g/m.db" ] || cp "$db" "$T/g/"
  $PY - "$T/g/$(basename "$db")" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA foreign_keys = ON")
if sys.argv[1].endswith("/m.db"):
    db.execute("DELETE FROM runs")
db.execute("ALTER TABLE results ADD COLUMN axis TEXT")
db.execute("UPDATE results SET axis = metric || '@' || coalesce(trial, 'all')")
db.execute("CREATE TABLE extra(eval_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE, k TEXT, v REAL)")
db.execute("INSERT INTO extra SELECT id, experiment || '/' || dataset, shots + 0.5 FROM evaluations")
db.commit()
PY
done
"$CLADE" merge "$T"/g/{0,1,2}.db --into "$T/g/m.db" > /dev/null 2> "$T/err" || fail "merge with added columns: $(cat "$T/err")"
cell_rows "$T/g/m.db" > "$T/g.rows"
grep -q "^results|.*'top1@all'$" "$T/g.rows" || fail "the added results column did not merge"
for i in 0 1 2; do cell_rows "$T/g/$i.db"; done | grep '^extra|' | LC_ALL=C sort > "$T/g.extra"
[ -s "$T/g.extra" ] && grep '^extra|' "$T/g.rows" | cmp -s - "$T/g.extra" || fail "the added table did not merge"
grep '^results|' "$T/g.rows" | sed "s/|'[^']*'\$//" | cmp -s - <(grep '^results|' "$T/single.rows") ||
  fail "the results beside the added column differ from the single run"
integrity "$T/g/m.db"

# a shard of another split (--shard 0/2) is refused naming both databases
"$CLADE" run "$X" --shard 0/2 --db "$T/other.db" --quiet 2>/dev/null
if "$CLADE" merge "$T/s/0.db" "$T/other.db" --into "$T/x.db" 2> "$T/err" >/dev/null; then fail "shards of two splits merged"; fi
grep -q "other.db: run 1 is shard 0/2 .*s/0.db holds shard 0/3" "$T/err" || fail "no clear refusal: $(cat "$T/err")"
# clade cache merge: the shards' caches into one; merging again adds nothing
n=$($PY -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM embeddings").fetchone()[0])' "$T/k/cold.db")
[ "$n" -gt 0 ] || fail "the killed shard's cache is empty"
"$CLADE" cache merge "$T/k/cold.db" "$T/s/cache.db" --into "$T/cm/cache.db" > "$T/out" 2> "$T/err" || fail "cache merge: $(cat "$T/err")"
grep -q "^$T/k/cold.db	$n\$" "$T/out" || fail "cache merge did not add the $n embeddings: $(cat "$T/out")"
"$CLADE" cache merge "$T/k/cold.db" "$T/s/cache.db" --db "$T/cm/results.db" > "$T/out" || fail "second cache merge"
grep -q '^added_embeddings	0$' "$T/out" || fail "merging caches twice added: $(cat "$T/out")"
integrity "$T/cm/cache.db"
"$CLADE" run "$X" --db "$T/cm/results.db" 2> "$T/err" >/dev/null || fail "run on the merged cache: $(cat "$T/err")"
grep -q "nothing encoded" "$T/err" || fail "a run on the merged cache encoded again: $(cat "$T/err")"
if "$CLADE" cache merge "$T/single.db" --into "$T/cm/cache.db" 2> "$T/err"; then fail "a results database merged as a cache"; fi
grep -q "single.db: not an embedding cache" "$T/err" || fail "no clear error: $(cat "$T/err")"
echo "test_shards: ok"
