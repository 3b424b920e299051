#!/usr/bin/env bash
# Retrieval metrics' 95% bootstrap intervals and ties against a reference written from CLIBD's
# definitions (tests/parity/retrieval_bootstrap_reference.py: Python's random, numpy.percentile,
# statsmodels' Holm; each query's outcome recomputed there from its retrieved keys and the
# manifest), exactly, on CLIBD's retrieval fixture with two models (its features, and a noisier
# copy), at two seeds and resample counts. Then the intervals kept in the results database:
# written when the run completes, read back (a stored value is what clade results prints), a
# new seed computes and keeps its own rows, and a retrieval recorded before schema 9 (no
# per-query outcome) says so instead of an interval.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
source "$CLADE_SRC/tests/lib/common.sh"
F="$CLADE_FIXTURES/clibd/retrieval"
[ -f "$F/expected.json" ] || { echo "SKIP: no fixture $F" >&2; exit 77; }
$PY -c 'import numpy, statsmodels' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-numpy and python3-statsmodels" >&2; exit 77; }
sql() { $PY -c 'import sqlite3, sys; r = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print(r[0] if r else "")' "$@"; }
$PY - "$F/embeddings.safetensors" "$T/noisy.safetensors" <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ["CLADE_FIXTURES"], "tools"))
import st
d = st.load(sys.argv[1])
rng = np.random.default_rng(3)
out = {k: (d[k] + 0.6 * rng.standard_normal(d[k].shape)).astype(np.float32) for k in ("image_embeddings", "dna_embeddings")}
st.save(sys.argv[2], out)
PY
cat > "$T/x.lua" <<LUA
model "clibd" { features = "$F/embeddings.safetensors" }
model "noisy" { features = "$T/noisy.safetensors" }
dataset "bioscan" { root = "$F", manifest = "manifest.csv" }
experiment "clibd" {
  models = { "clibd", "noisy" }, datasets = { "bioscan" },
  protocols = { retrieval { query = "dna", key = "dna" }, retrieval { query = "image", key = "image" } },
}
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet 2>/dev/null || fail "run"
# clade compare on retrieval cells, the clibd model against itself recomputed on the noisier
# embeddings (run 2): top-k pairs each query's first k retrieved keys (hit <= k), macro gets a
# paired bootstrap, both as the reference computes them; the default metric is a retrieval
# cell's own, micro_top1, tested (nothing untested)
cp "$T/r.db" "$T/c.db"
sed -e 's|model "clibd" { features = "[^"]*"|model "clibd" { features = "'"$T"'/noisy.safetensors"|' \
  -e '/^model "noisy"/d' -e 's/models = { "clibd", "noisy" }/models = { "clibd" }/' "$T/x.lua" > "$T/y.lua"
"$CLADE" run "$T/y.lua" --db "$T/c.db" --quiet 2>/dev/null || fail "run on noisy embeddings"
for r in 1 2; do "$CLADE" predictions --db "$T/c.db" --run $r --format json > "$T/cp$r.json"; done
$PY -c 'import json, sys; json.dump(json.load(open(sys.argv[1])) + json.load(open(sys.argv[2])), open(sys.argv[3], "w"))' \
  "$T/cp1.json" "$T/cp2.json" "$T/cp.json"
for m in "" micro_top5 macro_top3; do
  set +e
  "$CLADE" compare 1 2 --db "$T/c.db" --format json ${m:+--metric $m} --ci-resamples 200 --ci-seed 5 > "$T/cmp.json" 2> "$T/cmp.err"
  rc=$?
  set -e
  [ "$rc" -le 1 ] || fail "compare ${m:-(default)} exited $rc: $(cat "$T/cmp.err")"
  if grep -q untested "$T/cmp.err"; then fail "compare ${m:-(default)}: $(cat "$T/cmp.err")"; fi
  $PY - "$T/cmp.json" "${m:-micro_top1}" <<'PY' || fail "compare ${m:-(default)}'s metric"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["verdict"] not in ("added", "removed")]
