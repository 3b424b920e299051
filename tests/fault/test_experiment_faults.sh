#!/usr/bin/env bash
# Bad experiment input: one clear line naming file and line, non-zero exit, and no loss of
# results already stored.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$CLADE" synth --out "$T/s" 2>/dev/null
S="$T/s"

# a Lua syntax error names file:line, records no run
printf 'model "m" { path = "%s/model" }\nexperiment "x" {\n  models = { "m" ,\n' "$S" > "$T/syntax.lua"
if "$CLADE" run "$T/syntax.lua" --db "$T/r.db" 2> "$T/err"; then fail "syntax error accepted"; fi
grep -q "syntax.lua:[0-9]" "$T/err" || fail "syntax error lacks file:line: $(cat "$T/err")"

# a precision or backend this machine cannot run is refused before a run is recorded
printf 'model "m" { path = "%s/model" }\n' "$S" > "$T/prec.lua"
if "$CLADE" run "$T/prec.lua" --db "$T/p.db" --precision fp8 2> "$T/err"; then fail "precision fp8 accepted"; fi
grep -q 'precision "fp8": choose fp32, tf32, bf16 or fp16' "$T/err" || fail "bad precision message: $(cat "$T/err")"
if [ "$("$CLADE" version 2>/dev/null | grep -c 'GPU 0')" = 0 ]; then
  if "$CLADE" run "$T/prec.lua" --db "$T/p.db" --precision fp16 2> "$T/err"; then fail "fp16 on the CPU accepted"; fi
  grep -q "precision fp16: the cpu backend computes in fp32" "$T/err" || fail "fp16 message: $(cat "$T/err")"
  if "$CLADE" run "$T/prec.lua" --db "$T/p.db" --backend cuda 2> "$T/err"; then fail "cuda without a GPU accepted"; fi
  grep -q "backend cuda: " "$T/err" || fail "cuda message: $(cat "$T/err")"
fi
[ ! -s "$T/p.db" ] || [ "$("$CLADE" log --db "$T/p.db" | grep -c '^ *[0-9]')" = 0 ] || fail "a refused run was recorded"

# one precision per run, the one recorded: a model declaring another is an error naming it;
# a bf16 run (CPUs with AVX512_BF16) encodes into its own cache entries, not the fp32 ones
printf 'model "m" { path = "%s/model", precision = "bf16" }\ndataset "d" { root = "%s/data/rare_sample" }\nexperiment "x" { models = {"m"}, datasets = {"d"}, protocol = zero_shot { text_types = {"common"} } }\n' "$S" "$S" > "$T/mprec.lua"
if "$CLADE" run "$T/mprec.lua" --db "$T/m.db" 2> "$T/err"; then fail "a model precision unlike the run's accepted"; fi
grep -q "model 'm': precision = \"bf16\", but this run computes in fp32" "$T/err" || fail "model precision message: $(cat "$T/err")"
if "$CLADE" version | grep -q "precisions fp32, bf16"; then
  sed 's/, precision = "bf16"//' "$T/mprec.lua" > "$T/both.lua"
  "$CLADE" run "$T/both.lua" --db "$T/b.db" 2> "$T/err" || fail "fp32 run: $(cat "$T/err")"
  "$CLADE" run "$T/both.lua" --db "$T/b.db" --precision bf16 2> "$T/err" || fail "bf16 run: $(cat "$T/err")"
  if grep -q "came from the embedding cache" "$T/err"; then fail "the bf16 run used fp32 embeddings"; fi
  "$CLADE" run "$T/mprec.lua" --db "$T/b.db" --precision bf16 2> "$T/err" || fail "bf16 model, bf16 run: $(cat "$T/err")"
  grep -q "came from the embedding cache" "$T/err" || fail "the second bf16 run encoded again: $(cat "$T/err")"
  [ "$("$CLADE" log --db "$T/b.db" --format json | grep -o '"precision":"[a-z0-9]*"' | tr -d '\n')" = \
    '"precision":"fp32""precision":"bf16""precision":"bf16"' ] || fail "precisions recorded: $("$CLADE" log --db "$T/b.db" --format json)"
else
  echo "bf16 runs skipped: this CPU lacks AVX512_BF16"
fi

# the opt-in draft decoding: a bad mode is refused before a run is recorded; a draft run
# records it, encodes into its own cache entries, and does not resume a full one
sed 's/, precision = "bf16"//' "$T/mprec.lua" > "$T/dec.lua"
if "$CLADE" run "$T/dec.lua" --db "$T/d.db" --decode fast 2> "$T/err"; then fail "--decode fast accepted"; fi
grep -q "run: --decode is full or draft, not 'fast'" "$T/err" || fail "bad decode message: $(cat "$T/err")"
[ ! -s "$T/d.db" ] || [ "$("$CLADE" log --db "$T/d.db" | grep -c '^ *[0-9]')" = 0 ] || fail "a refused run was recorded"
"$CLADE" run "$T/dec.lua" --db "$T/d.db" 2> "$T/err" || fail "full run: $(cat "$T/err")"
"$CLADE" run "$T/dec.lua" --db "$T/d.db" --decode draft 2> "$T/err" || fail "draft run: $(cat "$T/err")"
if grep -q "came from the embedding cache" "$T/err"; then fail "the draft run used full-decode image embeddings"; fi
"$CLADE" run "$T/dec.lua" --db "$T/d.db" --decode draft 2> "$T/err" || fail "second draft run: $(cat "$T/err")"
grep -q "came from the embedding cache" "$T/err" || fail "the second draft run encoded again: $(cat "$T/err")"
[ "$("$CLADE" log --db "$T/d.db" --format json | grep -o '"decode":"[a-z]*"' | tr -d '\n')" = \
  '"decode":"full""decode":"draft""decode":"draft"' ] || fail "decodings recorded: $("$CLADE" log --db "$T/d.db" --format json)"
