#!/usr/bin/env bash
# Bad input is found before any encoding and named by file and line: manifests that are not
# UTF-8 or have no rows, text types a dataset cannot give, image errors (at the experiment's
# line, not clade's), declaration fields never read, ctx.emit of an empty evaluation; doubtful
# data (duplicate rows, classes short of the shots) warns with its count, `--strict` refuses.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
. "$CLADE_SRC/tests/lib/common.sh"
"$CLADE" synth --out "$T/s" 2>/dev/null
S="$T/s"
norun() { # $1 db: no run recorded, nothing encoded
  [ ! -s "$1" ] || [ "$("$CLADE" log --db "$1" | grep -c '^ *[0-9]')" = 0 ] || fail "a run was recorded: $("$CLADE" log --db "$1")"
}
exp() { # $1 file, $2 dataset root, $3 protocol
  printf 'model "m" { path = "%s/model" }\ndataset "d" { root = "%s" }\nexperiment "x" { models = { "m" }, datasets = { "d" },\n  protocol = %s }\n' "$S" "$2" "$3" > "$1"
}

# bytes that are not UTF-8 in a manifest: `clade check` and `clade run` name manifest and line
cp -r "$S/data/rare_sample" "$T/latin1"
sed '4s/wartyback/warty\xe9back/' "$S/data/rare_sample/metadata.csv" > "$T/latin1/metadata.csv"
exp "$T/latin1.lua" "$T/latin1" 'zero_shot { text_types = { "asis" } }'
if "$CLADE" check "$T/latin1.lua" > "$T/out" 2>&1; then fail "check passed a manifest that is not UTF-8"; fi
grep -q "latin1/metadata.csv:4: field 9 is not valid UTF-8 (byte 0xe9" "$T/out" || fail "check's UTF-8 message: $(cat "$T/out")"
if "$CLADE" run "$T/latin1.lua" --db "$T/u.db" 2> "$T/err"; then fail "run accepted a manifest that is not UTF-8"; fi
grep -q "latin1.lua:2: dataset 'd': .*latin1/metadata.csv:4: field .* is not valid UTF-8" "$T/err" || fail "run's UTF-8 message: $(cat "$T/err")"
norun "$T/u.db"

# a manifest with a header and no rows stores nothing (no NaN, n=0 row)
mkdir -p "$T/empty" && printf 'filepath,class\n' > "$T/empty/metadata.csv"
exp "$T/empty.lua" "$T/empty" 'zero_shot { text_types = { "asis" } }'
if "$CLADE" run "$T/empty.lua" --db "$T/e.db" 2> "$T/err"; then fail "a header-only manifest ran"; fi
grep -q "empty/metadata.csv: no images: the manifest has a header but no rows" "$T/err" || fail "header-only message: $(cat "$T/err")"
norun "$T/e.db"

# a text type that needs taxonomy, on a dataset without it: an error at the experiment's
# line before any encoding (plankton_sample has no taxonomy columns)
exp "$T/common.lua" "$S/data/plankton_sample" 'zero_shot { text_types = { "asis", "common" } }'
if "$CLADE" run "$T/common.lua" --db "$T/c.db" 2> "$T/err"; then fail "common on a dataset without taxonomy ran"; fi
grep -q "common.lua:3: experiment 'x', zero_shot on dataset 'd': dataset 'd' has no taxonomy columns, so text type 'common' cannot be used" "$T/err" ||
  fail "taxonomy message: $(cat "$T/err")"
grep -q "encod\|images/s" "$T/err" && fail "encoded before the taxonomy error: $(cat "$T/err")"
norun "$T/c.db"
if "$CLADE" check "$T/common.lua" > /dev/null 2> "$T/err"; then fail "check passed common without taxonomy"; fi
grep -q "text type 'common' cannot be used" "$T/err" || fail "check's taxonomy message: $(cat "$T/err")"

