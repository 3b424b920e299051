#!/usr/bin/env bash
# `clade embed` from JPEG files and text lines to embeddings, against open_clip's outputs for
# the tiny model: from tiny.safetensors, the hub folder (.bin), and the training checkpoint,
# with QuickGELU and GELU configs.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
IMGS=$(ls "$F"/images/img*.jpg | sort)
# the fixture's texts that fit on one line, and their indices
$PY - "$F/text_cases.json" "$T/texts.txt" > "$T/idx" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
cases = cases["cases"] if isinstance(cases, dict) and "cases" in cases else cases
idx = []
with open(sys.argv[2], "w") as f:
    for i, c in enumerate(cases):
        t = c["text"] if isinstance(c, dict) else c
        if "\n" in t or "\r" in t or t != t.strip() and t.strip() == "":
            continue
        f.write(t + "\n"); idx.append(str(i))
print(",".join(idx))
PY
IDX=$(cat "$T/idx")
[ -n "$IDX" ] || fail "no texts read from text_cases.json"
cd "$T"
"$CLADE" embed --model "$F/tiny-hub" --images $IMGS --texts texts.txt --out hub.st
$PY "$CLADE_SRC/tests/parity/embed_compare.py" hub.st "$F/tiny_outputs.safetensors" image_embeds text_embeds "$IDX" || fail "hub folder (.bin, QuickGELU)"
"$CLADE" embed --model "$F/tiny.safetensors" --config "$F/tiny_gelu_config.json" --images $IMGS --texts texts.txt --out gelu.st
$PY "$CLADE_SRC/tests/parity/embed_compare.py" gelu.st "$F/tiny_gelu_outputs.safetensors" image_embeds text_embeds "$IDX" || fail "safetensors + GELU config"
"$CLADE" embed --model "$F/tiny_epoch_3.pt" --config "$F/tiny_config.json" --images $IMGS --out epoch.st
$PY "$CLADE_SRC/tests/parity/embed_compare.py" epoch.st "$F/tiny_outputs.safetensors" image_embeds text_embeds "" || fail "training checkpoint"
# GELU weights scored against the QuickGELU reference must fail: the comparison can fail
if $PY "$CLADE_SRC/tests/parity/embed_compare.py" gelu.st "$F/tiny_outputs.safetensors" image_embeds text_embeds "$IDX" >/dev/null; then
  fail "GELU output passed as QuickGELU: the comparison is too loose"
fi
# repeated paths are embedded each time, in order
"$CLADE" embed --model "$F/tiny-hub" --images "$F/images/img3_raccoon_640x480.jpg" "$F/images/img0_cat_224x224.jpg" "$F/images/img3_raccoon_640x480.jpg" --out rep.st
$PY - <<PY || fail "repeated images"
import sys; sys.path.insert(0, "$F/tools"); import st, numpy as np
a = st.load("rep.st")["image_embeddings"]; r = st.load("$F/tiny_outputs.safetensors")["image_embeds"]
assert a.shape[0] == 3 and st.relerr(a[0], a[2]) < 1e-6 and st.relerr(a[1], r[0]) < 1e-4 and st.relerr(a[0], r[3]) < 1e-4
PY
# bad input: one line naming the file, non-zero exit, no output file
if "$CLADE" embed --model "$F/tiny-hub" --images "$F/images/nope.jpg" --out bad.st 2> err; then fail "missing image accepted"; fi
grep -q "nope.jpg" err || fail "missing image not named: $(cat err)"
[ ! -e bad.st ] || fail "output written on failure"
if "$CLADE" embed --model "$F/tiny.safetensors" --config "$F/vitb16_config.json" --images $IMGS --out bad.st 2> err; then fail "wrong shapes accepted"; fi
grep -q "visual" err || fail "shape mismatch does not name the key: $(cat err)"
[ "$(grep -vc ": running on the CPU$" err)" = 1 ] || fail "error is not one line: $(cat err)"
echo "test_embed_cli: ok"
