#!/usr/bin/env bash
# clade predict against pybioclip's own outputs (tests/parity/predict/ref, made once by
# gen_pybioclip_ref.py with pybioclip 2.1.6): the fixtures' tiny model with a synthetic Tree of
# Life label set (made here by make_label_set.py, numpy only), nine fixture images, pybioclip's
# default transform for BioCLIP ("squash"). Species and every higher rank, k clamped, subsets
# by genus / class / species at species and family, custom labels, bins: names equal, scores
# within 1e-4; the squash transform's pixels. Then what pybioclip has no reference for: JSON output, an upper-case subset
# header, a float16 label set, unreadable images skipped, --embeddings against clade embed,
# --list-taxa.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
: "${CLADE_FIXTURES:?}" "${CLADE_SRC:?}"
P="$CLADE_SRC/tests/parity/predict"
$PY -c 'import numpy' 2>/dev/null || { echo "python3-numpy missing (ci/deps)" >&2; exit 77; }
M="$T/model"
mkdir -p "$M"
ln -s "$CLADE_FIXTURES"/tiny-hub/* "$M/"
$PY "$P/make_label_set.py" "$M" 2>/dev/null
cd "$CLADE_FIXTURES"
mapfile -t IMAGES < <($PY -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["images"]))' "$P/ref/cases.json")
n=0
while IFS=$'\t' read -r name args; do
  eval "set -- $args"
  fixed=()
  for a in "$@"; do [ -f "$P/ref/$a" ] && fixed+=("$P/ref/$a") || fixed+=("$a"); done
  "$CLADE" predict "${IMAGES[@]}" --model "$M" "${fixed[@]}" --output "$T/$name.csv" 2>"$T/err" ||
    { cat "$T/err" >&2; fail "$name: clade predict failed"; }
  grep -q "preprocess squash" "$T/err" || fail "$name: not pybioclip's squash transform by default"
  $PY "$P/compare.py" "$P/ref/$name.csv" "$T/$name.csv" || fail "$name: differs from pybioclip"
  n=$((n + 1))
done < <($PY -c '
import json, shlex, sys
for c in json.load(open(sys.argv[1]))["cases"]: print(c["name"] + "\t" + " ".join(map(shlex.quote, c["args"])))' "$P/ref/cases.json")
[ "$n" -ge 23 ] || fail "only $n reference cases ran"

# the squash transform on its own: clade preprocess --transform squash against pybioclip's
# preprocess_img (sampled values within 2e-6, whole-tensor moments within 1e-6)
"$CLADE" preprocess --transform squash --out "$T/squash.safetensors" "${IMAGES[@]}" 2>/dev/null
$PY - "$T/squash.safetensors" "$P/ref" "$CLADE_FIXTURES/tools" <<'PY' || fail "squash pixels differ from pybioclip's"
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
import st
got = st.load(sys.argv[1])["pixels"].reshape(-1, 3 * 224 * 224).astype(np.float64)
every = np.load(sys.argv[2] + "/squash_every97.npy")
mom = np.load(sys.argv[2] + "/squash_moments.npy")
assert got.shape[0] == every.shape[0] == mom.shape[0]
err = np.abs(got[:, ::97] - every).max()
assert err <= 2e-6, err
m = np.stack([got.sum(1), (got ** 2).sum(1)], axis=1)
assert np.all(np.abs(m - mom) <= 1e-6 * np.abs(mom) + 1e-3), (m, mom)
PY

# custom labels need no label set; a folder whose path names BioCLIP gets pybioclip's squash too
MB="$T/models--imageomics--bioclip/snapshots/0"
mkdir -p "$MB"
ln -s "$CLADE_FIXTURES"/tiny-hub/* "$MB/"
"$CLADE" predict "${IMAGES[@]}" --model "$MB" --cls "$P/ref/labels.txt" --k 3 --output "$T/cls_b.csv" 2>"$T/err"
grep -q "preprocess squash" "$T/err" || fail "a BioCLIP-named folder without a label set: $(cat "$T/err")"
$PY "$P/compare.py" "$P/ref/cls_file_k3.csv" "$T/cls_b.csv" || fail "--cls on a BioCLIP-named folder"

# the subset's header is matched case-insensitively; the same rows as pybioclip's lower-case one
sed '1s/genus/GeNuS/' "$P/ref/subset_genus.csv" > "$T/upper.csv"
"$CLADE" predict "${IMAGES[@]}" --model "$M" --subset "$T/upper.csv" --output "$T/upper_out.csv" 2>/dev/null
$PY "$P/compare.py" "$P/ref/subset_genus_species.csv" "$T/upper_out.csv" || fail "upper-case subset header"

# json: the same predictions, with how they were made
"$CLADE" predict "${IMAGES[@]}" --model "$M" --rank family --format json --output "$T/fam.json" 2>/dev/null
$PY - "$T/fam.json" "$P/ref/tol_family.csv" <<'PY' || fail "json output"
import csv, json, sys
j = json.load(open(sys.argv[1]))
assert j["preprocess"] == "squash" and j["rank"] == "family" and j["k"] == 5, j
want = list(csv.DictReader(open(sys.argv[2], encoding="utf-8")))
assert len(want) == len(j["predictions"])
for w, g in zip(want, j["predictions"]):
    assert all(w[c] == g[c] for c in w if c != "score"), (w, g)
    assert abs(float(w["score"]) - g["score"]) <= 1e-4 * float(w["score"]), (w, g)
PY
# table: every row framed
"$CLADE" predict "${IMAGES[0]}" --model "$M" --format table 2>/dev/null > "$T/table.txt"
[ "$(grep -c '^|' "$T/table.txt")" = 6 ] || fail "table: want a header and 5 rows: $(cat "$T/table.txt")"

# a float16 label set (half the size): the same top species, scores within fp16's precision
M16="$T/model16"
mkdir -p "$M16"
ln -s "$CLADE_FIXTURES"/tiny-hub/* "$M16/"
$PY "$P/make_label_set.py" "$M16" --fp16 2>/dev/null
"$CLADE" predict "${IMAGES[@]}" --model "$M16" --k 1 --output "$T/f16.csv" 2>/dev/null
"$CLADE" predict "${IMAGES[@]}" --model "$M" --k 1 --output "$T/f32.csv" 2>/dev/null
$PY "$P/compare.py" "$T/f32.csv" "$T/f16.csv" 2e-2 || fail "float16 label set"

# an unreadable image is reported and skipped; the others are predicted as before
printf 'not a jpeg' > "$T/broken.jpg"
"$CLADE" predict "$T/broken.jpg" "${IMAGES[@]}" --model "$M" --output "$T/skip.csv" 2>"$T/err" ||
  fail "a broken image ended the run: $(cat "$T/err")"
grep -q "skipping $T/broken.jpg" "$T/err" || fail "the broken image was not reported: $(cat "$T/err")"
$PY "$P/compare.py" "$P/ref/tol_species.csv" "$T/skip.csv" || fail "rows after a skipped image"

# --embeddings (.npy, .csv, .safetensors) hold clade embed's image embeddings (open_clip's transform)
"$CLADE" embed --model "$CLADE_FIXTURES/tiny-hub" --images "${IMAGES[@]}" --out "$T/ref.safetensors" 2>/dev/null
for ext in npy csv safetensors; do
  "$CLADE" predict "${IMAGES[@]}" --model "$M" --preprocess open_clip --embeddings "$T/e.$ext" \
    --output /dev/null 2>/dev/null || fail "--embeddings e.$ext"
done
$PY - "$T" "$CLADE_FIXTURES/tools" "${IMAGES[@]}" <<'PY' || fail "--embeddings differ from clade embed"
import csv, json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
import st
t, images = sys.argv[1], sys.argv[3:]
ref = st.load(t + "/ref.safetensors")["image_embeddings"]
npy = np.load(t + "/e.npy")
rows = list(csv.reader(open(t + "/e.csv")))
assert rows[0] == ["file_name"] + [str(d) for d in range(ref.shape[1])], rows[0]
assert [r[0] for r in rows[1:]] == images
got_csv = np.array([[float(x) for x in r[1:]] for r in rows[1:]], dtype=np.float32)
sf = st.load(t + "/e.safetensors")["image_embeddings"]
for name, got in (("npy", npy), ("csv", got_csv), ("safetensors", sf)):
    assert got.shape == ref.shape and np.array_equal(got, ref), (name, np.abs(got - ref).max())
PY

# many images in small batches: images are scored in groups of at least 32 whatever
# --batch-size is; 81 paths (the nine, nine times) with an unreadable file among them, at batch
# sizes 4 and 100 and at species and genus, give pybioclip's rows for each image, in order
echo "not a jpeg" > "$T/broken.jpg"
MANY=()
for ((r = 0; r < 9; r++)); do MANY+=("${IMAGES[@]}"); [ "$r" = 4 ] && MANY+=("$T/broken.jpg"); done
for rank in species genus; do
  $PY -c 'import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
w = csv.writer(open(sys.argv[2], "w", encoding="utf-8", newline=""), lineterminator="\n")
w.writerow(rows[0]); [w.writerows(rows[1:]) for _ in range(9)]' "$P/ref/tol_$rank.csv" "$T/many_ref.csv"
  for b in 4 100; do
    "$CLADE" predict "${MANY[@]}" --model "$M" --rank "$rank" --batch-size "$b" --output "$T/many.csv" 2>"$T/err" ||
      { cat "$T/err" >&2; fail "81 images at batch $b: clade predict failed"; }
    grep -q "skipping.*broken.jpg" "$T/err" || fail "batch $b: the unreadable image not reported"
    $PY "$P/compare.py" "$T/many_ref.csv" "$T/many.csv" || fail "$rank, 81 images at batch $b differ from pybioclip's rows"
  done
done

# --list-taxa: the label set as pybioclip's list-tol-taxa columns
"$CLADE" predict --list-taxa --model "$M" > "$T/taxa.csv"
$PY - "$T/taxa.csv" "$M/embeddings/txt_emb_species.json" <<'PY' || fail "--list-taxa"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
names = json.load(open(sys.argv[2], encoding="utf-8"))
assert len(rows) == len(names)
for r, (sci, common) in zip(rows, names):
    assert [r[c] for c in ("kingdom", "phylum", "class", "order", "family", "genus", "species_epithet")] == sci
    assert r["species"] == sci[5] + " " + sci[6] and r["common_name"] == common
PY
echo "test_predict_pybioclip: $n pybioclip cases and the extras passed"
