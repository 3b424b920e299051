#!/usr/bin/env bash
# clade preprocess: broken, missing and foreign image files fail with one line naming the
# file, a non-zero exit, and no output file (not even a partial one); good input works.
set -u
if [ -z "${CLADE:-}" ] || [ ! -x "$CLADE" ]; then
  echo "skip: CLADE (the clade binary) is not set" >&2
  exit 77
fi
img="${CLADE_FIXTURES:-}/images"
if [ ! -f "$img/img3_raccoon_640x480.jpg" ]; then
  echo "skip: fixtures not found under CLADE_FIXTURES=${CLADE_FIXTURES:-}" >&2
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
nfail=0
bad() { printf 'FAIL %s\n' "$*" >&2; fail=1; nfail=$((nfail + 1)); }

# expect_error NAME PATTERN FILE...: exit non-zero, exactly one stderr line that starts with
# "clade: " and matches PATTERN, and no output file or temporary left behind.
expect_error() {
  local name=$1 pat=$2
  shift 2
  rm -f "$tmp/out.safetensors"
  "$CLADE" preprocess --out "$tmp/out.safetensors" "$@" 2>"$tmp/err" >"$tmp/stdout"
  local rc=$? before=$nfail
  local err
  err=$(cat "$tmp/err")
  [ "$rc" -ne 0 ] || bad "$name: exit 0"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || bad "$name: not one line on stderr: $err"
  case "$err" in "clade: "*) ;; *) bad "$name: no 'clade: ' prefix: $err" ;; esac
  echo "$err" | grep -- >/dev/null "$pat" || bad "$name: message does not match '$pat': $err"
  [ ! -s "$tmp/stdout" ] || bad "$name: wrote to stdout"
  [ ! -e "$tmp/out.safetensors" ] || bad "$name: left an output file"
  ls "$tmp" | grep '\.tmp\.' >/dev/null && bad "$name: left a temporary file"
  [ "$nfail" -ne "$before" ] || echo "ok $name: $err"
}

head -c 40000 "$img/img3_raccoon_640x480.jpg" >"$tmp/trunc.jpg"
expect_error "truncated JPEG" "$tmp/trunc.jpg: truncated JPEG" "$tmp/trunc.jpg"

head -c 3000 "$img/img1_cat_97x131_progressive.jpg" >"$tmp/trunc_prog.jpg"
expect_error "truncated progressive JPEG" "$tmp/trunc_prog.jpg: truncated JPEG" "$tmp/trunc_prog.jpg"

head -c 20000 "$img/png2_rgba_256x320.png" >"$tmp/trunc.png"
expect_error "truncated PNG" "$tmp/trunc.png: .*PNG" "$tmp/trunc.png"

# Deterministic noise (a fixed LCG), so a failure can be replayed.
noise() { LC_ALL=C awk -v n="$1" -v s="$2" 'BEGIN { for (i = 0; i < n; i++) { s = (s * 69069 + 1) % 4294967296; printf "%c", 1 + int(s / 65536) % 255 } }'; }
{ printf '\x12'; noise 4095 7; } >"$tmp/noise.jpg"
expect_error "random bytes" "$tmp/noise.jpg: not a JPEG or PNG" "$tmp/noise.jpg"

{ printf '\xff\xd8\xff'; noise 2000 11; } >"$tmp/noise2.jpg"
expect_error "JPEG magic then noise" "$tmp/noise2.jpg: corrupt JPEG" "$tmp/noise2.jpg"

: >"$tmp/empty.png"
expect_error "empty file" "$tmp/empty.png: empty" "$tmp/empty.png"

printf 'GIF89a\x01\x00\x01\x00' >"$tmp/a.gif"
expect_error "GIF" "$tmp/a.gif: GIF images are not supported" "$tmp/a.gif"

expect_error "missing file" "$tmp/nope.jpg: No such file" "$tmp/nope.jpg"
expect_error "a directory" "$tmp: not a regular file" "$tmp"

# One bad image among good ones: still nothing written, the bad one named.
expect_error "one bad of three" "$tmp/trunc.jpg: truncated JPEG" \
  "$img/img0_cat_224x224.jpg" "$tmp/trunc.jpg" "$img/png1_palette_350x250.png"

# An existing output survives a failed run untouched.
echo keep >"$tmp/keep.safetensors"
"$CLADE" preprocess --out "$tmp/keep.safetensors" "$tmp/trunc.jpg" 2>/dev/null && bad "overwrite: exit 0"
[ "$(cat "$tmp/keep.safetensors")" = keep ] || bad "a failed run changed the existing output"

# Unwritable destination: the output path is named.
"$CLADE" preprocess --out "$tmp/no/such/dir/x.safetensors" "$img/img0_cat_224x224.jpg" 2>"$tmp/err"
[ $? -ne 0 ] || bad "unwritable output: exit 0"
grep -q "$tmp/no/such/dir/x.safetensors" "$tmp/err" || bad "unwritable output not named: $(cat "$tmp/err")"

# Usage errors exit 2.
"$CLADE" preprocess "$img/img0_cat_224x224.jpg" 2>/dev/null
[ $? -eq 2 ] || bad "missing --out: exit not 2"
"$CLADE" preprocess --out "$tmp/x.safetensors" 2>/dev/null
[ $? -eq 2 ] || bad "no images: exit not 2"
"$CLADE" preprocess --out "$tmp/x.safetensors" --mean 1,2 "$img/img0_cat_224x224.jpg" 2>/dev/null
[ $? -eq 2 ] || bad "bad --mean: exit not 2"

# Good input: the file holds pixels F32 [2,3,224,224] (8-byte length, header, 2*3*224*224*4 bytes).
"$CLADE" preprocess --out "$tmp/good.safetensors" "$img/img5_human_400x300_cmyk.jpg" \
  "$img/png0_gray_300x260.png" 2>"$tmp/err" || bad "good input failed: $(cat "$tmp/err")"
if [ -f "$tmp/good.safetensors" ]; then
  size=$(stat -c %s "$tmp/good.safetensors")
  hlen=$(od -An -t u8 -N 8 "$tmp/good.safetensors" | tr -d ' ')
  [ "$size" -eq $((8 + hlen + 2 * 3 * 224 * 224 * 4)) ] || bad "good output has $size bytes"
  head -c $((8 + hlen)) "$tmp/good.safetensors" | grep '"pixels":{"dtype":"F32","shape":\[2,3,224,224\]' >/dev/null ||
    bad "good output header: $(head -c $((8 + hlen)) "$tmp/good.safetensors" | tail -c +9)"
fi

exit $fail
