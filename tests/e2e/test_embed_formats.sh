#!/usr/bin/env bash
# clade embed writes .npy and CSV (by --out's extension or --format) holding exactly the
# safetensors output's matrix; a file of one matrix refuses two modalities before encoding.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
: "${CLADE_FIXTURES:?}"
$PY -c 'import numpy' 2>/dev/null || { echo "python3-numpy missing (ci/deps)" >&2; exit 77; }
cd "$CLADE_FIXTURES"
IMGS=(images/img0_cat_224x224.jpg images/png1_palette_350x250.png images/img5_human_400x300_cmyk.jpg)
printf 'a photo of a cat.\nthe "dog", maybe\nGenus épi\n' > "$T/texts.txt"
"$CLADE" embed --model tiny-hub --images "${IMGS[@]}" --texts "$T/texts.txt" --out "$T/all.safetensors" 2>/dev/null
"$CLADE" embed --model tiny-hub --images "${IMGS[@]}" --out "$T/img.npy" 2>/dev/null
"$CLADE" embed --model tiny-hub --images "${IMGS[@]}" --out "$T/img.csv" 2>/dev/null
"$CLADE" embed --model tiny-hub --texts "$T/texts.txt" --out "$T/txt.out" --format csv 2>/dev/null
"$CLADE" embed --model tiny-hub --texts "$T/texts.txt" --out "$T/txt.npy" 2>/dev/null
$PY - "$T" "$CLADE_FIXTURES/tools" "${IMGS[@]}" <<'PY' || fail "npy/csv differ from safetensors"
import csv, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import st
t, imgs = sys.argv[1], sys.argv[3:]
ref = st.load(t + "/all.safetensors")
texts = open(t + "/texts.txt", encoding="utf-8").read().splitlines()
def from_csv(path, col):
    rows = list(csv.reader(open(path, encoding="utf-8")))
    assert rows[0][0] == col and rows[0][1:] == [str(d) for d in range(len(rows[0]) - 1)], rows[0]
    return [r[0] for r in rows[1:]], np.array([[float(x) for x in r[1:]] for r in rows[1:]], dtype=np.float32)
names, m = from_csv(t + "/img.csv", "file_name")
assert names == imgs and np.array_equal(m, ref["image_embeddings"])
names, m = from_csv(t + "/txt.out", "text")
assert names == texts and np.array_equal(m, ref["text_embeddings"])
assert np.array_equal(np.load(t + "/img.npy"), ref["image_embeddings"])
assert np.array_equal(np.load(t + "/txt.npy"), ref["text_embeddings"])
PY
if "$CLADE" embed --model tiny-hub --images "${IMGS[@]}" --texts "$T/texts.txt" --out "$T/both.npy" 2>"$T/err"; then
  fail "two modalities in one .npy accepted"
fi
grep -q "$T/both.npy: a npy file holds one matrix" "$T/err" || fail "error: $(cat "$T/err")"
[ ! -e "$T/both.npy" ] || fail "wrote a file"
if "$CLADE" embed --model tiny-hub --texts "$T/texts.txt" --out "$T/x" --format parquet 2>"$T/err"; then
  fail "--format parquet accepted"
fi
grep -q "choose safetensors, npy or csv" "$T/err" || fail "error: $(cat "$T/err")"
echo "test_embed_formats: ok"