[ "$("$CLADE" log --db "$T/d.db" | grep -c ' cpu/fp32/draft$')" = 2 ] || fail "clade log's draft runs: $("$CLADE" log --db "$T/d.db")"

# an unknown (misspelled) field is an error naming file, line and field
printf 'model "m" { path = "%s/model", gelu = "exact", confg = "x" }\n' "$S" > "$T/field.lua"
if "$CLADE" run "$T/field.lua" --db "$T/r.db" 2> "$T/err"; then fail "unknown field accepted"; fi
grep -q "field.lua:1:.*confg" "$T/err" || fail "unknown field message: $(cat "$T/err")"
printf 'dataset "d" { root = "%s/data/rare_sample" }\nexperiment "x" { models = {"m"}, datasets = {"d"}, protocol = few_shot { shotz = {1} } }\n' "$S" > "$T/pfield.lua"
if "$CLADE" run "$T/pfield.lua" --db "$T/r.db" 2> "$T/err"; then fail "unknown protocol field accepted"; fi
grep -q "pfield.lua:2:.*shotz" "$T/err" || fail "protocol field message: $(cat "$T/err")"

# a missing image: the error names it; the evaluations finished before stay stored
cp -r "$S/data/rare_sample" "$T/broken"
cat > "$T/missing.lua" <<LUA
model "m" { path = "$S/model" }
dataset "good" { root = "$S/data/rare_sample" }
dataset "broken" { root = "$T/broken" }
experiment "first" { models = { "m" }, datasets = { "good" }, protocol = few_shot { shots = { 1 }, trials = 2 } }
experiment "second" { models = { "m" }, datasets = { "broken" }, protocol = few_shot { shots = { 1 }, trials = 2 } }
LUA
rm "$T/broken/images/0007.jpg"
if "$CLADE" run "$T/missing.lua" --db "$T/m.db" 2> "$T/err"; then fail "missing image accepted"; fi
grep -q "0007.jpg" "$T/err" || fail "missing image not named: $(cat "$T/err")"
"$CLADE" results --db "$T/m.db" --format csv | grep ',first,m,good,few_shot,,1,all,top1,' >/dev/null || fail "finished evaluation lost"
"$CLADE" log --db "$T/m.db" | grep "failed" >/dev/null || fail "run not marked failed"
# clade check reports it without running a model
if "$CLADE" check "$T/missing.lua" > "$T/out" 2>/dev/null; then fail "check passed with a missing image"; fi
grep -q $'broken\t48 images\t47 found\t1 missing\t0 unreadable' "$T/out" || fail "check output: $(cat "$T/out")"
# a corrupt image is unreadable
head -c 200 "$S/data/rare_sample/images/0001.jpg" > "$T/broken/images/0007.jpg"
"$CLADE" check "$T/missing.lua" > "$T/out" 2>/dev/null || true
grep -q $'broken\t48 images\t47 found\t0 missing\t1 unreadable' "$T/out" || fail "check corrupt: $(cat "$T/out")"

# a bad manifest row is reported with its line number
printf 'filepath,class\na.jpg,x\nb.jpg,y,extra\n' > "$T/broken/metadata.csv"
if "$CLADE" run "$T/missing.lua" --db "$T/m.db" 2> "$T/err"; then fail "bad manifest accepted"; fi
grep -q "metadata.csv:3" "$T/err" || fail "bad row not located: $(cat "$T/err")"

# the sandbox: no os, io, debug, bytecode, or require outside lua/ and the file's folder
for body in 'os.execute("true")' 'io.open("/etc/passwd")' 'debug.getinfo(1)' \
            'load(string.dump(function() end))()' 'require "os"' 'dofile("/etc/passwd")' \
            'require "../../etc/passwd"'; do
  printf '%s\n' "$body" > "$T/sandbox.lua"
  if "$CLADE" run "$T/sandbox.lua" --db "$T/s.db" 2> "$T/err"; then fail "sandbox allowed: $body"; fi
  grep -q "sandbox.lua" "$T/err" || fail "sandbox error lacks the file for '$body': $(cat "$T/err")"
done
# a module beside the experiment may be required
mkdir -p "$T/mods" && printf 'return { shots = { 1 } }\n' > "$T/mods/mine.lua"
printf 'local m = require "mine"\nassert(m.shots[1] == 1)\nmodel "m" { path = "%s/model" }\ndataset "d" { root = "%s/data/rare_sample" }\nexperiment "x" { models = {"m"}, datasets = {"d"}, protocol = few_shot { shots = m.shots, trials = 1 } }\n' "$S" "$S" > "$T/mods/x.lua"
"$CLADE" run "$T/mods/x.lua" --db "$T/s.db" --quiet 2> "$T/err" || fail "require from the experiment's folder: $(cat "$T/err")"
echo "test_experiment_faults: ok"
