#!/usr/bin/env bash
# An older results database (schema 4, written by the clade of main before the retrieval axes:
# tests/data/v4db/make.sh) still opens and reads: it migrates forward, its cells show empty
# retrieval axes, and new runs (and compare across old and new) work on it.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# one value from the database (python3's sqlite3: no sqlite3 CLI needed)
sql() { python3 -c 'import sqlite3, sys; r = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print(r[0] if r else "")' "$@"; }
cp "$CLADE_SRC/tests/data/v4db/clade_v4.db" "$T/r.db"
[ "$(sql "$T/r.db" 'PRAGMA user_version')" = 4 ] || fail "the fixture is not schema 4"
nres=$(sql "$T/r.db" 'SELECT count(*) FROM results WHERE eval_id IN (SELECT id FROM evaluations WHERE run_id = 1)')

"$CLADE" results --db "$T/r.db" --run 1 --format json > "$T/r.json" || fail "results json of an old run"
[ "$(sql "$T/r.db" 'PRAGMA user_version')" = 11 ] || fail "not migrated to schema 11"
python3 - "$T/r.json" "$nres" <<'PY' || fail "old results json: $(head -c 400 "$T/r.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == int(sys.argv[2]), len(rows)
for r in rows:
    assert r["query"] == r["key"] == r["split"] == r["rank"] == "", r
assert {r["protocol"] for r in rows} == {"zero_shot", "few_shot"}
assert any(r["metric"] == "top1" and r["text_type"] == "common" for r in rows)
# stored before hits (schema 8): top1 has its interval from `correct`, top3/top5 none
assert any(r["ci"] for r in rows if r["metric"] == "top1"), rows
assert not any(r["ci"] for r in rows if r["metric"] in ("top3", "top5")), rows
PY
"$CLADE" results --db "$T/r.db" --run 1 --format csv | head -1 | grep -qx 'run,experiment,model,dataset,protocol,text_type,shots,trial,metric,value,n,query,key,split,rank,ci_low,ci_high,ci_resamples,ci_seed,tie' \
  || fail "csv header"
"$CLADE" results --db "$T/r.db" --run 1 | grep -q "retrieval" && fail "the table shows a retrieval column without retrieval cells"
"$CLADE" predictions --db "$T/r.db" --run 1 --format csv | grep -c ',,,,,$' | grep -qx "$(sql "$T/r.db" 'SELECT count(*) FROM predictions p JOIN evaluations v ON v.id = p.eval_id WHERE v.run_id = 1')" \
  || fail "old predictions"
"$CLADE" log --db "$T/r.db" | grep -c complete | grep -qx 2 || fail "log of the old runs"
"$CLADE" compare 1 2 --db "$T/r.db" --format json > "$T/c.json" || fail "compare of two old runs"
python3 -c "import json,sys; rows=json.load(open(sys.argv[1])); assert rows and all(r['verdict']=='same' and r['query']=='' for r in rows), rows" "$T/c.json" \
  || fail "compare json: $(cat "$T/c.json")"
"$CLADE" report --db "$T/r.db" --out "$T/r.html" 2> "$T/err" || fail "report: $(cat "$T/err")"
grep -q "few_shot" "$T/r.html" || fail "report of the old runs"

# a new run into the migrated database; old and new compare
"$CLADE" synth --out "$T/s" 2>/dev/null
cat > "$T/exp.lua" <<LUA
model "tiny" { path = "$T/s/model" }
dataset "rare" { root = "$T/s/data/rare_sample" }
experiment "zs" { models = { "tiny" }, datasets = { "rare" }, protocol = zero_shot { text_types = { "common", "scientific" } } }
LUA
"$CLADE" run "$T/exp.lua" --db "$T/r.db" --quiet 2> "$T/err" || fail "a run into the migrated database: $(cat "$T/err")"
"$CLADE" compare 2 3 --db "$T/r.db" > "$T/c.txt" || fail "compare old and new: $(cat "$T/c.txt")"
grep -q "zero_shot  common" "$T/c.txt" || fail "old and new cells do not match: $(cat "$T/c.txt")"
# schema 9 -> 10: a merged run stored 'interrupted' (a shard missing) becomes 'incomplete'; the
# runs table is rebuilt for its CHECK with every row, id and reference kept. The migrated
# database is taken back to schema 9 (runs' CHECK without 'incomplete', no config_hash) holding
# such a run.
cp "$T/r.db" "$T/v9.db"
python3 - "$T/v9.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("INSERT INTO runs(file, clade_version, started_at, status, shard_count) SELECT file, clade_version,"
           " started_at, 'interrupted', 3 FROM runs WHERE id = 1")
db.execute("INSERT INTO run_shards(run_id, shard_index, source, source_run, status, jobs_done, plan_jobs, merged_at)"
           " VALUES (4, 0, 'shards/0.db', 1, 'complete', 2, 2, '2024-01-01T00:00:00Z')")
db.commit()
db.execute("PRAGMA writable_schema = ON")
db.execute("UPDATE sqlite_schema SET sql = replace(sql, ?, '') WHERE name = 'runs'", (", 'incomplete'",))
db.execute("PRAGMA writable_schema = OFF")
db.execute("ALTER TABLE evaluations DROP COLUMN config_hash") # schema 11's
db.execute("PRAGMA user_version = 9")
db.commit()
db.close()
db = sqlite3.connect(sys.argv[1])
assert "incomplete" not in db.execute("SELECT sql FROM sqlite_schema WHERE name = 'runs'").fetchone()[0]
PY
counts="SELECT count(*) || '/' || (SELECT count(*) FROM evaluations) || '/' || (SELECT count(*) FROM results) || '/' ||
  (SELECT count(*) FROM intervals) FROM runs"
before=$(sql "$T/v9.db" "$counts")
"$CLADE" log --db "$T/v9.db" > "$T/log" || fail "log of a schema 9 database"
[ "$(sql "$T/v9.db" 'PRAGMA user_version')" = 11 ] || fail "schema 9 not migrated to 11"
st=$(sql "$T/v9.db" "SELECT group_concat(s) FROM (SELECT id || ':' || status s FROM runs ORDER BY id)")
[ "$st" = "1:complete,2:complete,3:complete,4:incomplete" ] || fail "statuses after the migration: $st"
[ "$before" = "$(sql "$T/v9.db" "$counts")" ] || fail "the rebuild lost rows: $before, then $(sql "$T/v9.db" "$counts")"
[ "$(sql "$T/v9.db" 'PRAGMA integrity_check')" = ok ] && [ -z "$(sql "$T/v9.db" 'PRAGMA foreign_key_check')" ] ||
  fail "the migrated database is not intact"
[ "$(sql "$T/v9.db" "SELECT count(*) FROM evaluations WHERE config_hash IS NOT NULL")" = 0 ] || fail "old rows got a config_hash"
grep -q "^4 .*incomplete" "$T/log" && grep -q "shards not complete: 1 (missing), 2 (missing)$" "$T/log" || fail "log: $(cat "$T/log")"
echo ok
