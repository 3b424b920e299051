#!/usr/bin/env bash
# ctx.column: any manifest column reaches a protocol by name, in manifest order; a missing
# column is an error naming the dataset and the column.
set -euo pipefail
: "${CLADE:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$CLADE" synth --out "$T/s" 2>/dev/null
mkdir -p "$T/d"
cp "$T/s/data/rare_sample/images/0001.jpg" "$T/s/data/rare_sample/images/0002.jpg" "$T/d/"
cat > "$T/d/metadata.csv" <<CSV
processid,image_file,dna_barcode,order,family,genus,species,split
P1,0001.jpg,ACGT,Diptera,Sciaridae,Corynoptera,Corynoptera sp1,seen_keys
P2,0002.jpg,"AC,GT",Hymenoptera,,,,test_seen
CSV
cat > "$T/cols.lua" <<LUA
model "m" { path = "$T/s/model" }
dataset "d" { root = "$T/d" }
local p = protocol "columns" {
  fields = { column = "string" },
  run = function(ctx, opts)
    ctx.column(opts.column or "split")
    local s, b = ctx.column("split"), ctx.column("dna_barcode")
    assert(#s == 2 and s[1] == "seen_keys" and s[2] == "test_seen", "split column")
    assert(b[2] == "AC,GT" and ctx.column("family")[2] == "", "dna_barcode / family column")
    assert(ctx.n_rows == 2 and #ctx.labels == 2, "rows")
    ctx.emit { results = { { metric = "rows", value = #s } } }
  end,
}
experiment "ok" { models = { "m" }, datasets = { "d" }, protocol = p {} }
LUA
"$CLADE" run "$T/cols.lua" --db "$T/r.db" 2> "$T/err" || fail "run: $(cat "$T/err")"
"$CLADE" results --db "$T/r.db" --format csv | grep -q ',rows,2,' || fail "result: $("$CLADE" results --db "$T/r.db" --format csv)"
"$CLADE" log --db "$T/r.db" --format json | grep -q '"images_encoded":0,' || fail "encoded though no protocol asked for features: $("$CLADE" log --db "$T/r.db" --format json)"

sed 's/p {}/p { column = "dna" }/' "$T/cols.lua" > "$T/bad.lua"
if "$CLADE" run "$T/bad.lua" --db "$T/b.db" 2> "$T/err"; then fail "a missing column accepted"; fi
grep -q "dataset 'd' ($T/d/metadata.csv) has no column 'dna' (columns: processid, image_file, dna_barcode" "$T/err" \
  || fail "missing column message: $(cat "$T/err")"
echo ok
