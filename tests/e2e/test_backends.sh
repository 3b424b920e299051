#!/usr/bin/env bash
# The backend registry from the command line: `clade version` lists every registered backend
# (auto's order) with its device and precisions or why it cannot run here; --backend cpu
# never says "no GPU found" (auto does, when it passes over the GPU); an unknown backend is
# refused naming the registered ones; a backend that cannot run here is refused saying why.
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}"
F="$CLADE_FIXTURES"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$CLADE" version > "$T/v"
grep -q "^  backend cpu .*precisions fp32" "$T/v" || fail "version lists no cpu backend: $(cat "$T/v")"
grep -q "^  backend cuda " "$T/v" || fail "version lists no cuda backend: $(cat "$T/v")"
[ "$(grep -n '^  backend' "$T/v" | head -1 | grep -c cuda)" = 1 ] || fail "auto's order is not cuda, cpu"
IMG="$F/images/img0_cat_224x224.jpg"
"$CLADE" embed --model "$F/tiny-hub" --backend cpu --images "$IMG" --out "$T/a.st" 2> "$T/err" || fail "embed: $(cat "$T/err")"
if grep -q "no GPU found" "$T/err"; then fail "--backend cpu said: $(cat "$T/err")"; fi
printf 'filepath,class\nimg0_cat_224x224.jpg,cat\nimg2_raccoon_1024x768_gray.jpg,raccoon\n' > "$T/m.csv"
cat > "$T/x.lua" <<LUA
model "tiny" { path = "$F/tiny-hub" }
dataset "d" { root = "$F/images", manifest = "$T/m.csv" }
experiment "e" { models = { "tiny" }, datasets = { "d" }, protocol = zero_shot { text_types = { "asis" }, templates = "plain" } }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --backend cpu 2> "$T/err" >/dev/null || fail "run: $(cat "$T/err")"
if grep -q "no GPU found" "$T/err"; then fail "run --backend cpu said: $(cat "$T/err")"; fi
if grep -q "^  backend cuda  *no GPU found" "$T/v"; then # auto passes over the GPU once, and says so once
  "$CLADE" run "$T/x.lua" --db "$T/r2.db" 2> "$T/err" >/dev/null || fail "run: $(cat "$T/err")"
  [ "$(grep -c "no GPU found: running on the CPU" "$T/err")" = 1 ] || fail "auto: $(cat "$T/err")"
  if "$CLADE" embed --model "$F/tiny-hub" --backend cuda --images "$IMG" --out "$T/b.st" 2> "$T/err"; then
    fail "--backend cuda without a GPU accepted"
  fi
  grep -q "backend cuda: no GPU found" "$T/err" || fail "cuda message: $(cat "$T/err")"
fi
if "$CLADE" run "$T/x.lua" --db "$T/r3.db" --backend tpu 2> "$T/err"; then fail "--backend tpu accepted"; fi
grep -q "backend 'tpu': choose cuda, cpu or auto" "$T/err" || fail "unknown backend message: $(cat "$T/err")"
[ ! -e "$T/r3.db" ] || fail "a refused backend recorded a run"
echo "test_backends: ok"
