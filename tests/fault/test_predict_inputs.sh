#!/usr/bin/env bash
# clade predict refuses bad input before encoding anything, with an error naming the file (and
# the key or value): a label set whose .npy and .json disagree (taxa count, embedding width),
# a .npy it does not understand, a subset CSV whose first column is not a rank, an empty subset,
# a subset value in no taxon, a directory without images, bad bins, conflicting options.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
: "${CLADE_FIXTURES:?}" "${CLADE_SRC:?}"
$PY -c 'import numpy' 2>/dev/null || { echo "python3-numpy missing (ci/deps)" >&2; exit 77; }
IMG="$CLADE_FIXTURES/images/img0_cat_224x224.jpg"
model() { # model DIR: the tiny model with the synthetic label set
  mkdir -p "$1"
  ln -s "$CLADE_FIXTURES"/tiny-hub/* "$1/"
  $PY "$CLADE_SRC/tests/parity/predict/make_label_set.py" "$1" 2>/dev/null
}
# refused WHAT WANT1 WANT2 -- ARGS: clade predict ARGS fails, its error holds WANT1 and WANT2
refused() {
  local what=$1 w1=$2 w2=$3
  shift 4
  if "$CLADE" predict "$@" > "$T/out" 2> "$T/err"; then fail "$what: accepted"; fi
  grep -qF -- "$w1" "$T/err" || fail "$what: the error does not name '$w1': $(cat "$T/err")"
  grep -qF -- "$w2" "$T/err" || fail "$what: the error does not say '$w2': $(cat "$T/err")"
  grep -q "predict: [0-9]* images" "$T/err" && fail "$what: images were encoded before the error"
  [ ! -s "$T/out" ] || fail "$what: wrote output"
}
M="$T/good"
model "$M"

# broken NAME PYTHON: a model folder whose label set PYTHON changed (npy, js: its two paths;
# np, json imported), into $B
broken() {
  B="$T/$1"
  model "$B"
  $PY -c "import json, sys; import numpy as np; npy, js = sys.argv[1:3]; $2" \
    "$B/embeddings/txt_emb_species.npy" "$B/embeddings/txt_emb_species.json"
}
NPY=embeddings/txt_emb_species.npy JS=embeddings/txt_emb_species.json
# the label set's shapes disagree: one taxon fewer in the .json; a width the model lacks
broken fewer 'n = json.load(open(js)); json.dump(n[:-1], open(js, "w"))'
refused "json shorter" "$B/$JS" "shapes disagree" -- "$IMG" --model "$B"
broken wide 'a = np.load(npy); np.save(npy, np.vstack([a, a]))'
refused "npy width 64" "$B/$NPY" "32 dimensions" -- "$IMG" --model "$B"
broken fortran 'np.save(npy, np.asfortranarray(np.load(npy)))'
refused "fortran order" "$B/$NPY" "Fortran order" -- "$IMG" --model "$B"
broken bigendian 'np.save(npy, np.load(npy).astype(">f4"))'
refused "big-endian" "$B/$NPY" "'>f4' is not read" -- "$IMG" --model "$B"
broken f64 'np.save(npy, np.load(npy).astype(np.float64))'
refused "float64" "$B/$NPY" "expected a float32 or float16" -- "$IMG" --model "$B"
broken trunc 'open(npy, "r+b").truncate(1000)'
refused "truncated npy" "$B/$NPY" "(truncated)" -- "$IMG" --model "$B"
broken badentry 'n = json.load(open(js)); n[7][0] = n[7][0][:6]; json.dump(n, open(js, "w"))'
refused "json entry" "$B/$JS" "entry 7 is not" -- "$IMG" --model "$B"
broken emptyset 'np.save(npy, np.zeros((32, 0), np.float32)); open(js, "w").write("[]")'
refused "empty label set" "$B/$NPY" "an empty label set" -- "$IMG" --model "$B"
B="$T/nolabels"
mkdir -p "$B"
ln -s "$CLADE_FIXTURES"/tiny-hub/* "$B/"
refused "no label set" "$B/embeddings/txt_emb_species.npy" "No such file" -- "$IMG" --model "$B"

# subsets
printf 'taxon\nMorus\n' > "$T/notrank.csv"
refused "first column not a rank" "$T/notrank.csv" "named 'taxon'" -- "$IMG" --model "$M" --subset "$T/notrank.csv"
printf 'genus\n' > "$T/empty.csv"
refused "empty subset" "$T/empty.csv" "empty subset" -- "$IMG" --model "$M" --subset "$T/empty.csv"
printf 'Genus\nMorus\nNotagenus\n' > "$T/unknown.csv"
refused "unknown genus" "$T/unknown.csv" "'Notagenus'" -- "$IMG" --model "$M" --subset "$T/unknown.csv"
printf 'species\nMorus\n' > "$T/genus_as_species.csv"
refused "a genus as a species" "$T/genus_as_species.csv" "unknown species: 'Morus'" -- "$IMG" --model "$M" \
  --subset "$T/genus_as_species.csv"
: > "$T/nothing.csv"
refused "subset file empty" "$T/nothing.csv" "no header row" -- "$IMG" --model "$M" --subset "$T/nothing.csv"

# images
mkdir -p "$T/noimages/sub"
echo text > "$T/noimages/notes.txt"
refused "directory without images" "$T/noimages" "directory without images" -- "$T/noimages" --model "$M"

# bins and options
printf 'class\ncat\n' > "$T/onecol.csv"
refused "bins with one column" "$T/onecol.csv" "two columns" -- "$IMG" --model "$M" --bins "$T/onecol.csv"
printf 'class,bin\ncat,mammal\ndog,\n' > "$T/emptybin.csv"
refused "empty bin" "$T/emptybin.csv:3" "empty bin" -- "$IMG" --model "$M" --bins "$T/emptybin.csv"
refused "cls and rank" "--cls" "--rank" -- "$IMG" --model "$M" --cls a,b --rank genus
refused "bad rank" "--rank tribe" "kingdom" -- "$IMG" --model "$M" --rank tribe
refused "bad format" "--format xml" "csv" -- "$IMG" --model "$M" --format xml
refused "bad k" "--k 0" "whole number" -- "$IMG" --model "$M" --k 0
refused "huge batch" "--batch-size 5000" "from 1 to 4096" -- "$IMG" --model "$M" --batch-size 5000
refused "bad embeddings" "--embeddings" "" -- "$IMG" --model "$M" --embeddings
# options spelled --name=VALUE, as every other command takes them: checked the same way
refused "bad k=" "--k 0" "whole number" -- "$IMG" --model="$M" --k=0
refused "bad rank=" "--rank tribe" "kingdom" -- "$IMG" --model="$M" --rank=tribe
refused "empty subset=" "$T/empty.csv" "empty subset" -- "$IMG" --model="$M" --subset="$T/empty.csv"
"$CLADE" predict "$IMG" --model "$M" --rank genus --k 2 > "$T/spaced.csv" 2>/dev/null || fail "predict --rank genus"
"$CLADE" predict "$IMG" --model="$M" --rank=genus --k=2 > "$T/eq.csv" 2>/dev/null || fail "predict --rank=genus"
[ -s "$T/eq.csv" ] && cmp -s "$T/spaced.csv" "$T/eq.csv" || fail "--rank=genus --k=2 differs from --rank genus --k 2"
echo "test_predict_inputs: every bad input refused, naming it"
