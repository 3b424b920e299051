#!/usr/bin/env bash
# clade tokenize: ids on stdout one line per text, --file semantics, and one-line errors.
set -u
if [ -z "${CLADE:-}" ] || [ ! -x "$CLADE" ]; then
  echo "skip: CLADE (the clade binary) is not set" >&2
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name, expected, actual
  if [ "$2" != "$3" ]; then
    printf 'FAIL %s\n  expected: %s\n  got:      %s\n' "$1" "$2" "$3" >&2
    fail=1
  fi
}

sparrow="49406 320 1125 539 1212 22888 269 49407"
out=$("$CLADE" tokenize "a photo of house sparrow.")
check "one text" "$sparrow" "$out"

out=$("$CLADE" tokenize "a photo of house sparrow." "" "brown bear")
check "three texts" "$sparrow
49406 49407
49406 2866 4298 49407" "$out"

out=$("$CLADE" tokenize -- --file)
check "-- ends the options" "49406 2432 4512 49407" "$out"

# CRLF lines, an empty line in the middle, a final newline that adds nothing
printf 'a photo of house sparrow.\r\n\r\nbrown bear\n' >"$tmp/texts.txt"
out=$("$CLADE" tokenize --file "$tmp/texts.txt")
check "--file" "$sparrow
49406 49407
49406 2866 4298 49407" "$out"
out=$(printf 'brown bear' | "$CLADE" tokenize --file -)
check "--file - without a final newline" "49406 2866 4298 49407" "$out"

# 78 tokens: truncated to 77 with EOT last
long=$(printf 'a %.0s' $(seq 76))
out=$("$CLADE" tokenize "$long")
check "truncated length" "77" "$(echo "$out" | wc -w | tr -d ' ')"
check "truncated ends in EOT" "49407" "${out##* }"

# errors: non-zero exit, nothing on stdout, one "clade: " line on stderr naming the file
"$CLADE" tokenize --file "$tmp/missing.txt" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "missing file fails" "1" "$([ $rc -ne 0 ] && echo 1 || echo 0)"
check "missing file: no stdout" "" "$(cat "$tmp/out")"
check "missing file: one stderr line" "1" "$(wc -l <"$tmp/err" | tr -d ' ')"
grep -q "^clade: .*missing.txt" "$tmp/err" || { echo "FAIL stderr does not name the file: $(cat "$tmp/err")" >&2; fail=1; }

printf 'fine\ncaf\xc3\n' >"$tmp/bad.txt"
"$CLADE" tokenize --file "$tmp/bad.txt" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "bad UTF-8 fails" "1" "$([ $rc -ne 0 ] && echo 1 || echo 0)"
grep -q "^clade: .*bad.txt:2: invalid UTF-8" "$tmp/err" || { echo "FAIL bad UTF-8 message: $(cat "$tmp/err")" >&2; fail=1; }

"$CLADE" tokenize >"$tmp/out" 2>"$tmp/err"
check "no texts is a usage error" "2" "$?"
check "usage: no stdout" "" "$(cat "$tmp/out")"
"$CLADE" tokenize --bogus x >"$tmp/out" 2>"$tmp/err"
check "unknown option" "2" "$?"
grep -q "^clade: .*--bogus" "$tmp/err" || { echo "FAIL unknown option message: $(cat "$tmp/err")" >&2; fail=1; }
"$CLADE" tokenize --file >"$tmp/out" 2>"$tmp/err"
check "--file without a name" "2" "$?"

CLADE_HOME="$tmp" "$CLADE" tokenize "x" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "missing vocab fails" "1" "$([ $rc -ne 0 ] && echo 1 || echo 0)"
grep -q "^clade: .*bpe_simple_vocab_16e6.txt.gz" "$tmp/err" || { echo "FAIL missing vocab message: $(cat "$tmp/err")" >&2; fail=1; }

[ $fail -eq 0 ] && echo "test_tokenize_cli: ok"
exit $fail
