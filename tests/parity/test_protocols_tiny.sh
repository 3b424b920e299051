#!/usr/bin/env bash
# The protocols' math against open_clip's fixture (tiny_fewshot.safetensors): zero-shot
# predictions of the tiny model from JPEG files and taxonomic+common prompts, and BioCLIP's
# CL2N nearest-centroid step (support mean, distances, predictions) on open_clip's embeddings.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (apt-get install python3-numpy)" >&2; exit 77; }
F="$CLADE_FIXTURES"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cat > "$T/metadata.csv" <<CSV
kingdom,phylum,cls,order,family,genus,species,common_name,filepath,class
Animalia,Chordata,Mammalia,Carnivora,Felidae,Felis,catus,domestic cat,img0_cat_224x224.jpg,cat
Animalia,Chordata,Mammalia,Carnivora,Felidae,Felis,catus,domestic cat,img1_cat_97x131_progressive.jpg,cat
Animalia,Chordata,Mammalia,Carnivora,Procyonidae,Procyon,lotor,raccoon,img2_raccoon_1024x768_gray.jpg,raccoon
Animalia,Chordata,Mammalia,Carnivora,Procyonidae,Procyon,lotor,raccoon,img3_raccoon_640x480.jpg,raccoon
Animalia,Chordata,Mammalia,Primates,Hominidae,Homo,sapiens,human,img4_human_300x500_444.jpg,human
Animalia,Chordata,Mammalia,Primates,Hominidae,Homo,sapiens,human,img5_human_400x300_cmyk.jpg,human
CSV
cp "$T/metadata.csv" "$T/m.csv"
# open_clip's image embeddings as a features file, for the CL2N check
$PY - "$F" "$T/feats.safetensors" <<'PY'
import sys; sys.path.insert(0, sys.argv[1] + "/tools"); import st
st.save(sys.argv[2], {"image_embeddings": st.load(sys.argv[1] + "/tiny_outputs.safetensors")["image_embeds"]})
PY
cat > "$T/x.lua" <<LUA
local common = require "clade.protocols.common"
model "tiny" { path = "$F/tiny-hub" }
model "tiny-feats" { features = "feats.safetensors" }
dataset "fixture" { root = "$F/images", manifest = "$T/m.csv" }
-- the fixture's one-shot split: supports img0, img2, img4; queries img1, img3, img5
local cl2n = protocol "cl2n_fixture" {
  run = function(ctx)
    local pred, dist, mu = common.simpleshot(ctx.features:normalize(), { { 1, 1 }, { 3, 2 }, { 5, 3 } },
                                             { { 2, 1 }, { 4, 2 }, { 6, 3 } }, 3)
    local results = {}
    for i = 1, 3 do
      results[#results + 1] = { trial = i - 1, metric = "pred", value = pred[i] - 1 }
      for j = 1, 3 do results[#results + 1] = { trial = i - 1, metric = "dist" .. (j - 1), value = dist:get(i, j) } end
    end
    for j = 1, 4 do results[#results + 1] = { metric = "mu" .. (j - 1), value = mu:get(1, j) } end
    ctx.emit { results = results }
  end,
}
experiment "zs" { models = { "tiny" }, datasets = { "fixture" },
                  protocol = zero_shot { text_types = { "taxonomic_common" }, templates = "plain" } }
experiment "cl2n" { models = { "tiny-feats" }, datasets = { "fixture" }, protocol = cl2n {} }
LUA
"$CLADE" run "$T/x.lua" --db "$T/r.db" --quiet
"$CLADE" predictions --db "$T/r.db" --format csv > "$T/p.csv"
"$CLADE" results --db "$T/r.db" --format csv > "$T/r.csv"
"$CLADE" classes "$T/x.lua" --dataset fixture --text-type taxonomic_common > "$T/names"
$PY - "$F" "$T" <<'PY'
import csv, json, sys
sys.path.insert(0, sys.argv[1] + "/tools"); import st
ref = st.load(sys.argv[1] + "/tiny_fewshot.safetensors")
T = sys.argv[2]
# the class prompts clade builds are open_clip's
head = json.loads(open(sys.argv[1] + "/tiny_fewshot.safetensors", "rb").read(8 + int.from_bytes(open(sys.argv[1] + "/tiny_fewshot.safetensors", "rb").read(8), "little"))[8:])
prompts = json.loads(head["__metadata__"]["class_prompts"])
names = [l.rstrip("\n").split("\t")[1] for l in open(T + "/names")]
assert ["a photo of %s." % n for n in names] == prompts, (names, prompts)
labels = ["cat", "raccoon", "human"]
pred = [r["prediction"] for r in csv.DictReader(open(T + "/p.csv")) if r["protocol"] == "zero_shot"]
want = [labels[i] for i in ref["zeroshot_pred"]]
assert pred == want, (pred, want)
rows = {(r["trial"], r["metric"]): float(r["value"]) for r in csv.DictReader(open(T + "/r.csv")) if r["protocol"] == "cl2n_fixture"}
for i in range(3):
    assert int(rows[(str(i), "pred")]) == int(ref["cl2n_pred"][i]), i
    for j in range(3):
        d, w = rows[(str(i), "dist%d" % j)], float(ref["cl2n_distances"][i][j])
        assert abs(d - w) <= 1e-6 * max(1.0, abs(w)), (i, j, d, w)
for j in range(4):
    d, w = rows[("all", "mu%d" % j)], float(ref["cl2n_support_mean"][j])
    assert abs(d - w) <= 1e-6, (j, d, w)
print("zero-shot predictions, class prompts, CL2N mean/distances/predictions equal open_clip's fixture")
PY
