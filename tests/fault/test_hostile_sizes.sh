#!/usr/bin/env bash
# Sizes from untrusted input (issue 18, items 1 and 2): an experiment file asking clade.tensor
# for a shape whose byte count wraps, and a precomputed-features file whose header does the
# same, each end `clade run` with one clear line naming what is wrong, and no crash.
set -euo pipefail
: "${CLADE:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"

# runs FILE, which must fail (not crash: exit 1) with a message matching PATTERN
refused() {
  local file=$1 pattern=$2 rc=0
  "$CLADE" run "$file" --db "$T/r.db" 2> err || rc=$?
  [ "$rc" = 1 ] || fail "$file: exit $rc, expected 1: $(cat err)"
  grep -q -- "$pattern" err || fail "$file: message: $(cat err)"
}

# ---- 1. clade.tensor shapes from an experiment file ----
printf 'local t = clade.tensor.new(2^62, 4)\nt:set(1, 1, 1)\n' > wrap62.lua
refused wrap62.lua 'wrap62.lua:1: tensor: shape \[4611686018427387904,4\] is too large'
printf 'local T = clade.tensor\n\nlocal t = T.new(2^32, 2^32)\nprint(t:get(2^31, 2^31))\n' > wrap32.lua
refused wrap32.lua 'wrap32.lua:3: tensor: shape \[4294967296,4294967296\] is too large'
printf 'print(#clade.tensor.new(2, 3):topk(-1))\n' > topk.lua
refused topk.lua 'topk.lua:1: tensor:topk: k = -1 is negative'

# ---- 2. a precomputed-features safetensors whose header lies ----
# st FILE HEADER [DATA_BYTES]: an 8-byte little-endian header length, the header, zeros
st() {
  local n=${#2}
  printf "$(printf '\\x%02x' $((n & 255)) $((n >> 8 & 255)) 0 0 0 0 0 0)" > "$1"
  printf '%s' "$2" >> "$1"
  head -c "${3:-0}" /dev/zero >> "$1"
}
mkdir data
{ echo "filepath,class"; for i in 1 2 3 4; do echo "img$i.jpg,Genus$((i % 2)) species"; done; } > data/metadata.csv
feats_exp() {
  cat > "$1" <<LUA
model "feats" { features = "$2" }
dataset "toy" { root = "data", manifest = "metadata.csv" }
experiment "x" { models = { "feats" }, datasets = { "toy" }, protocol = few_shot { shots = { 1 }, trials = 1 } }
LUA
}
# F32 [48, 2^58] is 3 x 2^64 bytes: wrapped to 0 it matched data_offsets [0,0]
st wrap.safetensors '{"image_embeddings":{"dtype":"F32","shape":[48,288230376151711744],"data_offsets":[0,0]}}'
feats_exp wrapfeats.lua wrap.safetensors
refused wrapfeats.lua "wrap.safetensors: tensor 'image_embeddings': F32 \[48,288230376151711744\] is too large"
# 1e30 cast to int64 is undefined behaviour
st huge.safetensors '{"image_embeddings":{"dtype":"F32","shape":[1e30,4],"data_offsets":[0,64]}}' 64
feats_exp hugefeats.lua huge.safetensors
refused hugefeats.lua "huge.safetensors: tensor 'image_embeddings': shape dimension 0 is 1e+30, not an integer"
# a wrong row count is named with both counts (the message once failed to format)
st rows.safetensors '{"image_embeddings":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}}' 24
feats_exp rowsfeats.lua rows.safetensors
refused rowsfeats.lua "rows.safetensors: image_embeddings has 3 rows but the manifest lists 4 images"
# and the same file with the right shape runs
st good.safetensors '{"image_embeddings":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]}}' 32
feats_exp goodfeats.lua good.safetensors
"$CLADE" run goodfeats.lua --db "$T/g.db" 2> err || fail "a well-formed features file: $(cat err)"
echo "ok"
