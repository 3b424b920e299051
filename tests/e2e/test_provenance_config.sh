#!/usr/bin/env bash
# Two models of one checkpoint that differ only in `gelu` compute other embeddings: the
# embedding cache keeps them apart (two encoder keys, nothing shared), and the results
# database records them apart: the same model_hash (the checkpoint's content) beside two
# config_hash values (the resolved config's); a model of the same config under another name
# records the same config_hash. Precomputed features record none.
set -euo pipefail
: "${CLADE:?}"
. "$(dirname "$0")/../lib/common.sh"
"$CLADE" synth --out "$T/s" >/dev/null 2>&1
cat > "$T/x.lua" <<LUA
model "exact" { path = "$T/s/model", gelu = "exact" }
model "quick" { path = "$T/s/model", gelu = "quick" }
model "quick2" { path = "$T/s/model", gelu = "quick" }
dataset "rare" { root = "$T/s/data/rare_sample" }
experiment "zs" { models = { "exact", "quick", "quick2" }, datasets = { "rare" },
                  protocol = zero_shot { text_types = { "common" } } }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --cache "$T/c.db" --quiet 2> "$T/err" || fail "run: $(cat "$T/err")"
$PY - "$T/r.db" "$T/c.db" <<'PY' || fail "provenance"
import sqlite3, sys
db, cache = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
rows = dict((m, (h, c)) for m, h, c in db.execute("SELECT model, model_hash, config_hash FROM evaluations"))
assert set(rows) == {"exact", "quick", "quick2"}, rows
assert rows["exact"][0] == rows["quick"][0] and len(rows["exact"][0]) == 40, rows
assert rows["exact"][1] and rows["quick"][1] and rows["exact"][1] != rows["quick"][1], rows
assert rows["quick"][1] == rows["quick2"][1] and len(rows["quick"][1]) == 40, rows
# the cache: one encoder key per config for images and for texts, no image key shared
keys = {k: set(m for (m,) in cache.execute("SELECT DISTINCT model_key FROM embeddings WHERE kind = ?", (k,)))
        for (k,) in cache.execute("SELECT DISTINCT kind FROM embeddings")}
assert keys and all(len(v) == 2 for v in keys.values()), keys
n = cache.execute("SELECT count(*) FROM embeddings").fetchone()[0]
images = db.execute("SELECT n_examples FROM evaluations WHERE model = 'exact'").fetchone()[0]
assert n > 2 * images, (n, images)
# and the two configs' embeddings of one item differ
for kind, (k1, k2) in ((k, sorted(v)) for k, v in keys.items()):
    item, a = cache.execute("SELECT item_key, vec FROM embeddings WHERE model_key = ? AND kind = ? ORDER BY item_key"
                            " LIMIT 1", (k1, kind)).fetchone()
    b = cache.execute("SELECT vec FROM embeddings WHERE model_key = ? AND kind = ? AND item_key = ?",
                      (k2, kind, item)).fetchone()
    assert b is not None and a != b[0], kind
PY
# clade export's last column and clade results' json rows carry config_hash beside model_hash
"$CLADE" export --db "$T/r.db" --out "$T/e.csv" 2>/dev/null || fail "export"
"$CLADE" results --db "$T/r.db" --format json --ci none > "$T/r.json" || fail "results"
$PY - "$T/r.db" "$T/e.csv" "$T/r.json" <<'PY' || fail "config_hash not exported"
import csv, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
want = {i: (h, c) for i, h, c in db.execute("SELECT id, model_hash, config_hash FROM evaluations")}
assert all(c for h, c in want.values()), want
rd = csv.reader(open(sys.argv[2], newline=""))
head = next(rd)
assert head[-2:] == ["run_started", "config_hash"] and head.index("model_hash") == 20, head
rows = list(rd)
assert rows and all((r[20], r[-1]) == want[int(r[1])] for r in rows), rows[:2]
res = json.load(open(sys.argv[3]))
assert res and all((r["model_hash"], r["config_hash"]) == want[r["eval"]] for r in res), res[:2]
PY
echo "test_provenance_config: ok"