assert len(rows) == 16 and all(r["metric"] == sys.argv[2] and r["base"] is not None for r in rows), rows[:2]
PY
  $PY "$CLADE_SRC/tests/parity/compare_retrieval_reference.py" "$F/manifest.csv" "$T/cp.json" "$T/cmp.json" 200 5 \
    > "$T/ref.txt" || { cat "$T/ref.txt" >&2; fail "compare ${m:-(default)} differs from the reference"; }
  cat "$T/ref.txt"
  grep -q "^16 retrieval cells tested as the reference does, [1-9]" "$T/ref.txt" || fail "nothing regressed: $(cat "$T/ref.txt")"
done
# kept when the run completed, before any clade results
nrows=$(sql "$T/r.db" "SELECT count(*) FROM intervals WHERE resamples = 1000 AND seed = 0 AND lo IS NOT NULL")
[ "$nrows" = $((2 * 2 * 2 * 4 * 6)) ] || fail "the finished run kept $nrows intervals, not 192"
"$CLADE" predictions --db "$T/r.db" --format json > "$T/p.json"
for args in "1000 0" "300 11"; do
  set -- $args
  "$CLADE" results --db "$T/r.db" --format json --ci-resamples "$1" --ci-seed "$2" > "$T/r$2.json"
  $PY "$CLADE_SRC/tests/parity/retrieval_bootstrap_reference.py" "$F/manifest.csv" "$T/p.json" "$T/r$2.json" "$1" "$2" \
    > "$T/ref.txt" || { cat "$T/ref.txt" >&2; fail "retrieval intervals or ties differ from the reference (B=$1, seed $2)"; }
  cat "$T/ref.txt"
  grep -q "'best': [1-9].*'tied': [1-9].*'worse': [1-9]" "$T/ref.txt" || fail "no best, tied and worse entries: $(cat "$T/ref.txt")"
  grep -Eq "\(([1-9][0-9]+) of nonzero width\)" "$T/ref.txt" || fail "no interval of nonzero width: $(cat "$T/ref.txt")"
done
# a new seed kept its own rows beside the first
[ "$(sql "$T/r.db" "SELECT count(*) FROM intervals WHERE resamples = 300 AND seed = 11")" = 192 ] || fail "seed 11 not kept"
[ "$(sql "$T/r.db" "SELECT count(*) FROM intervals WHERE resamples = 1000 AND seed = 0")" = 192 ] || fail "seed 0 rows replaced"

# clade compare: each side's interval of the compared metric, the same as clade results'
"$CLADE" compare 1 1 --db "$T/r.db" --metric macro_top3 --format json > "$T/c.json" 2>/dev/null || fail "compare"
$PY - "$T/c.json" "$T/r0.json" <<'PY' || fail "compare's intervals: $(head -c 600 "$T/c.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
ci = {(r["model"], r["query"], r["key"], r["split"], r["rank"]): r["ci"] for r in json.load(open(sys.argv[2]))
      if r["metric"] == "macro_top3"}
assert len(rows) == len(ci) == 32, (len(rows), len(ci))
for r in rows:
    want = ci[(r["model"], r["query"], r["key"], r["split"], r["rank"])]
    for side in ("base_ci", "head_ci"):
        got = r[side]
        assert (got["low"], got["high"], got["resamples"], got["seed"]) == (want["low"], want["high"], 1000, 0), (r, want)
