#!/usr/bin/env bash
# Protocol retrieval against CLIBD's own evaluation (../shared/fixtures/clibd/retrieval): on
# the fixture's precomputed image and DNA embeddings, every micro/macro top-k metric equals
# CLIBD's top_k_micro_accuracy / top_k_macro_accuracy, and the retrieved keys of every query
# equal the exact top-5 with ties to the lower key index (image->image has identical keys).
# Bad input: a missing dna_barcode column and an empty split are errors naming the dataset
# and the column, before any encoding.
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}"
F="$CLADE_FIXTURES/clibd/retrieval"
[ -f "$F/expected.json" ] || { echo "no fixture $F" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# one value from the database (python3's sqlite3: no sqlite3 CLI needed)
sql() { python3 -c 'import sqlite3, sys; r = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print(r[0] if r else "")' "$@"; }

. "$(dirname "$0")/retrieval_common.sh"
clibd_experiment "$F/embeddings.safetensors" "$T/exp.lua"
"$CLADE" run "$T/exp.lua" --db "$T/r.db" 2> "$T/err" || fail "run: $(cat "$T/err")"
"$CLADE" results --db "$T/r.db" --format json > "$T/results.json" || fail "results"
"$CLADE" predictions --db "$T/r.db" --format json > "$T/predictions.json" || fail "predictions"
clibd_metrics "$T/results.json" || fail "metrics unlike CLIBD's"
python3 - "$F" "$T/predictions.json" <<'PY' || fail "retrieved keys unlike the exact order"
import csv, json, sys
F, pred = sys.argv[1:3]
exp = json.load(open(F + "/expected.json"))
rows = list(csv.DictReader(open(F + "/manifest.csv")))
pid_row = {r["processid"]: i for i, r in enumerate(rows)}
key_rows = [pid_row[p] for p in exp["key_processids"]]
preds = json.load(open(pred))
by_cell = {}
for p in preds:
    by_cell.setdefault((p["query"], p["key"], p["split"], p["rank"]), []).append(p)
m = 0
for case in exp["results"]:
    q, k = case["query"], case["key"]
    for split, r in case["retrieved"].items():
        for rank in exp["levels"]:
            cell = sorted(by_cell[(q, k, split, rank)], key=lambda p: p["example"])
            assert [p["example"] for p in cell] == [pid_row[x] for x in r["query_processids"]], (q, k, split)
            for p, top in zip(cell, r["top5_key_index"]):
                assert p["retrieved"] == [key_rows[i] for i in top], (q, k, split, p["example"], p["retrieved"], top)
                assert p["label"] == rows[p["example"]][rank] and p["prediction"] == rows[key_rows[top[0]]][rank]
                m += 1
assert m == 4 * 4 * (14 + 12), m
print("%d retrieved lists in the exact order" % m)
PY

# compare and report match and show cells by all axes
"$CLADE" run "$T/exp.lua" --db "$T/r.db" 2> "$T/err" || fail "second run: $(cat "$T/err")"
"$CLADE" compare 1 2 --db "$T/r.db" --metric micro_top1 --format json > "$T/c.json" || fail "compare: $(cat "$T/c.json")"
python3 - "$T/c.json" <<'PY' || fail "compare json: $(head -c 600 "$T/c.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 4 * 2 * 4, len(rows)
assert len({(r["query"], r["key"], r["split"], r["rank"]) for r in rows}) == 32
assert all(r["verdict"] == "same" and r["test"] == "mcnemar" and r["base"] == r["head"] for r in rows), rows[0]
PY
"$CLADE" compare 1 2 --db "$T/r.db" --metric micro_top1 | grep -q "image+dna->image+dna test_unseen genus" || fail "compare table axes"
"$CLADE" report --db "$T/r.db" --out "$T/r.html" 2> "$T/err" || fail "report: $(cat "$T/err")"
grep -q "<td>image-&gt;dna test_seen species</td>" "$T/r.html" || fail "report axes"

# bad input: no dna_barcode column -> an error naming dataset and column, no evaluation stored
mkdir -p "$T/nodna"
python3 - "$F/manifest.csv" "$T/nodna/manifest.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
w = csv.DictWriter(open(sys.argv[2], "w", newline=""), [c for c in rows[0] if c != "dna_barcode"])
w.writeheader()
for r in rows:
    r.pop("dna_barcode")
    w.writerow(r)
PY
ln -s "$F/images" "$T/nodna/images"
sed -e "s|root = \"$F\"|root = \"$T/nodna\"|" "$T/exp.lua" > "$T/nodna.lua"
if "$CLADE" run "$T/nodna.lua" --db "$T/n.db" 2> "$T/err"; then fail "a manifest without dna_barcode accepted"; fi
grep -q "dataset 'bioscan' ($T/nodna/manifest.csv) has no column 'dna_barcode'" "$T/err" || fail "no dna_barcode message: $(cat "$T/err")"
[ "$(sql "$T/n.db" 'SELECT count(*) FROM evaluations' 2>/dev/null || echo 0)" = 0 ] || fail "evaluations stored before the error"

# bad input: an empty query split, and an unknown key split
sed -e 's|retrieval {},|retrieval { queries = { "test_seen", "val_unseen" } },|' "$T/exp.lua" > "$T/empty.lua"
if "$CLADE" run "$T/empty.lua" --db "$T/e.db" 2> "$T/err"; then fail "an empty query split accepted"; fi
grep -q "dataset 'bioscan' ($F/manifest.csv): query split 'val_unseen' has no rows in column 'split'" "$T/err" \
  || fail "empty split message: $(cat "$T/err")"
sed -e 's|retrieval {},|retrieval { keys = { "seen_keys", "all_keys" } },|' "$T/exp.lua" > "$T/empty.lua"
if "$CLADE" run "$T/empty.lua" --db "$T/e.db" 2> "$T/err"; then fail "an empty key split accepted"; fi
grep -q "key split 'all_keys' has no rows in column 'split'" "$T/err" || fail "empty key split message: $(cat "$T/err")"
echo ok
