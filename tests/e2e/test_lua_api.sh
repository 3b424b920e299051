#!/usr/bin/env bash
# docs/lua-api.md is the whole API of experiment files: every ```lua block in it runs (a block
# declaring an experiment with `clade run` on the sample suite, the others with `clade
# check`), and the globals an experiment file sees are exactly the page's list.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
. "$CLADE_SRC/tests/lib/common.sh"
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" 2>/dev/null
DOC="$CLADE_SRC/docs/lua-api.md"
awk -v dir="$T" '
  /^```lua$/ { n++; f = sprintf("%s/block%02d.lua", dir, n); inblock = 1; next }
  /^```$/ && inblock { inblock = 0; close(f); next }
  inblock { print > f }' "$DOC"
n=0
for f in "$T"/block*.lua; do
  n=$((n + 1))
  if grep -q '^experiment "' "$f"; then
    "$CLADE" run "$f" --db "$T/r.db" 2> "$T/err" || fail "docs/lua-api.md example $(basename "$f"): $(cat "$T/err")"
    grep -q "evaluations stored" "$T/err" || fail "$(basename "$f") stored nothing: $(cat "$T/err")"
  else
    "$CLADE" check "$f" > /dev/null 2> "$T/err" || fail "docs/lua-api.md example $(basename "$f"): $(cat "$T/err")"
  fi
done
[ $n -ge 15 ] || fail "only $n examples found in docs/lua-api.md"
# the first example prints the globals; the page lists them in its ```text block
"$CLADE" check "$T/block01.lua" 2> "$T/globals" > /dev/null
want=$(awk '/^```text$/ { getline; print; exit }' "$DOC")
[ "$(cat "$T/globals")" = "$want" ] || fail "globals differ from docs/lua-api.md:
have: $(cat "$T/globals")
want: $want"
echo "test_lua_api: ok ($n examples)"
