#!/usr/bin/env bash
# open_clip's training crop + resize against PIL itself (Debian's python3-pil: torchvision's
# F.resized_crop on a PIL image is img.crop(box).resize((S, S), BICUBIC)), then RGB, /255,
# mean/std in float32 as ToTensor + Normalize: every value equal, on every fixture image
# (RGB, gray, progressive, CMYK, 4:4:4 JPEGs; gray, palette, RGBA PNGs), for the boxes
# `clade preprocess --augment SEED` draws (recorded in the metadata) and for given boxes: a
# 1x1 box, a thin strip, a box reaching outside the image (PIL pads with zeros).
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy, PIL' 2>/dev/null || { echo "SKIP: needs Debian's python3-pil and python3-numpy (ci/deps installs them)" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
IMGS=("$CLADE_FIXTURES"/images/*.jpg "$CLADE_FIXTURES"/images/*.png)
[ ${#IMGS[@]} -ge 9 ] || fail "fixture images missing under $CLADE_FIXTURES/images"

"$CLADE" preprocess --augment 11 --out "$T/aug.safetensors" "${IMGS[@]}" || fail "preprocess --augment"
"$CLADE" preprocess --augment 12 --out "$T/aug2.safetensors" "${IMGS[@]}" || fail "preprocess --augment"
"$CLADE" preprocess --augment 11 --out "$T/again.safetensors" "${IMGS[@]}" || fail "preprocess --augment"
cmp -s "$T/aug.safetensors" "$T/again.safetensors" || fail "the same seed gave other pixels or boxes"
BOXES=("0,0,1,1" "5,2,3,90" "-20,-10,150,140" "60,40,37,211")
for k in "${!BOXES[@]}"; do
  "$CLADE" preprocess --box "${BOXES[$k]}" --size 64 --out "$T/box$k.safetensors" "${IMGS[@]}" || fail "preprocess --box ${BOXES[$k]}"
done
if "$CLADE" preprocess --augment 1 --box 0,0,2,2 --out "$T/x" "${IMGS[0]}" 2> "$T/err"; then fail "--augment with --box accepted"; fi
grep -q "not both" "$T/err" || fail "message: $(cat "$T/err")"

$PY - "$T" "${#BOXES[@]}" "${IMGS[@]}" <<'PY'
import json, os, sys
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.environ["CLADE_SRC"], "tests", "lib"))
from pil_pixels import load, normalize


def reference(path, box, size):
    left, top, w, h = box
    return normalize(Image.open(path).crop((left, top, left + w, top + h)).resize((size, size), Image.BICUBIC))

T, nbox, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
bad = checked = 0
def check(pix, i, box, size, what):
    global bad, checked
    d = float(np.abs(pix[i] - reference(paths[i], box, size)).max())
    checked += 1
    if d != 0.0:
        bad += 1
        print("MISMATCH %s %s box %s: max|clade - PIL| = %g" % (what, paths[i].split("/")[-1], box, d))

boxes_seen = []
for name in ("aug", "aug2"):
    pix, md = load("%s/%s.safetensors" % (T, name))
    boxes = json.loads(md["boxes"])
    assert len(boxes) == len(paths) and "RandomResizedCrop(224" in md["transform"], md
    boxes_seen += boxes
    for i, b in enumerate(boxes):
        w, h = Image.open(paths[i]).size
        assert 0 <= b[0] and 0 <= b[1] and b[0] + b[2] <= w and b[1] + b[3] <= h, (paths[i], b)
        share = b[2] * b[3] / (w * h)
        central = b[0] == (w - b[2]) // 2 and b[1] == (h - b[3]) // 2  # the fallback, e.g. 300x500 -> 300x400
        assert 0.85 < share <= 1.0 or central, (paths[i], b, share)  # scale (0.9, 1.0), up to rounding
        check(pix, i, b, 224, name)
for k in range(nbox):
    pix, md = load("%s/box%d.safetensors" % (T, k))
    boxes = json.loads(md["boxes"])
    for i, b in enumerate(boxes):
        check(pix, i, b, 64, "given")
# the draws did something: not every box is the whole image, and the two seeds differ
full = sum(1 for i, b in enumerate(boxes_seen) if b[2:] == list(Image.open(paths[i % len(paths)]).size))
assert full < len(boxes_seen) and boxes_seen[:len(paths)] != boxes_seen[len(paths):], boxes_seen
print("%d crops equal to PIL's crop + resize (%d of %d drawn boxes are the whole image)" % (checked - bad, full, len(boxes_seen)))
sys.exit(1 if bad else 0)
PY
echo "test_augment_pil: ok"