PY
# clade report: the retrieval plot has an error bar per model and cell, the tables every interval
"$CLADE" report --db "$T/r.db" --out "$T/r.html" 2>/dev/null || fail "report"
$PY - "$T/r.html" "$T/r0.json" <<'PY' || fail "report's retrieval intervals"
import json, re, sys
html, rows = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
fig = html[html.index('<figure id="plot-retrieval">'):]
fig = fig[:fig.index("</figure>")]
assert fig.count('<path class="ci"') == 2 * 2 * 2 * 4, fig.count('<path class="ci"')
spans = re.findall(r'<span class="ci">\[([0-9.]+), ([0-9.]+)\]</span>', html)
want = sorted(("%.2f" % (100 * r["ci"]["low"]), "%.2f" % (100 * r["ci"]["high"])) for r in rows)
assert sorted(spans) == want, (len(spans), len(want))
PY
# what is stored is what clade results prints: read back equal, and a stored value (changed
# here by hand) is reused, not recomputed, while the settings match
$PY - "$T/r.db" "$T/r0.json" <<'PY' || fail "stored intervals differ from those printed"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
stored = {(e, m): (lo, hi, tie) for e, m, lo, hi, tie in db.execute(
    "SELECT eval_id, metric, lo, hi, tie FROM intervals WHERE resamples = 1000 AND seed = 0 AND trial IS NULL")}
rows = json.load(open(sys.argv[2]))
assert len(rows) == len(stored) == 192, (len(rows), len(stored))
for r in rows:
    assert stored[(r["eval"], r["metric"])] == (r["ci"]["low"], r["ci"]["high"], r["tie"]), r
PY
eid=$(sql "$T/r.db" "SELECT min(eval_id) FROM intervals WHERE metric = 'micro_top1'")
$PY -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE intervals SET lo = 0.125 WHERE eval_id = ? AND metric = ? AND seed = 0", (int(sys.argv[2]), "micro_top1")); c.commit()' "$T/r.db" "$eid"
"$CLADE" results --db "$T/r.db" --format json > "$T/again.json"
$PY - "$T/again.json" "$eid" <<'PY' || fail "the stored interval was not reused"
import json, sys
r = [r for r in json.load(open(sys.argv[1])) if r["eval"] == int(sys.argv[2]) and r["metric"] == "micro_top1"]
assert r and r[0]["ci"]["low"] == 0.125, r
PY
# the same settings after the run grew (a second run into the same database is another run;
# here one evaluation more of this run): recomputed, the hand-made value gone
$PY -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE intervals SET run_evals = run_evals - 1"); c.commit()' "$T/r.db"
"$CLADE" results --db "$T/r.db" --format json > "$T/grown.json"
cmp -s "$T/grown.json" "$T/r0.json" || fail "stale intervals were reused"

# recorded before schema 9: retrieval predictions without hit, intervals not kept yet
$PY -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE predictions SET hit = NULL"); c.execute("DELETE FROM intervals"); c.commit()' "$T/r.db"
"$CLADE" results --db "$T/r.db" --format json > "$T/old.json" || fail "results of a run recorded before schema 9"
$PY - "$T/old.json" <<'PY' || fail "old retrieval cells: $(head -c 600 "$T/old.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
for r in rows:
    if r["value"] == 0:  # no query found its label: the outcomes are all 0 either way
        assert r["ci"]["low"] == r["ci"]["high"] == 0, r
    else:
        assert r["ci"] is None and r["ci_note"].startswith("no interval: recorded before schema 9"), r
assert any(r["ci"] is None for r in rows)
PY
"$CLADE" results --db "$T/r.db" | grep -q "cells without an interval: no interval: recorded before schema 9" || fail "the table does not say why"
# kept with the reason, and read back the same
[ "$(sql "$T/r.db" "SELECT count(*) FROM intervals WHERE lo IS NULL AND note LIKE 'no interval: recorded before schema 9%'")" -gt 0 ] ||
  fail "the reasons were not kept"
"$CLADE" results --db "$T/r.db" --format json > "$T/old2.json"
cmp -s "$T/old.json" "$T/old2.json" || fail "the kept reasons read back differently"
"$CLADE" report --db "$T/r.db" --out "$T/old.html" 2>/dev/null || fail "report of a run recorded before schema 9"
grep -q 'title="no interval: recorded before schema 9' "$T/old.html" || fail "the report does not say why"
echo "test_ci_retrieval: ok"
