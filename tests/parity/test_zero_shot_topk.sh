#!/usr/bin/env bash
# zero_shot's top-1/3/5 against open_clip's logits (tiny_outputs.safetensors: the six fixture
# images against the 21 fixture texts): the texts are the classes (text type "asis", template
# "{}"), four copies of each image carry labels spread over the 17 that tokenize apart, and the reference
# ranks come from logits_per_image. Every top-k and every top-1 prediction equal.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
source "$CLADE_SRC/tests/lib/common.sh"
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES"
mkdir -p "$T/images"
# the manifest and the reference: 24 rows (image i copy c), the expected top-k and predictions
$PY - "$F" "$T" <<'PY'
import csv, json, shutil, sys
import numpy as np
sys.path.insert(0, sys.argv[1] + "/tools"); import st
F, T = sys.argv[1:]
texts = [c["text"] for c in json.load(open(F + "/text_cases.json"))]
logits = st.load(F + "/tiny_outputs.safetensors")["logits_per_image"].astype(np.float64)  # [6, 21]
images = ["img0_cat_224x224.jpg", "img1_cat_97x131_progressive.jpg", "img2_raccoon_1024x768_gray.jpg",
          "img3_raccoon_640x480.jpg", "img4_human_300x500_444.jpg", "img5_human_400x300_cmyk.jpg"]
# every text but the empty one, the one made of whitespace (a manifest trims those), and one
# whose tokens equal an earlier one's (lowercased, or truncated at 77: the same logits, a tie)
cls = []
for j, t in enumerate(texts):
    if t and t.strip() == t and not any((logits[:, j] == logits[:, q]).all() for q in cls):
        cls.append(j)
C = len(cls)
assert C == 17 and len(set(texts[j] for j in cls)) == C, cls
rows = [(i, c) for c in range(4) for i in range(6)]
order = np.random.default_rng(7).permutation(24)
label = {r: cls[order[n] % C] for n, r in enumerate(rows)}  # each class at least once
hits, preds = {1: 0, 3: 0, 5: 0}, []
with open(T + "/m.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["filepath", "class"])
    for i, c in rows:
        name = "images/c%d_%s" % (c, images[i])
        shutil.copy(F + "/images/" + images[i], T + "/" + name)
        w.writerow([name, texts[label[(i, c)]]])
        s = logits[i, cls]
        rank = np.argsort(-s, kind="stable")
        # a reference that can decide: no near-tie at any cut that matters here
        ss = np.sort(s)[::-1]
        assert min(ss[0] - ss[1], ss[2] - ss[3], ss[4] - ss[5]) > 1e-3, (i, ss[:6])
        pos = list(rank).index(cls.index(label[(i, c)]))
        for k in hits:
            hits[k] += pos < k
        preds.append((name, texts[cls[rank[0]]]))
with open(T + "/want.json", "w") as f:
    json.dump({"top%d" % k: v / 24 for k, v in hits.items()} | {"preds": sorted(preds)}, f)
assert 0 < hits[1] < hits[3] < hits[5] < 24, hits  # each top-k decides something
PY
cat > "$T/x.lua" <<LUA
model "tiny" { path = "$F/tiny-hub" }
dataset "texts" { root = "$T", manifest = "$T/m.csv" }
experiment "zs" { models = { "tiny" }, datasets = { "texts" },
                  protocol = zero_shot { text_types = { "asis" }, templates = { "{}" } } }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet
"$CLADE" results --db "$T/r.db" --format json > "$T/r.json"
"$CLADE" predictions --db "$T/r.db" --format json > "$T/p.json"
$PY - "$T" <<'PY' || fail "zero-shot top-k differ from open_clip's logits"
import json, sys
T = sys.argv[1]
want = json.load(open(T + "/want.json"))
got = {r["metric"]: r["value"] for r in json.load(open(T + "/r.json"))}
for k in ("top1", "top3", "top5"):
    assert got[k] == want[k], (k, got[k], want[k])
preds = sorted((p["filepath"], p["prediction"]) for p in json.load(open(T + "/p.json")))
assert preds == [tuple(p) for p in want["preds"]], [(a, b) for a, b in zip(preds, want["preds"]) if list(a) != b]
print("zero-shot top1 %.4f top3 %.4f top5 %.4f and 24 predictions equal open_clip's" % tuple(want["top%d" % k] for k in (1, 3, 5)))
PY
