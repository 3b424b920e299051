#!/usr/bin/env bash
# Experiment files are untrusted: they see the public API only (no clade.core, no runner, no
# file reading), cannot replace clade's machinery, and are limited in memory (--lua-memory)
# and Lua instructions (the declarations' budget, --lua-budget per evaluation); a first
# Ctrl-C stops a runaway protocol and keeps an evaluation in flight that finishes.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
. "$CLADE_SRC/tests/lib/common.sh"
"$CLADE" synth --out "$T/s" 2>/dev/null
S="$T/s"
HEAD="model \"m\" { path = \"$S/model\" }
dataset \"d\" { root = \"$S/data/rare_sample\" }"

# no path-reading function, no internal module, no way back to the trusted globals
for body in 'clade.core.read_lines("/etc/passwd")' 'require "clade.runner"' 'require "clade.core"' \
            'require "clade.protocols"' 'require "clade.protocols.few_shot"' 'require "clade.templates"' 'require "clade.text_types"' 'load("return require")()("clade.core")' \
            'require "_G"' 'require "package"' 'require "string"' 'getmetatable("").__index.format("x")' \
            'clade.registry.experiments.x = {}' 'collectgarbage("stop")' \
            'getmetatable(clade.tensor.new(1, 1)).__index.normalize = nil'; do
  printf '%s\n' "$body" > "$T/escape.lua"
  if "$CLADE" check "$T/escape.lua" > /dev/null 2> "$T/err"; then fail "sandbox allowed: $body"; fi
  grep -q "escape.lua:1:" "$T/err" || fail "no file:line for '$body': $(cat "$T/err")"
done
grep -q "module 'clade.core' is internal to clade" <(printf 'require "clade.core"\n' > "$T/escape.lua"; "$CLADE" check "$T/escape.lua" 2>&1) ||
  fail "internal module message"
