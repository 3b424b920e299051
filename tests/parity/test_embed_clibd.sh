#!/usr/bin/env bash
# clade embed with CLIBD checkpoints against CLIBD's own outputs (shared/fixtures/clibd):
# the small three-tower best.pth (folder form: best.pth + config.json) with --images, --texts and
# --dna; the full-size BarcodeBERT-base DNA tower, whose 175 MB checkpoint gen_barcodebert.py
# writes here from its seed (numpy only, a few seconds); and the errors: --dna with a model that
# is not CLIBD, a needed tower the checkpoint or config lacks.
set -u
[ -x "${CLADE:-}" ] || { echo "skip: CLADE is not set" >&2; exit 77; }
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES/clibd"
T="$CLADE_FIXTURES/tools"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

imgs=$($PY -c 'import json,sys; print(" ".join(sys.argv[2] + "/" + n for n in json.load(open(sys.argv[1]))["images"]))' \
  "$F/cases.json" "$CLADE_FIXTURES/images")
# shellcheck disable=SC2086
"$CLADE" embed --model "$F" --images $imgs --texts "$F/texts.txt" --dna "$F/dna.txt" --backend cpu \
  --out "$tmp/small.safetensors" 2>"$tmp/err" || { echo "FAIL embed small: $(cat "$tmp/err")" >&2; exit 1; }
grep -q "keys not used: .*position_ids" "$tmp/err" || { echo "FAIL unused keys not listed: $(cat "$tmp/err")" >&2; fail=1; }

$PY "$T/gen_barcodebert.py" "$tmp/base.pth" 1 >"$tmp/gen.log" 2>&1 || { echo "FAIL gen_barcodebert: $(cat "$tmp/gen.log")" >&2; exit 1; }
"$CLADE" embed --model "$tmp/base.pth" --config "$F/dna_base_config.json" --dna "$F/dna.txt" --backend cpu \
  --out "$tmp/base.safetensors" 2>"$tmp/err" || { echo "FAIL embed base: $(cat "$tmp/err")" >&2; exit 1; }

$PY - "$T" "$F" "$tmp" <<'PY' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, st
F, tmp = sys.argv[2], sys.argv[3]
bad = 0
def close(what, got, want, tol=1e-4):
    global bad
    r = np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want)
    print(f"  {what}: rel err {r:.2e}")
    if got.shape != want.shape or not r <= tol:
        print(f"FAIL {what}: shape {got.shape} vs {want.shape}, rel err {r:.3g}"); bad = 1
def same(what, got, want):
    global bad
    if got.shape != want.shape or (got != want).any():
        print(f"FAIL {what}: ids differ from CLIBD's"); bad = 1
for ref, out, names in ((F + "/outputs.safetensors", tmp + "/small.safetensors", ("image", "text", "dna")),
                        (F + "/dna_base_seed1_outputs.safetensors", tmp + "/base.safetensors", ("dna",))):
    r, o = st.load(ref), st.load(out)
    for n in names:
        close(f"{out.split('/')[-1]} {n}_embeddings", o[n + "_embeddings"], r[n + "_embeddings"])
    same("dna_tokens", o["dna_tokens"], r["dna_tokens"])
    if "text" in names:
        same("text_tokens", o["text_tokens"], r["text_tokens"])
sys.exit(bad)
PY

# errors: one line naming what is wrong, nothing written
"$CLADE" embed --model "$tmp/base.pth" --dna "$F/dna.txt" --out "$tmp/x.safetensors" 2>"$tmp/err"
[ $? -ne 0 ] && grep -q "^clade: --dna: .*not a CLIBD model" "$tmp/err" || { echo "FAIL --dna without CLIBD: $(cat "$tmp/err")" >&2; fail=1; }
"$CLADE" embed --model "$tmp/base.pth" --config "$F/dna_base_config.json" --images "$CLADE_FIXTURES/images/img0_cat_224x224.jpg" \
  --out "$tmp/x.safetensors" 2>"$tmp/err"
[ $? -ne 0 ] && grep -q "^clade: --images: .*no image tower: missing key image_encoder.base_image_encoder.cls_token" "$tmp/err" ||
  { echo "FAIL missing image tower: $(cat "$tmp/err")" >&2; fail=1; }
[ ! -e "$tmp/x.safetensors" ] || { echo "FAIL a failed embed wrote its output" >&2; fail=1; }

[ $fail -eq 0 ] && echo "test_embed_clibd: ok"
exit $fail
