#!/usr/bin/env bash
# The suite's Rare Species names: taxonomic names equal the class keys of BioCLIP's own
# unseen_in_training.json (ranks joined by '-'), and every text type is well formed.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
REF="$CLADE_FIXTURES/../data/bioclip-suite/rare_species/unseen_in_training.json"
[ -f "$REF" ] || { echo "SKIP: $REF not found" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
X="$CLADE_SRC/experiments/bioclip_text_types.lua"
for tt in common scientific taxonomic scientific_common taxonomic_common asis; do
  "$CLADE" classes "$X" --dataset rare_species --text-type $tt > "$T/$tt" || fail "classes $tt"
  [ "$(wc -l < "$T/$tt")" = 400 ] || fail "$tt: $(wc -l < "$T/$tt") classes, want 400"
done
cut -f2 "$T/taxonomic" | tr ' ' '-' | sort > "$T/ours"
grep -o '"[A-Z][a-z]*-[^"]*": \[' "$REF" | sed 's/": \[$//; s/^"//' | sort > "$T/ref"
[ "$(wc -l < "$T/ref")" = 400 ] || fail "reference has $(wc -l < "$T/ref") keys"
diff "$T/ours" "$T/ref" > "$T/d" || { head "$T/d"; fail "taxonomic names differ from BioCLIP's"; }
# scientific = the last two ranks; *_common = base + " with common name " + common
head -1 "$T/scientific" | grep -x $'Cyclonaias tuberculata\tCyclonaias tuberculata' >/dev/null || fail "scientific: $(head -1 "$T/scientific")"
head -1 "$T/taxonomic_common" | grep -x $'Cyclonaias tuberculata\tAnimalia Mollusca Bivalvia Unionida Unionidae Cyclonaias tuberculata with common name purple wartyback' >/dev/null || fail "taxonomic_common: $(head -1 "$T/taxonomic_common")"
head -1 "$T/common" | grep -x $'Cyclonaias tuberculata\tpurple wartyback' >/dev/null || fail "common"
# a dataset without taxonomy cannot use a taxonomy text type: the error names the dataset
if "$CLADE" classes "$X" --dataset plankton --text-type taxonomic > /dev/null 2> "$T/err"; then fail "plankton taxonomic should fail"; fi
grep -q "plankton" "$T/err" || fail "error does not name the dataset: $(cat "$T/err")"
[ "$("$CLADE" classes "$X" --dataset plankton --text-type asis | wc -l)" = 86 ] || fail "plankton classes"
# the ten datasets are declared; without images, check reports every image missing
CLADE_DATA="$T/nodata" "$CLADE" check "$CLADE_SRC/experiments/bioclip_few_shot.lua" > "$T/check" 2>/dev/null && fail "check passed without images"
for want in "plankton	3440 images	0 found	3440 missing" "insects	4160 images" "insects2	4080 images" \
            "plantnet	1000 images" "fungi	1000 images" "plantvillage	1520 images" "medicinal_leaf	1000 images" \
            "plantdoc	1080 images" "rare_species	11983 images	0 found	11983 missing	0 unreadable	400 classes"; do
  grep -q "^$want" "$T/check" || fail "check lacks '$want': $(cat "$T/check")"
done
grep -q "^birds525	error	.*metadata.csv" "$T/check" || fail "birds525 without a manifest should name the missing file"
echo "test_suite_names: ok"
