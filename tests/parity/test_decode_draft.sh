#!/usr/bin/env bash
# clade preprocess --decode draft against PIL itself (Debian's python3-pil, on the same
# libjpeg-turbo): Image.draft("RGB", (224, 224)) and then open_clip's preprocess_val done with
# PIL (resize bicubic on the short side, center crop, RGB, /255, mean/std in float32) must give
# the same pixels, on photos, gray, 4:2:2, progressive and CMYK JPEGs at scales 1, 1/2, 1/4 and
# 1/8, and on a PNG (never drafted). Draft of a small JPEG equals the full decode; of a large
# one it does not (the mode did something). A truncated JPEG fails, naming the file.
set -euo pipefail
: "${CLADE:?}"
PY=/usr/bin/python3
$PY -c 'import numpy, PIL' 2>/dev/null || { echo "SKIP: needs Debian's python3-pil and python3-numpy (ci/deps installs them)" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CLADE" bench --make-images "$T/photos" --n-images 4 2>/dev/null
$PY - "$T/photos" "$T/more" <<'PY'
import os, sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out)
base = Image.open(os.path.join(src, sorted(os.listdir(src))[3])).convert("RGB")  # the 1024x768 one or near it
big = base.resize((2300, 1800), Image.BICUBIC)
big.save(os.path.join(out, "big_420.jpg"), quality=90)                       # 1/8
big.resize((1000, 1500), Image.BICUBIC).save(os.path.join(out, "tall_422.jpg"), quality=85, subsampling=1)  # 1/4
base.convert("L").resize((901, 677)).save(os.path.join(out, "gray.jpg"), quality=92)                 # 1/2, odd size
base.save(os.path.join(out, "progressive.jpg"), quality=88, progressive=True)
base.convert("CMYK").save(os.path.join(out, "cmyk.jpg"), quality=90)
base.resize((300, 500)).save(os.path.join(out, "small.jpg"), quality=90)                             # scale 1
base.save(os.path.join(out, "photo.png"))
PY
ls "$T"/photos/*.jpg "$T"/more/* > "$T/list"
mapfile -t IMGS < "$T/list"
"$CLADE" preprocess --decode draft --out "$T/draft.safetensors" "${IMGS[@]}" || fail "preprocess --decode draft"
"$CLADE" preprocess --out "$T/full.safetensors" "${IMGS[@]}" || fail "preprocess"
if "$CLADE" preprocess --decode fast --out "$T/x.safetensors" "${IMGS[0]}" 2> "$T/err"; then fail "--decode fast accepted"; fi
grep -q "decode is full or draft, not 'fast'" "$T/err" || fail "bad --decode message: $(cat "$T/err")"

# a truncated JPEG fails in draft as in full decoding (PIL: "image file is truncated"), naming it
head -c 30000 "$T/more/big_420.jpg" > "$T/cut.jpg"
if "$CLADE" preprocess --decode draft --out "$T/x.safetensors" "$T/cut.jpg" 2> "$T/err"; then fail "truncated JPEG accepted in draft"; fi
grep -q "cut.jpg: truncated JPEG" "$T/err" || fail "truncated message: $(cat "$T/err")"

$PY - "$T/draft.safetensors" "$T/full.safetensors" "${IMGS[@]}" <<'PY'
import os, sys
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.environ["CLADE_SRC"], "tests", "lib"))
from pil_pixels import load, normalize

S = 224

def reference(path, draft):
    im = Image.open(path)
    if draft:
        im.draft("RGB", (S, S))
    w, h = im.size
    if w <= h:
        nw, nh = S, int(S * h / w)
    else:
        nw, nh = int(S * w / h), S
    im = im.resize((nw, nh), Image.BICUBIC)              # torchvision Resize on a PIL image
    left, top = int(round((nw - S) / 2.0)), int(round((nh - S) / 2.0))
    im = im.crop((left, top, left + S, top + S)).convert("RGB")
    return normalize(im), Image.open(path).size, im

draft, md = load(sys.argv[1])
full, _ = load(sys.argv[2])
assert md.get("decode") == "draft", md
paths = sys.argv[3:]
bad = 0
for i, p in enumerate(paths):
    ref, size, _ = reference(p, True)
    d = float(np.abs(draft[i] - ref).max())
    scale = min(size[0] // S, size[1] // S)
    s = 8 if scale >= 8 else 4 if scale >= 4 else 2 if scale >= 2 else 1
    same_as_full = bool((draft[i] == full[i]).all())
    ok = d == 0.0 and (same_as_full == (s == 1 or p.endswith(".png")))
    print("%-16s %4dx%-4d 1/%d  max|clade - PIL draft| = %g  equal to full decode: %s  %s" %
          (p.split("/")[-1], size[0], size[1], s, d, same_as_full, "ok" if ok else "MISMATCH"))
    bad += not ok
sys.exit(1 if bad else 0)
PY
echo "test_decode_draft: ok"
