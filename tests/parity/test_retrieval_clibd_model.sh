#!/usr/bin/env bash
# Retrieval end to end through the CLIBD towers: `clade embed` of the fixture checkpoint
# (../shared/fixtures/clibd) on the retrieval fixture's images and barcodes gives one file of
# image_embeddings and dna_embeddings per manifest row; protocol retrieval on it (a model of
# precomputed features) gives every metric of CLIBD's own evaluation of that checkpoint.
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}"
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
cat > "$T/exp.lua" <<LUA
model "clibd" { features = "$T/feats.safetensors" }
dataset "bioscan" { root = "$F", manifest = "manifest.csv" }
experiment "clibd" {
  models = { "clibd" }, datasets = { "bioscan" },
  protocols = {
    retrieval {},
    retrieval { query = "dna", key = "dna" },
    retrieval { query = "image", key = "image" },
    retrieval { query = "image+dna", key = "image+dna" },
  },
}
LUA
"$CLADE" run "$T/exp.lua" --db "$T/r.db" 2> "$T/err" || fail "run: $(cat "$T/err")"
"$CLADE" results --db "$T/r.db" --format json > "$T/results.json" || fail "results"
python3 - "$F/expected.json" "$T/results.json" <<'PY' || fail "metrics through the towers"
import json, sys
exp, results = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
got = {(r["query"], r["key"], r["split"], r["rank"], r["metric"]): r["value"] for r in results}
n = 0
for case in exp["results"]:
    for split, levels in case["splits"].items():
        for rank, metrics in levels.items():
            for m, v in metrics.items():
                assert got[(case["query"], case["key"], split, rank, m)] == v, (case["query"], case["key"], split, rank, m)
                n += 1
assert n == 192, n
print("through the towers: %d metrics equal to CLIBD's" % n)
PY
echo ok
