#!/usr/bin/env bash
# A CLIBD checkpoint as a bundle of towers in a run: m:embed("image"|"dna"|"text", items) (and
# the image features every protocol gets) against CLIBD's own outputs in
# shared/fixtures/clibd (rel err < 1e-4 per vector), m:modalities() lists the three towers,
# a second run takes every item from the embedding cache (keyed by modality and item), and
# barcodes read from a manifest's dna_barcode column (lowercase, IUPAC, gaps, empty) are embedded
# as CLIBD embeds them.
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES"
C="$F/clibd"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
printf 'filepath,class\n' > "$T/m.csv"
for f in $(cd "$F/images" && ls img*.jpg | sort); do printf '%s,%s\n' "$f" "${f%%_*}" >> "$T/m.csv"; done
# dna.txt and texts.txt as Lua lists (bytes escaped; line 9 of dna.txt is the empty sequence)
$PY - "$C/dna.txt" "$C/texts.txt" "$T/lists.lua" <<'PY'
import sys
def lua(path):
    lines = open(path, "rb").read().split(b"\n")
    if lines and lines[-1] == b"": lines.pop()
    return "{ " + ", ".join('"' + "".join(chr(x) if 32 <= x < 127 and x not in (34, 92) else "\\%03d" % x for x in l) + '"' for l in lines) + " }"
open(sys.argv[3], "w").write("local dna = %s\nlocal texts = %s\n" % (lua(sys.argv[1]), lua(sys.argv[2])))
PY
# put(results, name, t): each value of tensor t as a result (trial = row, metric = name .. column)
cat > "$T/put.lua" <<'LUA'
local function put(results, name, t)
  local r, c = t:shape()
  for i = 1, r do for j = 1, c do
    results[#results + 1] = { trial = i - 1, metric = name .. (j - 1), value = t:get(i, j) }
  end end
end
LUA
# like_clibd CSV NAME=KEY...: the results NAME of CSV equal CLIBD's KEY of outputs.safetensors
like_clibd() {
  $PY - "$F" "$@" <<'PY'
import csv, sys
import numpy as np
sys.path.insert(0, sys.argv[1] + "/tools"); import st
ref = st.load(sys.argv[1] + "/clibd/outputs.safetensors")
val = {(r["trial"], r["metric"]): float(r["value"]) for r in csv.DictReader(open(sys.argv[2]))}
for name, key in (a.split("=") for a in sys.argv[3:]):
    want = ref[key]
    n, d = want.shape
    got = np.array([[val[(str(i), "%s%d" % (name, j))] for j in range(d)] for i in range(n)], dtype=np.float32)
    e = st.relerr(got, want)
    print("clibd %s: max rel err %.2e over %d" % (name, e.max(), n))
    assert (e < 1e-4).all()
PY
}
cat "$T/lists.lua" "$T/put.lua" > "$T/x.lua"
cat >> "$T/x.lua" <<LUA
model "clibd" { path = "$C" }
dataset "fixture" { root = "$F/images", manifest = "$T/m.csv" }
local check = protocol "embed_check" {
  run = function(ctx)
    local results = {}
    put(results, "features", ctx.features)
    put(results, "dna", ctx.embed("dna", dna))
    put(results, "text", ctx.embed("text", texts))
    ctx.emit { results = results }
  end,
}
experiment "e" { models = { "clibd" }, datasets = { "fixture" }, protocol = check {} }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet || fail "run"
"$CLADE" results --db "$T/r.db" --format csv > "$T/r.csv"
like_clibd "$T/r.csv" features=image_embeddings dna=dna_embeddings text=text_embeddings || fail "embeddings differ from CLIBD's"
"$CLADE" run "$T/x.lua" --db "$T/r.db" 2> "$T/err" >/dev/null || fail "second run: $(cat "$T/err")"
grep -q "nothing encoded: 6 images and 8 texts and 12 barcodes came from the embedding cache" "$T/err" \
  || fail "second run encoded again: $(cat "$T/err")"
# clade bench measures CLIP towers: a CLIBD model is refused, naming it
if "$CLADE" bench --model "$C" --only image --no-db --repeat 1 --min-seconds 0 2> "$T/err" >/dev/null; then
  fail "bench accepted a CLIBD model"
fi
grep -q "clade bench measures open_clip CLIP models only" "$T/err" || fail "bench message: $(cat "$T/err")"

# barcodes from a manifest's dna_barcode column (lowercase, IUPAC letters, gaps, U, an empty and a
# short one, as in dna.txt) reach the DNA tower as they are: row_features("dna") of every row
# equals CLIBD's own embeddings of those sequences
$PY - "$C/dna.txt" "$F/images" "$T/bar.csv" <<'PY'
import csv, os, sys
seqs = open(sys.argv[1], newline="").read().split("\n")[:-1]
imgs = sorted(f for f in os.listdir(sys.argv[2]) if f.startswith("img") and f.endswith(".jpg"))
w = csv.writer(open(sys.argv[3], "w", newline=""))
w.writerow(["filepath", "class", "dna_barcode"])
for i, s in enumerate(seqs):
    w.writerow([imgs[i % len(imgs)], "c%d" % (i % 3), s])
PY
cat "$T/put.lua" > "$T/bar.lua"
cat >> "$T/bar.lua" <<LUA
model "clibd" { path = "$C" }
dataset "barcodes" { root = "$F/images", manifest = "$T/bar.csv" }
local rows = protocol "rows" {
  run = function(ctx)
    local idx, results = {}, {}
    for i = 1, ctx.n_rows do idx[i] = i end
    put(results, "dna", ctx.row_features("dna", idx))
    ctx.emit { results = results }
  end,
}
experiment "bar" { models = { "clibd" }, datasets = { "barcodes" }, protocol = rows {} }
LUA
"$CLADE" run "$T/bar.lua" --db "$T/b.db" --quiet || fail "run on the barcode manifest"
"$CLADE" results --db "$T/b.db" --format csv > "$T/b.csv"
like_clibd "$T/b.csv" dna=dna_embeddings || fail "barcodes of the manifest's column embedded unlike CLIBD's"
