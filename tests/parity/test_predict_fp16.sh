#!/usr/bin/env bash
# clade predict --label-dtype fp16: the Tree of Life embeddings' float16 variant, made once from
# the float32 txt_emb_species.npy. The file written is np.save(a.astype(np.float16)) byte for
# byte (NumPy's round to nearest even: ties both ways, subnormals, overflow to inf, NaN
# payloads, signed zeros); it is reused while the float32 file is unchanged and remade when it
# changes; a read-only model folder sends it to $XDG_CACHE_HOME/clade/labels/. Predictions on
# pybioclip's reference case (tests/parity/predict/ref) keep the top-1 names, with scores within
# the bound derived below; json output and stderr record the label dtype.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
private_mounts "$0" "$@"
: "${CLADE_FIXTURES:?}" "${CLADE_SRC:?}"
P="$CLADE_SRC/tests/parity/predict"
$PY -c 'import numpy' 2>/dev/null || { echo "python3-numpy missing (ci/deps)" >&2; exit 77; }
model() { # model DIR [--fp16]: the tiny model with the synthetic label set
  mkdir -p "$1"
  ln -s "$CLADE_FIXTURES"/tiny-hub/* "$1/"
  $PY "$P/make_label_set.py" "$@" 2>/dev/null
}
# hard SEED NPY: float32 values of every kind float16 rounding must get right, the label set's shape
hard() {
  $PY - "$1" "$2" <<'PY'
import sys
import numpy as np
seed, path = int(sys.argv[1]), sys.argv[2]
shape = np.load(path, mmap_mode="r").shape
rng = np.random.Generator(np.random.PCG64(seed))
n = shape[0] * shape[1]
x = (rng.standard_normal(n) * np.exp2(rng.integers(-30, 18, n))).astype(np.float32)
bits = x.view(np.uint32)
k = n // 8  # exact ties (the 13 dropped bits 1000000000000), odd and even kept bits
bits[:k] = (bits[:k] & ~np.uint32(0x3FFF)) | np.uint32(0x1000) | (rng.integers(0, 2, k).astype(np.uint32) << 13)
special = np.array([0x00000000, 0x80000000, 0x00000001, 0x33000000, 0x33000001, 0x33800000, 0x387FC000,
                    0x387FE000, 0x38800000, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x47800000, 0x7F7FFFFF,
                    0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00001, 0x7FA00000, 0x7F802000],
                   dtype=np.uint32)
bits[k:k + len(special)] = special
np.save(path, bits.view(np.float32).reshape(shape))
PY
}
# same_as_numpy F16 F32: F16's bytes are np.save(np.load(F32).astype(np.float16))'s
same_as_numpy() {
  $PY - "$1" "$2" <<'PY' || fail "$1 is not NumPy's astype(np.float16) of $2"
import io, sys
import numpy as np
b = io.BytesIO()
with np.errstate(over="ignore"):
    np.save(b, np.load(sys.argv[2]).astype(np.float16))
got = open(sys.argv[1], "rb").read()
if got != b.getvalue():
    g = np.load(sys.argv[1]).view(np.uint16).ravel()
    w = np.load(io.BytesIO(b.getvalue())).view(np.uint16).ravel()
    i = np.flatnonzero(g != w)[:5] if g.shape == w.shape else []
    sys.exit(f"differs: {len(got)} vs {len(b.getvalue())} bytes; at {list(i)}: {[hex(v) for v in g[i]]} vs "
             f"{[hex(v) for v in w[i]]}")
PY
}
list16() { "$CLADE" predict --list-taxa --label-dtype fp16 --model "$@"; }

# made beside the float32 file, NumPy's bits
E="$T/e"
model "$E"
F32="$E/embeddings/txt_emb_species.npy" F16="$E/embeddings/txt_emb_species.fp16.npy"
hard 1 "$F32"
list16 "$E" > "$T/taxa16.csv" 2> "$T/err" || fail "--label-dtype fp16: $(cat "$T/err")"
grep -q "making the float16 label set $F16" "$T/err" || fail "not said: $(cat "$T/err")"
same_as_numpy "$F16" "$F32"
"$CLADE" predict --list-taxa --model "$E" > "$T/taxa32.csv"
cmp -s "$T/taxa16.csv" "$T/taxa32.csv" || fail "--list-taxa differs with --label-dtype fp16"
# reused while the float32 file is unchanged
before=$(stat -c '%i %Y.%y' "$F16")
list16 "$E" > /dev/null 2> "$T/err"
! grep -q "making" "$T/err" || fail "remade although the float32 file is unchanged"
[ "$(stat -c '%i %Y.%y' "$F16")" = "$before" ] || fail "the variant was rewritten"
# remade when the float32 file changes (the same size)
hard 2 "$F32"
list16 "$E" > /dev/null 2> "$T/err"
grep -q "making" "$T/err" || fail "a changed float32 file did not remake the variant"
same_as_numpy "$F16" "$F32"
# a variant that is not the one recorded (replaced by hand) is remade too
cp "$F16" "$T/keep.npy" && cp "$T/keep.npy" "$F16"
list16 "$E" > /dev/null 2> "$T/err"
grep -q "making" "$T/err" || fail "a replaced variant was used"
ls "$E/embeddings" | grep -q tmp && fail "temporary files left: $(ls "$E/embeddings")"

# a float16 txt_emb_species.npy is used as it is
H="$T/h"
model "$H" --fp16
list16 "$H" > /dev/null 2> "$T/err" || fail "--label-dtype fp16 on a float16 label set: $(cat "$T/err")"
[ ! -e "$H/embeddings/txt_emb_species.fp16.npy" ] || fail "a variant was made of a float16 label set"

# options refused before anything is encoded
IMG="$CLADE_FIXTURES/images/img0_cat_224x224.jpg"
"$CLADE" predict "$IMG" --model "$E" --label-dtype bf16 2> "$T/err" && fail "--label-dtype bf16 accepted"
grep -q "label-dtype bf16: choose fp32 or fp16" "$T/err" || fail "bf16: $(cat "$T/err")"
"$CLADE" predict "$IMG" --model "$E" --cls a,b --label-dtype fp16 2> "$T/err" && fail "--cls with --label-dtype accepted"
grep -q -- "--label-dtype with --cls" "$T/err" || fail "--cls: $(cat "$T/err")"

# pybioclip's reference case: the same top-1 species, scores within the bound. With x the
# L2-normalised image embedding and l_j a unit label column, float16 rounding moves each l_ij
# by at most max(u |l_ij|, 2^-25) (u = 2^-11; 2^-25 half the smallest subnormal), so each logit
# s x.l_j moves by at most eps = s (u + 2^-25 sqrt(D)) (Cauchy-Schwarz), and each softmax
# probability by a factor within exp(+-2 eps). pybioclip's reference scores are clade's float32
# ones to 1e-4, so: |p16 / p_ref - 1| <= (1 + 1e-4) exp(2 eps) - 1, and the top-1 stays where the
# reference's log margin over the second exceeds 2 eps + 2e-4 (asserted, so the case decides).
M="$T/model"
model "$M"
cd "$CLADE_FIXTURES"
mapfile -t IMAGES < <($PY -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["images"]))' "$P/ref/cases.json")
"$CLADE" predict "${IMAGES[@]}" --model "$M" --label-dtype fp16 --output "$T/f16.csv" 2> "$T/err" ||
  fail "predict --label-dtype fp16: $(cat "$T/err")"
grep -q "labels (fp16), preprocess squash" "$T/err" || fail "stderr does not record fp16: $(cat "$T/err")"
"$CLADE" predict "${IMAGES[@]}" --model "$M" --label-dtype fp16 --format json --output "$T/f16.json" 2>/dev/null
"$CLADE" predict "${IMAGES[@]}" --model "$M" --format json --output "$T/f32.json" 2>/dev/null
printf 'a\n' > "$T/t.txt"
"$CLADE" embed --model "$CLADE_FIXTURES/tiny-hub" --texts "$T/t.txt" --out "$T/scale.safetensors" 2>/dev/null
$PY - "$P/ref/tol_species.csv" "$T/f16.csv" "$T/scale.safetensors" "$CLADE_FIXTURES/tools" "$M" "$T" <<'PY' ||
import csv, json, math, sys
import numpy as np
ref_csv, got_csv, scale_st, tools, model, t = sys.argv[1:]
sys.path.insert(0, tools)
import st
s = float(np.exp(st.load(scale_st)["logit_scale"]))
D = np.load(model + "/embeddings/txt_emb_species.npy", mmap_mode="r").shape[0]
eps = s * (2.0 ** -11 + 2.0 ** -25 * math.sqrt(D))
bound = (1 + 1e-4) * math.exp(2 * eps) - 1
def top(path):
    rows = {}
    for r in csv.DictReader(open(path, encoding="utf-8")):
        rows.setdefault(r["file_name"], []).append(r)
    return rows
ref, got = top(ref_csv), top(got_csv)
assert list(ref) == list(got), (list(ref), list(got))
worst = 0.0
for f in ref:
    a, b = ref[f], got[f]
    margin = math.log(float(a[0]["score"]) / float(a[1]["score"]))
    assert margin > 2 * eps + 2e-4, f"{f}: the reference's margin {margin:.4f} cannot decide the top-1 (2 eps = {2 * eps:.4f})"
    assert [a[0][c] for c in a[0] if c != "score"] == [b[0][c] for c in b[0] if c != "score"], (f, a[0], b[0])
    err = abs(float(b[0]["score"]) / float(a[0]["score"]) - 1)
    assert err <= bound, f"{f}: top-1 score rel err {err:.3e} > bound {bound:.3e}"
    worst = max(worst, err)
j16, j32 = json.load(open(t + "/f16.json")), json.load(open(t + "/f32.json"))
assert j16["label_dtype"] == "fp16" and j32["label_dtype"] == "fp32", (j16["label_dtype"], j32["label_dtype"])
print(f"fp16 top-1: worst rel err {worst:.2e} <= bound {bound:.2e} (s = {s:.3f}, D = {D})", file=sys.stderr)
PY
  fail "fp16 predictions outside the bound"
cd - > /dev/null

# a read-only model folder: the variant goes to the cache, said on stderr, NumPy's bits there
R="$T/ro"
model "$R"
hard 3 "$R/embeddings/txt_emb_species.npy"
read_only "$R/embeddings"
touch "$R/embeddings/probe" 2>/dev/null && fail "the folder is still writable"
if env -u XDG_CACHE_HOME HOME= "$CLADE" predict --list-taxa --label-dtype fp16 --model "$R" > /dev/null 2> "$T/err"; then
  fail "no writable place for the variant, yet accepted"
fi
grep -qF "$R/embeddings is not writable and there is no cache folder" "$T/err" || fail "no cache: $(cat "$T/err")"
XDG_CACHE_HOME="$T/cache" list16 "$R" > /dev/null 2> "$T/err" || fail "read-only folder: $(cat "$T/err")"
grep -qF "$R/embeddings is not writable: the float16 label set goes to $T/cache/clade/labels/" "$T/err" ||
  fail "the fallback is not said: $(cat "$T/err")"
C16=$(ls "$T"/cache/clade/labels/*.npy)
same_as_numpy "$C16" "$R/embeddings/txt_emb_species.npy"
XDG_CACHE_HOME="$T/cache" list16 "$R" > /dev/null 2> "$T/err"
! grep -q "making" "$T/err" || fail "the cached variant was not reused: $(cat "$T/err")"
echo "test_predict_fp16: NumPy's float16 bits, made once and remade when stale, predictions within the bound"
