#!/usr/bin/env bash
# clade export: a run's per-example predictions with their embeddings' provenance as one CSV
# (libcsv quoting) that Python's csv module reads back field for field: every prediction of
# the run, equal to clade predictions' JSON; accuracies recomputed from its `correct` equal
# clade results' top1; the provenance equals the database's (evaluations.model_hash, the run's
# backend, precision, decode, version); names with commas, quotes and a newline survive;
# --out is written atomically; a missing run is an error naming it.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
"$CLADE" synth --out "$T/s" --classes 4 --per-class 5 >/dev/null 2>&1
cat > "$T/x.lua" <<LUA
model "m, \"one\"" { path = "$T/s/model" }
model "m2" { path = "$T/s/model", gelu = "quick" }
dataset "rare" { root = "$T/s/data/rare_sample" }
experiment "zs\ntwo lines" { models = { "m, \"one\"", "m2" }, datasets = { "rare" }, protocol = zero_shot { text_types = { "common" } } }
experiment "fs" { models = { "m2" }, datasets = { "rare" }, protocol = few_shot { shots = { 1, 2 }, trials = 3 } }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet 2>/dev/null || fail "run"
"$CLADE" export --db "$T/r.db" --run 1 --out "$T/e.csv" 2> "$T/err" || fail "export: $(cat "$T/err")"
grep -q "predictions of run 1 written to $T/e.csv" "$T/err" || fail "export message: $(cat "$T/err")"
ls "$T"/e.csv.tmp.* >/dev/null 2>&1 && fail "temporary file left behind"
"$CLADE" export --db "$T/r.db" > "$T/stdout.csv" || fail "export to stdout"
cmp -s "$T/e.csv" "$T/stdout.csv" || fail "stdout (latest run) differs from --run 1 --out"
"$CLADE" predictions --db "$T/r.db" --run 1 --format json > "$T/p.json"
"$CLADE" results --db "$T/r.db" --run 1 --format json --ci none > "$T/r.json"
"$CLADE" log --db "$T/r.db" --format json > "$T/log.json"
$PY - "$T" <<'PY' || fail "export content"
import csv, json, sqlite3, sys
t = sys.argv[1]
rows = list(csv.DictReader(open(t + "/e.csv", newline="", encoding="utf-8")))
preds = json.load(open(t + "/p.json"))
assert len(rows) == len(preds) > 0, (len(rows), len(preds))
for r, p in zip(rows, preds):
    trial = "" if p["trial"] == "all" else str(p["trial"])
    for k in ("experiment", "model", "dataset", "protocol", "text_type", "filepath", "label", "prediction"):
        assert r[k] == p[k], (k, r[k], p[k])
    assert (r["trial"], int(r["example"]), int(r["eval"]), r["correct"]) == (trial, p["example"], p["eval"], "01"[p["correct"]]), (r, p)
assert any("," in r["model"] and '"' in r["model"] for r in rows) and any("\n" in r["experiment"] for r in rows)
# accuracies from the exported outcomes are clade results' top1
acc = {}
for r in rows:
    acc.setdefault((int(r["eval"]), r["trial"]), []).append(int(r["correct"]))
res = {(x["eval"], "" if x["trial"] == "all" else str(x["trial"])): x["value"] for x in json.load(open(t + "/r.json"))
       if x["metric"] == "top1"}
n = 0
for k, v in acc.items():
    assert abs(sum(v) / len(v) - res[k]) < 1e-12, (k, sum(v) / len(v), res[k])
    n += 1
# provenance: the database's
db = sqlite3.connect(t + "/r.db")
hashes = dict(db.execute("SELECT id, model_hash FROM evaluations"))
run = [x for x in json.load(open(t + "/log.json")) if x["id"] == 1][0]
for r in rows:
    assert r["model_hash"] == hashes[int(r["eval"])] and len(r["model_hash"]) == 40, r
    for k in ("backend", "precision", "decode"):
        assert r[k] == run[k], (k, r[k], run[k])
    assert r["run_started"] == run["started_at"] and r["clade_version"], r
print("export: %d predictions, %d accuracies recomputed, provenance of %d evaluations" % (len(rows), n, len(hashes)))
PY
if "$CLADE" export --db "$T/r.db" --run 9 --out "$T/x.csv" 2> "$T/err"; then fail "--run 9 accepted"; fi
grep -q "run 9" "$T/err" || fail "missing run message: $(cat "$T/err")"
[ -e "$T/x.csv" ] && fail "a failed export wrote its file"
if "$CLADE" export --db "$T/none.db" 2> "$T/err"; then fail "a missing database accepted"; fi
grep -q "none.db" "$T/err" || fail "missing database message: $(cat "$T/err")"
echo "test_export: ok"
