#!/usr/bin/env bash
# m:embed(modality, items) through the modality registry and the scheduler, against open_clip's
# outputs for the tiny model: ctx.embed("image", files) and ctx.embed("text", texts) give the
# fixture's embeddings (rel err < 1e-4) and the very numbers embed_images/embed_texts give; a
# modality the model has no tower for (dna on CLIP), or one not registered, is an error naming
# what there is; a second
# run takes every image and text from the embedding cache (keyed by modality and item).
set -euo pipefail
: "${CLADE:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
printf 'filepath,class\n' > "$T/m.csv"
for f in $(cd "$F/images" && ls img*.jpg | sort); do printf '%s,%s\n' "$f" "${f%%_*}" >> "$T/m.csv"; done
# the fixture's one-line texts as a Lua list (bytes escaped), and their indices
$PY - "$F/text_cases.json" "$T/texts.lua" > "$T/idx" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))
cases = cases["cases"] if isinstance(cases, dict) and "cases" in cases else cases
idx, items = [], []
for i, c in enumerate(cases):
    t = c["text"] if isinstance(c, dict) else c
    if "\n" in t or "\r" in t: continue
    b = t.encode("utf-8")
    items.append('"' + "".join(chr(x) if 32 <= x < 127 and x not in (34, 92) else "\\%03d" % x for x in b) + '"')
    idx.append(str(i))
open(sys.argv[2], "w").write("return { " + ", ".join(items) + " }\n")
print(",".join(idx))
PY
cat > "$T/x.lua" <<LUA
local texts = { $(sed -e 's/^return { //' -e 's/ }$//' "$T/texts.lua") }
model "tiny" { path = "$F/tiny-hub" }
dataset "fixture" { root = "$F/images", manifest = "$T/m.csv" }
local function maxdiff(a, b)
  local ra, ca = a:shape()
  local rb, cb = b:shape()
  assert(ra == rb and ca == cb, "shapes differ")
  local m = 0
  for i = 1, ra do for j = 1, ca do m = math.max(m, math.abs(a:get(i, j) - b:get(i, j))) end end
  return m
end
local check = protocol "embed_check" {
  run = function(ctx)
    local paths = {}
    for i, f in ipairs(ctx.filepaths) do paths[i] = "$F/images/" .. f end
    local img, txt = ctx.embed("image", paths), ctx.embed("text", texts)
    local results = {
      { metric = "image_vs_features", value = maxdiff(img, ctx.features) },
      { metric = "text_vs_embed_texts", value = maxdiff(txt, ctx.embed_texts(texts)) },
    }
    for name, t in pairs { image = img, text = txt } do
      local r, c = t:shape()
      for i = 1, r do for j = 1, c do
        results[#results + 1] = { trial = i - 1, metric = name .. (j - 1), value = t:get(i, j) }
      end end
    end
    local ok, why = pcall(ctx.embed, "dna", { "ACGT" })
    assert(not ok and why:find("the model has no dna tower %(it has image, text%)"), "dna: " .. tostring(why))
    ok, why = pcall(ctx.embed, "smell", { "x" })
    assert(not ok and why:find("modality 'smell' is not registered %(known: image, text, dna%)"), "smell: " .. tostring(why))
    ctx.emit { results = results }
  end,
}
experiment "e" { models = { "tiny" }, datasets = { "fixture" }, protocol = check {} }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet || fail "run"
"$CLADE" results --db "$T/r.db" --format csv > "$T/r.csv"
$PY - "$F" "$T/r.csv" "$(cat "$T/idx")" <<'PY' || fail "embeddings differ"
import csv, sys
import numpy as np
sys.path.insert(0, sys.argv[1] + "/tools"); import st
ref = st.load(sys.argv[1] + "/tiny_outputs.safetensors")
tidx = [int(x) for x in sys.argv[3].split(",")]
rows = list(csv.DictReader(open(sys.argv[2])))
val = {(r["trial"], r["metric"]): float(r["value"]) for r in rows}
assert val[("all", "image_vs_features")] == 0, val[("all", "image_vs_features")]
assert val[("all", "text_vs_embed_texts")] == 0, val[("all", "text_vs_embed_texts")]
for name, key, n in (("image", "image_embeds", 6), ("text", "text_embeds", len(tidx))):
    d = ref[key].shape[1]
    got = np.array([[val[(str(i), "%s%d" % (name, j))] for j in range(d)] for i in range(n)])
    want = ref[key] if name == "image" else ref[key][tidx]
    e = st.relerr(got.astype(np.float32), want)
    print("m:embed(%r): max rel err %.2e over %d" % (name, e.max(), n))
    assert (e < 1e-4).all()
PY
# again (a new run of the same file): every item comes from the cache; the images and texts
# are each asked for twice (features and ctx.embed; ctx.embed and embed_texts)
NT=$(tr ',' '\n' < "$T/idx" | wc -l)
"$CLADE" run "$T/x.lua" --db "$T/r.db" 2> "$T/err" >/dev/null || fail "second run: $(cat "$T/err")"
grep -q "nothing encoded: 12 images and $((2 * NT)) texts came from the embedding cache" "$T/err" \
  || fail "second run encoded again: $(cat "$T/err")"
# --json-log: progress events are JSON even when the label (model and dataset names) has quotes
# and backslashes
mkdir "$T/j"
sed -e 's/model "tiny"/model "ti\\"ny\\\\"/' -e 's/models = { "tiny" }/models = { "ti\\"ny\\\\" }/' "$T/x.lua" > "$T/j/x.lua"
"$CLADE" run "$T/j/x.lua" --db "$T/j/r.db" --json-log 2> "$T/j/err" >/dev/null || fail "json-log run: $(cat "$T/j/err")"
$PY - "$T/j/err" <<'PY' || fail "progress events: $(cat "$T/j/err")"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
prog = [e for e in events if e.get("event") == "progress"]
assert prog and all(e["label"].startswith('ti"ny\\') for e in prog), prog
assert {e["stage"] for e in prog} >= {"images", "texts"}, prog
PY
