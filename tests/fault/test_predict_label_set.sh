#!/usr/bin/env bash
# The Tree of Life label set's txt_emb_species.json, streamed (yajl): what it refuses names the
# file and the entry, rank or byte; more entries than the .npy has columns is refused at the
# first extra entry (what follows it is never read: here, text that is not JSON); null ranks and
# common names read as empty; escapes are decoded. Through `clade predict --list-taxa`.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
: "${CLADE_FIXTURES:?}" "${CLADE_SRC:?}"
$PY -c 'import numpy' 2>/dev/null || { echo "python3-numpy missing (ci/deps)" >&2; exit 77; }
M="$T/m"
mkdir -p "$M"
ln -s "$CLADE_FIXTURES"/tiny-hub/* "$M/"
$PY "$CLADE_SRC/tests/parity/predict/make_label_set.py" "$M" 2>/dev/null
JS="$M/embeddings/txt_emb_species.json"
cp "$JS" "$T/good.json"
# refused WHAT PYTHON WANT...: the .json as PYTHON writes it (n: the good entries, s: their
# text, js: the path) is refused with an error holding the path and every WANT
refused() {
  local what=$1 code=$2 w
  shift 2
  $PY -c "import json, sys; js = sys.argv[1]; s = open(sys.argv[2]).read(); n = json.loads(s); $code" "$JS" "$T/good.json"
  if "$CLADE" predict --list-taxa --model "$M" > "$T/out" 2> "$T/err"; then fail "$what: accepted"; fi
  for w in "$JS" "$@"; do
    grep -qF -- "$w" "$T/err" || fail "$what: the error does not say '$w': $(cat "$T/err")"
  done
  cp "$T/good.json" "$JS"
}
N=$($PY -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$JS")
refused "truncated" 'open(js, "w").write(s[:5000])' "invalid JSON near byte 5000" "premature EOF"
refused "syntax error" 'open(js, "w").write(s[:2] + ":" + s[2:])' "invalid JSON near byte 3:" "unallowed token"
refused "trailing text" 'open(js, "w").write(s + " x")' "invalid JSON near byte" "trailing garbage"
refused "an object" 'open(js, "w").write("{\"a\": 1}")' "not a JSON array"
refused "empty file" 'open(js, "w").write("")' "invalid JSON near byte 0"
refused "one entry more, then not JSON" 'open(js, "w").write(s[:-1] + ", " + json.dumps(n[0]) + ", !!! not json")' \
  "more than $N taxa (entry $N at byte" "shapes disagree"
refused "one entry fewer" 'json.dump(n[:-1], open(js, "w"))' "$((N - 1)) taxa, but" "shapes disagree"
refused "a number as a rank" 'n[5][0][2] = 3; json.dump(n, open(js, "w"))' "entry 5: the class is not a string (byte"
refused "an object as a rank" 'n[6][0][6] = {}; json.dump(n, open(js, "w"))' "entry 6: the species is not a string"
refused "eight ranks" 'n[7][0].append("x"); json.dump(n, open(js, "w"))' "entry 7 is not [[kingdom"
refused "no common name" 'n[8] = [n[8][0]]; json.dump(n, open(js, "w"))' "entry 8 is not [[kingdom"
refused "a third element" 'n[9].append("x"); json.dump(n, open(js, "w"))' "entry 9 is not [[kingdom"
refused "a common name list" 'n[10][1] = ["x"]; json.dump(n, open(js, "w"))' "entry 10 is not [[kingdom"
refused "a bare string entry" 'n[11] = "x"; json.dump(n, open(js, "w"))' "entry 11 is not [[kingdom"
refused "invalid UTF-8" 'open(js, "wb").write(s.replace("Animalia", "Anim\udce9lia", 1).encode("utf-8", "surrogateescape"))' \
  "invalid JSON near byte"

# nulls read as empty names; escapes decoded (the good file's non-ASCII and quotes, as
# json.dump writes them: \u00e9, \"); the same CSV as json.load gives
$PY -c 'import json, sys; n = json.load(open(sys.argv[1])); n[3][0][2] = None; n[4][1] = None
n[5][1] = "\u00e9\U0001F600 \"q\" \\ /"; json.dump(n, open(sys.argv[1], "w"))' "$JS"
"$CLADE" predict --list-taxa --model "$M" > "$T/taxa.csv" 2> "$T/err" || fail "nulls refused: $(cat "$T/err")"
$PY - "$T/taxa.csv" "$JS" <<'PY' || fail "names differ from json.load's"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
names = json.load(open(sys.argv[2], encoding="utf-8"))
assert len(rows) == len(names)
for r, (sci, common) in zip(rows, names):
    want = [x or "" for x in sci]
    assert [r[c] for c in ("kingdom", "phylum", "class", "order", "family", "genus", "species_epithet")] == want
    assert r["species"] == want[5] + " " + want[6] and r["common_name"] == (common or "")
assert rows[3]["class"] == "" and rows[4]["common_name"] == "" and rows[5]["common_name"].startswith("\u00e9\U0001F600")
PY
echo "test_predict_label_set: every malformed label set refused, naming it; nulls and escapes read"