# the public modules: copies, so replacing their functions reaches no built-in
cat > "$T/public.lua" <<LUA
$HEAD
local common = require "clade.protocols.common"
assert(type(common.simpleshot) == "function" and #require("clade.suites").all == 10)
common.simpleshot = function() error("replaced") end
experiment "x" { models = { "m" }, datasets = { "d" }, protocol = few_shot { shots = { 1 }, trials = 1 } }
LUA
"$CLADE" run "$T/public.lua" --db "$T/p.db" --quiet 2> "$T/err" || fail "a public module's copy reached a built-in: $(cat "$T/err")"
# what clade itself uses stays clade's: replacing string.format, table.insert, the tensor
# module or a built-in's name in the file changes nothing of the run
cat > "$T/replace.lua" <<LUA
$HEAD
string.format = function() error("replaced") end
table.insert = function() error("replaced") end
clade.tensor.new = function() error("replaced") end
clade.core.pyrandom = nil
assert(not pcall(protocol "few_shot", { run = function() end }), "a built-in protocol was redefined")
experiment "x" { models = { "m" }, datasets = { "d" },
  protocols = { few_shot { shots = { 1 }, trials = 1 }, linear_probe { shots = { 1 }, trials = 1 } } }
LUA
"$CLADE" run "$T/replace.lua" --db "$T/r.db" --quiet 2> "$T/err" || fail "replacing the file's own copies broke the run: $(cat "$T/err")"
[ "$("$CLADE" results --db "$T/r.db" --format csv | grep -c ',top1,')" -ge 2 ] || fail "replace run stored no results"

# the declarations' budget: an endless loop at the top level stops within seconds, naming
# the file; pcall and coroutines cannot outlast it
for body in 'while true do end' 'while true do pcall(function() while true do end end) end' \
            'local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end'; do
  printf 'local x = 1\n%s\n' "$body" > "$T/loop.lua"
  start=$(date +%s)
  if timeout 120 "$CLADE" run "$T/loop.lua" --db "$T/l.db" 2> "$T/err"; then fail "endless loop accepted: $body"; fi
  grep -q "loop.lua:2: the declarations of .*loop.lua ran past their budget of 200000000 Lua instructions" "$T/err" ||
    fail "declaration budget message for '$body': $(cat "$T/err")"
  [ $(($(date +%s) - start)) -lt 60 ] || fail "the declaration budget took $(($(date +%s) - start)) s"
done
[ ! -s "$T/l.db" ] || [ "$("$CLADE" log --db "$T/l.db" | grep -c '^ *[0-9]')" = 0 ] || fail "a file that never loaded recorded a run"

# the memory cap: a table growing forever is stopped at --lua-memory, naming the file
printf 'local t = {}\nwhile true do t[#t + 1] = ("x"):rep(1000) .. #t end\n' > "$T/grow.lua"
if "$CLADE" run "$T/grow.lua" --db "$T/g.db" --lua-memory 32M 2> "$T/err"; then fail "unbounded growth accepted"; fi
grep -q "grow.lua: the Lua memory limit of 33554432 bytes was reached" "$T/err" || fail "memory message: $(cat "$T/err")"
for bad in 12Q 0 -5 1.5G 99999999999999999G ""; do
  if "$CLADE" run "$T/grow.lua" --db "$T/g.db" --lua-memory "$bad" 2> "$T/err"; then fail "--lua-memory '$bad' accepted"; fi
  grep -q "lua-memory is a size in bytes or with K, M or G" "$T/err" || fail "--lua-memory '$bad': $(cat "$T/err")"
done
if "$CLADE" run "$T/grow.lua" --db "$T/g.db" --lua-budget 1e9 2> "$T/err"; then fail "--lua-budget 1e9 accepted"; fi
grep -q "lua-budget is a positive number of Lua instructions" "$T/err" || fail "--lua-budget message: $(cat "$T/err")"

# the evaluation budget: a runaway protocol fails with file, line and the flag; the
# evaluation before it stays stored; built-ins fit a small budget on the sample
cat > "$T/runaway.lua" <<LUA
$HEAD
local spin = protocol "spin" { run = function(ctx, opts)
  print("SPINNING")
  if opts.emit_first then
    for i = 1, 100000000 do end
    ctx.emit { results = { { metric = "top1", value = 0.5 } } }
    print("EMITTED")
  end
  while true do end
end, fields = { emit_first = "boolean" } }
experiment "a" { models = { "m" }, datasets = { "d" }, protocol = few_shot { shots = { 1 }, trials = 2 } }
experiment "b" { models = { "m" }, datasets = { "d" }, protocol = spin { emit_first = EMIT } }
LUA
sed 's/EMIT/false/' "$T/runaway.lua" > "$T/spin.lua"
if timeout 120 "$CLADE" run "$T/spin.lua" --db "$T/b.db" --lua-budget 3000000 2> "$T/err"; then fail "runaway protocol accepted"; fi
grep -q "spin.lua:10: experiment 'b' (spin, m on d) ran past its budget of 3000000 Lua instructions (clade run --lua-budget N)" "$T/err" ||
  fail "evaluation budget message: $(cat "$T/err")"
"$CLADE" results --db "$T/b.db" --format csv | grep -q ',a,m,d,few_shot,' || fail "the evaluation before the runaway was lost"

# Ctrl-C: the first press stops a runaway protocol (exit 130, run interrupted)
sigint_at() { # $1 file, $2 db, $3 marker: start a run, one SIGINT once the marker is on stderr
  rm -f "$T/err"
  "$CLADE" run "$1" --db "$2" 2> "$T/err" &
  local pid=$! i=0
  while ! grep -q "$3" "$T/err" 2>/dev/null; do
    sleep 0.05; i=$((i + 1)); [ $i -lt 1200 ] || { kill -9 $pid; fail "never saw $3: $(cat "$T/err")"; }
  done
  cp "$T/err" "$T/err_at_signal"
  kill -INT $pid
  set +e; timeout 60 tail --pid=$pid -f /dev/null; wait $pid; rc=$?; set -e
}
sigint_at "$T/spin.lua" "$T/c.db" SPINNING
[ $rc = 130 ] || fail "runaway protocol after one Ctrl-C: exit $rc, want 130: $(cat "$T/err")"
grep -q "interrupted: experiment 'b' (spin, m on d) ran 200000000 more Lua instructions after Ctrl-C" "$T/err" ||
  fail "runaway Ctrl-C message: $(cat "$T/err")"
"$CLADE" log --db "$T/c.db" | grep -q interrupted || fail "run not marked interrupted: $("$CLADE" log --db "$T/c.db")"
# ... and keeps the evaluation in flight: it finishes, is stored, then the run stops
sed 's/EMIT/true/' "$T/runaway.lua" > "$T/emit.lua"
sigint_at "$T/emit.lua" "$T/e.db" SPINNING
[ $rc = 130 ] || fail "Ctrl-C during an evaluation: exit $rc, want 130: $(cat "$T/err")"
"$CLADE" results --db "$T/e.db" --format csv | grep -q ',b,m,d,spin,' || fail "the evaluation in flight was dropped: $(cat "$T/err")"
grep -q EMITTED "$T/err_at_signal" && echo "note: the signal came after the evaluation was stored"
echo "test_sandbox: ok"
