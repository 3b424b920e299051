#!/usr/bin/env bash
# clade results' 95% bootstrap intervals and ties (biobench's method) against a reference
# written from their definitions (tests/parity/bootstrap_reference.py: Python's random,
# numpy.percentile, statsmodels' Holm), exactly, for top1, top3 and top5 (from each
# prediction's hit), on a run with zero-shot (one trial: the
# synthetic sample model under exact and quick GELU) and few-shot (5 trials: features of two
# good models and one of noise, so a group has best, tied and worse entries); at two seeds and
# resample counts. Then the exact properties: an all-correct accuracy has [1, 1], --ci none
# prints no interval, a bad --ci value is refused.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
source "$CLADE_SRC/tests/lib/common.sh"
$PY -c 'import numpy, statsmodels' 2>/dev/null ||
  { echo "SKIP: needs Debian's python3-numpy and python3-statsmodels" >&2; exit 77; }
"$CLADE" synth --out "$T/s" --classes 4 --per-class 6 >/dev/null 2>&1
$PY - "$T" <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ["CLADE_FIXTURES"], "tools"))
import st
out = sys.argv[1]
rng = np.random.default_rng(5)
C, D, n = 6, 16, 10
labels = np.repeat(np.arange(C), n)
rng.shuffle(labels)
centers = rng.standard_normal((C, D)).astype(np.float32)
for name, signal in (("good", 1.0), ("good2", 0.95), ("noise", 0.0)):
    f = signal * centers[labels] + 0.7 * rng.standard_normal((len(labels), D)).astype(np.float32)
    st.save(os.path.join(out, name + ".safetensors"), {"image_embeddings": f.astype(np.float32)})
with open(os.path.join(out, "metadata.csv"), "w") as fh:
    fh.write("filepath,class\n")
    for i, y in enumerate(labels):
        fh.write("img%04d.jpg,class %d\n" % (i, y))
PY
cat > "$T/x.lua" <<LUA
model "m" { path = "$T/s/model" }
model "mq" { path = "$T/s/model", gelu = "quick" }
model "good" { features = "$T/good.safetensors" }
model "good2" { features = "$T/good2.safetensors" }
model "noise" { features = "$T/noise.safetensors" }
dataset "sample" { root = "$T/s/data/rare_sample" }
dataset "feats" { root = "$T", manifest = "metadata.csv" }
experiment "zs" { models = { "m", "mq" }, datasets = { "sample" }, protocol = zero_shot { text_types = { "common", "taxonomic" } } }
experiment "fs" { models = { "good", "good2", "noise" }, datasets = { "feats" },
                  protocol = few_shot { shots = { 1, 5 }, trials = 5 } }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet 2>/dev/null || fail "run"
"$CLADE" predictions --db "$T/r.db" --format json > "$T/p.json"
for args in "1000 0" "300 11"; do
  set -- $args
  "$CLADE" results --db "$T/r.db" --format json --ci-resamples "$1" --ci-seed "$2" > "$T/r.json"
  $PY "$CLADE_SRC/tests/parity/bootstrap_reference.py" "$T/p.json" "$T/r.json" "$1" "$2" > "$T/ref.txt" ||
    { cat "$T/ref.txt" >&2; fail "intervals or ties differ from the reference (B=$1, seed $2)"; }
  cat "$T/ref.txt"
  # the group of the three feature models has each kind of entry; zero-shot's top3/top5 too
  grep -q "'best': [1-9].*'tied': [1-9].*'worse': [1-9]" "$T/ref.txt" || fail "no best, tied and worse entries: $(cat "$T/ref.txt")"
  grep -q "(top1 top3 top5)" "$T/ref.txt" || fail "not every top-k has intervals: $(cat "$T/ref.txt")"
done

# exact properties: an accuracy of 1 has the interval [1, 1]; one of 0, [0, 0]
$PY - "$T/r.json" <<'PY' || fail "degenerate intervals"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["ci"]]
ones = [r for r in rows if r["value"] == 1.0]
zeros = [r for r in rows if r["value"] == 0.0]
assert ones or zeros, "no accuracy of 0 or 1 in the run"
for r in ones: assert (r["ci"]["low"], r["ci"]["high"]) == (1.0, 1.0), r
for r in zeros: assert (r["ci"]["low"], r["ci"]["high"]) == (0.0, 0.0), r
for r in rows: assert r["ci"]["low"] <= r["value"] <= r["ci"]["high"] or r["trial"] == "all", r
print("degenerate intervals: %d at 1, %d at 0" % (len(ones), len(zeros)))
PY

# the table shows intervals and the tie column, and says how they were made
"$CLADE" results --db "$T/r.db" > "$T/table.txt"
grep -q "vs best" "$T/table.txt" || fail "table lacks the tie column: $(head -3 "$T/table.txt")"
grep -q "percentile bootstrap, 1000 resamples.*seed 0" "$T/table.txt" || fail "table lacks the description"
grep -Eq "[0-9.]+ \[[0-9.]+, [0-9.]+\]" "$T/table.txt" || fail "table lacks intervals"
# --ci none: no interval anywhere, the columns stay
"$CLADE" results --db "$T/r.db" --format csv --ci none > "$T/none.csv"
head -1 "$T/none.csv" | grep -q ',ci_low,ci_high,ci_resamples,ci_seed,tie$' || fail "csv header: $(head -1 "$T/none.csv")"
if tail -n +2 "$T/none.csv" | grep -v ',,,,$' | grep -q .; then fail "--ci none printed an interval"; fi
if "$CLADE" results --db "$T/r.db" --ci jackknife > /dev/null 2> "$T/err"; then fail "--ci jackknife accepted"; fi
grep -q "choose none or bootstrap" "$T/err" || fail "--ci message: $(cat "$T/err")"
if "$CLADE" results --db "$T/r.db" --ci-resamples 0 > /dev/null 2> "$T/err"; then fail "--ci-resamples 0 accepted"; fi
echo "test_ci_reference: ok"
