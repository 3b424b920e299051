#!/usr/bin/env bash
# Retrieval end to end through the CLIBD towers: `clade embed` of the fixture checkpoint
# (../shared/fixtures/clibd) on the retrieval fixture's images and barcodes gives one file of
# image_embeddings and dna_embeddings per manifest row; protocol retrieval on it (a model of
# precomputed features) gives every metric of CLIBD's own evaluation of that checkpoint.
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}" "${CLADE_SRC:?}"
C="$CLADE_FIXTURES/clibd"
F="$C/retrieval"
[ -f "$F/expected.json" ] || { echo "no fixture $F" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$CLADE" help embed 2>&1 | grep -q -- "--dna" || { echo "skipped: this clade's embed has no --dna (CLIBD towers)" >&2; exit 77; }

python3 - "$F/manifest.csv" "$T" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
open(sys.argv[2] + "/images.txt", "w").write("".join(r["filepath"] + "\n" for r in rows))
open(sys.argv[2] + "/dna.txt", "w").write("".join(r["dna_barcode"] + "\n" for r in rows))
PY
(cd "$F" && xargs -a "$T/images.txt" "$CLADE" embed --model "$C" --dna "$T/dna.txt" --out "$T/feats.safetensors" --images) \
  2> "$T/err" || fail "embed: $(cat "$T/err")"
. "$(dirname "$0")/retrieval_common.sh"
clibd_experiment "$T/feats.safetensors" "$T/exp.lua"
"$CLADE" run "$T/exp.lua" --db "$T/r.db" 2> "$T/err" || fail "run: $(cat "$T/err")"
"$CLADE" results --db "$T/r.db" --format json > "$T/results.json" || fail "results"
clibd_metrics "$T/results.json" || fail "metrics through the towers unlike CLIBD's"

# the same with the checkpoint declared in the experiment file: the run encodes the images and
# barcodes through the CLIBD bundle's towers itself
sed 's|^model "clibd" { features = .*|model "clibd" { path = "'"$C"'" }|' "$T/exp.lua" > "$T/exp_model.lua"
grep -q 'path = ' "$T/exp_model.lua" || fail "the model line was not replaced"
"$CLADE" run "$T/exp_model.lua" --db "$T/m.db" --cache "$T/m_cache.db" 2> "$T/err" || fail "run with the model: $(cat "$T/err")"
"$CLADE" results --db "$T/m.db" --format json > "$T/m.json" || fail "results with the model"
clibd_metrics "$T/m.json" || fail "metrics of a run on the declared CLIBD model unlike CLIBD's"

# experiments/bioscan_retrieval.lua with the fixture checkpoint's features of the synth
# bioscan_sample: image->dna, dna->dna, image->image and image+dna (RANDOM weights: the numbers
# are not checked, only that every cell is there with metrics in [0, 1])
"$CLADE" synth --out "$T/sample" >/dev/null 2>&1
S="$T/sample/data/bioscan_sample"
cut -d, -f2 "$S/metadata.csv" | tail -n +2 > "$T/simages.txt"
cut -d, -f3 "$S/metadata.csv" | tail -n +2 > "$T/sdna.txt"
(cd "$S" && xargs -a "$T/simages.txt" "$CLADE" embed --model "$C" --dna "$T/sdna.txt" --out "$T/sfeats.safetensors" --images) \
  2> "$T/err" || fail "embed the sample: $(cat "$T/err")"
CLADE_SAMPLE="$T/sample" CLADE_CLIBD_FEATURES="$T/sfeats.safetensors" \
  "$CLADE" run "$CLADE_SRC/experiments/bioscan_retrieval.lua" --db "$T/s.db" --quiet 2> "$T/err" || fail "bioscan_retrieval: $(cat "$T/err")"
"$CLADE" results --db "$T/s.db" --format json > "$T/s.json"
python3 - "$T/s.json" <<'PY' || fail "bioscan_retrieval cells: $(head -c 600 "$T/s.json")"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["model"] == "sample-clibd"]
cells = {(r["query"], r["key"], r["split"], r["rank"]) for r in rows}
pairs = {("image", "dna"), ("dna", "dna"), ("image", "image"), ("image+dna", "image+dna")}
assert cells == {(q, k, s, r) for q, k in pairs for s in ("test_seen", "test_unseen")
                 for r in ("order", "family", "genus", "species")}, sorted(cells)
assert len(rows) == len(cells) * 6 and all(0 <= r["value"] <= 1 for r in rows)
PY
echo ok
