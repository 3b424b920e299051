#!/usr/bin/env bash
# linear_probe against scikit-learn's RidgeClassifier (Debian's python3-sklearn, a test
# dependency in ci/deps) on the same features and support sets, both samplers: every query's
# prediction and every trial's top1 equal.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
source "$CLADE_SRC/tests/lib/common.sh"
$PY -c 'import sklearn' 2>/dev/null || { echo "SKIP: needs Debian's python3-sklearn (apt-get install python3-sklearn)" >&2; exit 77; }
for seed in 1 2; do
  D="$T/$seed"
  mkdir -p "$D"
  $PY "$CLADE_SRC/tests/parity/linear_probe_reference.py" "$D" $seed 0.7
  cat > "$D/x.lua" <<LUA
model "bioclip" { features = "features.safetensors" }
model "fresh" { features = "features.safetensors" }
dataset "d" { root = ".", manifest = "metadata.csv" }
experiment "b" { models = { "bioclip" }, datasets = { "d" },
                 protocol = linear_probe { shots = { 1, 4 }, trials = 4, lambda = 0.7, sampler = "bioclip" } }
experiment "f" { models = { "fresh" }, datasets = { "d" },
                 protocol = linear_probe { shots = { 1, 4 }, trials = 4, lambda = 0.7, seed = $seed } }
LUA
  "$CLADE" run "$D/x.lua" --db "$D/r.db" --quiet
  # the same lines from clade: per query model,shots,trial,filepath,prediction; per trial top1
  { "$CLADE" predictions --db "$D/r.db" --format csv | tail -n +2 | awk -F, '{ print $1 "," $5 "," $6 "," $7 "," $9 }'
    "$CLADE" results --db "$D/r.db" --format csv | tail -n +2 | awk -F, '$8 != "all" && $9 == "top1" { print $3 "," $7 "," $8 ",," $10 }'
  } | sort > "$D/got"
  sort "$D/expected.csv" > "$D/want"
  [ "$(grep -c ',,' "$D/want")" = 16 ] || fail "seed $seed: the reference holds $(grep -c ',,' "$D/want") trials, not 16"
  # top1 as written by C (%.17g) and by Python (repr) name the same double when they parse equal
  $PY - "$D/want" "$D/got" <<'PY' || fail "seed $seed: clade's linear_probe differs from scikit-learn's"
import sys
want, got = ([l for l in open(p).read().splitlines() if l] for p in sys.argv[1:])
assert len(want) == len(got), (len(want), len(got))
bad = 0
for w, g in zip(want, got):
    w5, g5 = w.split(","), g.split(",")
    same = w5[:4] == g5[:4] and (w5[4] == g5[4] if w5[3] else float(w5[4]) == float(g5[4]))
    if not same:
        bad += 1
        if bad <= 5: print("reference %s\nclade     %s" % (w, g), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done
echo "test_linear_probe_reference: 2 seeds x 2 samplers x 2 shot counts x 4 trials equal scikit-learn's predictions"