# a file's own protocol declares validate(opts, data) as the built-in ones do: it runs on every
# dataset of the plan before any encoding, its error stops the run before it is recorded,
# naming the experiment's line and the validate's own; it gets copies of classes and columns
cat > "$T/own.lua" <<LUA
model "m" { path = "$S/model" }
dataset "d" { root = "$S/data/bioscan_sample" }
local counted = protocol "counted" {
  fields = { column = "string", min_rows = "number" },
  validate = function(opts, data)
    local col = data.column(opts.column)
    col[1] = "changed"
    data.classes[1].label = "changed"
    if #col ~= data.n_rows then error("column has " .. #col .. " rows") end
    if data.n_rows < opts.min_rows then error(data.dataset .. " has " .. data.n_rows .. " rows, fewer than " .. opts.min_rows) end
  end,
  run = function(ctx, opts)
    local col = ctx.column(opts.column)
    assert(col[1] ~= "changed" and ctx.classes[1].label ~= "changed", "validate changed clade's tables")
    ctx.emit { results = { { metric = "rows", value = #col } } }
  end,
}
experiment "x" { models = { "m" }, datasets = { "d" }, protocol = counted { column = "genus", min_rows = 100 } }
LUA
if "$CLADE" run "$T/own.lua" --db "$T/o.db" 2> "$T/err"; then fail "a failing validate let the run go"; fi
grep -q "own.lua:18: experiment 'x', counted on dataset 'd': .*own.lua:10: d has 72 rows, fewer than 100" "$T/err" ||
  fail "validate message: $(cat "$T/err")"
grep -q "encod\|images/s" "$T/err" && fail "encoded before the validate error: $(cat "$T/err")"
norun "$T/o.db"
sed -i 's/column = "genus", min_rows = 100/column = "sex", min_rows = 1/' "$T/own.lua"
if "$CLADE" run "$T/own.lua" --db "$T/o.db" 2> "$T/err"; then fail "validate's missing column let the run go"; fi
grep -q "own.lua:18: experiment 'x', counted on dataset 'd': dataset 'd' (.*) has no column 'sex'" "$T/err" ||
  fail "validate's column message: $(cat "$T/err")"
norun "$T/o.db"
sed -i 's/column = "sex", min_rows = 1/column = "genus", min_rows = 1/' "$T/own.lua"
"$CLADE" run "$T/own.lua" --db "$T/o.db" 2> "$T/err" || fail "a passing validate stopped the run: $(cat "$T/err")"
"$CLADE" results --db "$T/o.db" --format csv | grep -q ',x,m,d,counted,,0,all,rows,72,' || fail "counted's result: $("$CLADE" results --db "$T/o.db" --format csv)"

# an image error names the experiment file and line, not clade's runner
cp -r "$S/data/rare_sample" "$T/broken" && rm "$T/broken/images/0005.jpg"
exp "$T/img.lua" "$T/broken" 'few_shot { shots = { 1 }, trials = 1 }'
if "$CLADE" run "$T/img.lua" --db "$T/i.db" 2> "$T/err"; then fail "a missing image ran"; fi
grep -q "img.lua:3: experiment 'x' (few_shot, m on d): .*0005.jpg" "$T/err" || fail "image error location: $(cat "$T/err")"
grep -q "runner.lua" "$T/err" && fail "image error names runner.lua: $(cat "$T/err")"

# duplicate rows and classes short of the shots asked: a warning with the count; --strict refuses
cp -r "$S/data/rare_sample" "$T/dup"
sed -n '2,3p' "$S/data/rare_sample/metadata.csv" >> "$T/dup/metadata.csv"
exp "$T/dup.lua" "$T/dup" 'few_shot { shots = { 1, 7 }, trials = 1 }'
"$CLADE" run "$T/dup.lua" --db "$T/d.db" 2> "$T/err" || fail "warnings stopped the run: $(cat "$T/err")"
grep -q "warning: .*dup/metadata.csv: 2 duplicate rows (line 50 repeats line 2, " "$T/err" || fail "duplicate warning: $(cat "$T/err")"
grep -q "warning: dataset 'd': [0-9]* of 8 classes have fewer than 7 images for few_shot's 7 shots ('.*' has 6)" "$T/err" ||
  fail "short class warning: $(cat "$T/err")"
if "$CLADE" run "$T/dup.lua" --db "$T/d2.db" --strict 2> "$T/err"; then fail "--strict accepted duplicates"; fi
grep -q "2 duplicate rows .*(an error under --strict)" "$T/err" || fail "--strict message: $(cat "$T/err")"
norun "$T/d2.db"

# declaration fields that would never be read are errors naming file and line; declared
# counts are checked against the manifest
for body in 'model "m" { path = "x", description = "y" }' 'model "m" { path = "x", baseline = "y" }' \
            'dataset "d" { root = "x", text_types = { "asis" } }' 'text_type "t" { text = tostring, description = "y" }' \
            'protocol "p" { run = print, check = print }' 'few_shot { sampler = "bioclip", seed = 3 }' \
            'linear_probe { sampler = "random" }' 'model "m" { features = "f.safetensors", gelu = "quick" }' \
            'experiment "x" { models = { "m" }, datasets = { "d" }, protocol = few_shot {}, protocols = { few_shot {} } }'; do
  printf 'local x = 1\n%s\n' "$body" > "$T/field.lua"
  if "$CLADE" check "$T/field.lua" > /dev/null 2> "$T/err"; then fail "accepted: $body"; fi
  grep -q "field.lua:2:.*\(unknown field\|seed is used by sampler = \"fresh\" only\|sampler must be\|would never be read\|not both\)" "$T/err" || fail "unread field message for '$body': $(cat "$T/err")"
done
printf 'model "m" { path = "%s/model" }\ndataset "d" { root = "%s/data/rare_sample", images = 50 }\nexperiment "x" { models = { "m" }, datasets = { "d" }, protocol = few_shot { shots = { 1 } } }\n' "$S" "$S" > "$T/count.lua"
if "$CLADE" run "$T/count.lua" --db "$T/n.db" 2> "$T/err"; then fail "a wrong declared image count ran"; fi
grep -q "count.lua:2: dataset 'd' declares images = 50, but .*metadata.csv lists 48" "$T/err" || fail "count message: $(cat "$T/err")"

# ctx.emit: an unknown field, an empty evaluation or a NaN is an error at the protocol's line
for ev in 'ctx.emit { result = {} }' 'ctx.emit { results = {} }' 'ctx.emit { results = { { metric = "top1", value = 0 / 0 } } }'; do
  cat > "$T/emit.lua" <<LUA
model "m" { path = "$S/model" }
dataset "d" { root = "$S/data/rare_sample" }
local p = protocol "p" { run = function(ctx)
  $ev
end }
experiment "x" { models = { "m" }, datasets = { "d" }, protocol = p {} }
LUA
  if "$CLADE" run "$T/emit.lua" --db "$T/m.db" 2> "$T/err"; then fail "stored: $ev"; fi
  grep -q "emit.lua:4: p: ctx.emit: " "$T/err" || fail "emit message for '$ev': $(cat "$T/err")"
done
[ "$("$CLADE" results --db "$T/m.db" --format csv | grep -c ',x,m,d,p,')" = 0 ] || fail "a bad emit stored a row"
echo "test_input_checks: ok"
