#!/usr/bin/env bash
# Few-shot (BioCLIP sampler, CL2N, nearest centroid) against a numpy reference that uses
# CPython's own random.seed/shuffle, on fresh random embeddings each seed.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for seed in 1 2 3; do
  mkdir -p "$T/$seed"
  $PY "$CLADE_SRC/tests/parity/fewshot_reference.py" "$T/$seed" $seed
  cat > "$T/$seed/x.lua" <<LUA
model "feats" { features = "features.safetensors" }
dataset "d" { root = ".", manifest = "metadata.csv" }
experiment "fs" { models = { "feats" }, datasets = { "d" },
                  protocol = few_shot { shots = { 1, 5 }, trials = 5, sampler = "bioclip" } }
LUA
  "$CLADE" run "$T/$seed/x.lua" --db "$T/$seed/r.db" --quiet
  "$CLADE" results --db "$T/$seed/r.db" --format csv > "$T/$seed/got.csv"
  while IFS=, read -r k t a s; do
    got=$(awk -F, -v k="$k" -v t="$t" '$7==k && $8==t && $9=="top1" { print $10 }' "$T/$seed/got.csv")
    # %.17g from C and repr() from Python name the same double when they parse equal
    $PY -c "import sys; sys.exit(0 if float('$got') == float('$a') else 1)" || fail "seed $seed shots $k trial $t: clade $got, reference $a"
    if [ "$t" = all ]; then
      gs=$(awk -F, -v k="$k" '$7==k && $8=="all" && $9=="top1_std" { print $10 }' "$T/$seed/got.csv")
      $PY -c "import sys; sys.exit(0 if abs(float('$gs') - float('$s')) <= 1e-15 else 1)" || fail "seed $seed shots $k std: clade $gs, reference $s"
    fi
  done < "$T/$seed/expected.csv"
done
echo "test_fewshot_reference: 3 seeds x 2 shot counts x 5 trials equal"
