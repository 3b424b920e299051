#!/usr/bin/env bash
# End to end: synth the sample suite, run every sample experiment, read the results back.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" 2>/dev/null
cd "$T"   # clade must not depend on the current folder

for x in quickstart custom_protocol sample_ablation bioscan_retrieval; do
  "$CLADE" run "$CLADE_SRC/experiments/$x.lua" --db "$T/r.db" --quiet 2>"$T/err" || { cat "$T/err"; fail "run $x"; }
done
# default db is results/clade.db relative to the current folder
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --quiet 2>/dev/null
[ -f results/clade.db ] || fail "default database results/clade.db not created"

"$CLADE" results --db "$T/r.db" --run 1 --format csv > q.csv
head -1 q.csv | grep '^run,experiment,model,dataset,protocol,text_type,shots,trial,metric,value' >/dev/null || fail "csv header: $(head -1 q.csv)"
grep -q ',quickstart-zero-shot,sample-clip,rare-sample,zero_shot,taxonomic_common,0,all,top1,' q.csv || fail "zero-shot row missing"
grep -q ',quickstart-zero-shot,sample-clip,rare-sample,zero_shot,common,0,all,top5,' q.csv || fail "top5 row missing"
for t in 0 1 2 3 4; do
  grep -q ",quickstart-few-shot,sample-clip,rare-sample,few_shot,,5,$t,top1," q.csv || fail "few-shot trial $t row missing"
done
grep -q ',few_shot,,1,all,top1_std,' q.csv || fail "top1_std row missing"
# few-shot accuracy must rise from 1 to 5 shots on the sample (classes differ visibly)
a1=$(grep ',rare-sample,few_shot,,1,all,top1,' q.csv | cut -d, -f10)
a5=$(grep ',rare-sample,few_shot,,5,all,top1,' q.csv | cut -d, -f10)
awk -v a="$a1" -v b="$a5" 'BEGIN { exit !(b > a && a > 0.3) }' || fail "few-shot 1-shot $a1, 5-shot $a5"

"$CLADE" results --db "$T/r.db" --run 3 --format csv > a.csv
grep -q ',zero_shot,"mixture(common=0.5,taxonomic_common=0.5)",0,all,top1,' a.csv || fail "mixture row"
grep -q ',linear_probe,,3,all,top1,' a.csv || fail "linear probe row"
"$CLADE" results --db "$T/r.db" --run 2 --format csv | grep ',custom-ncm,sample-clip,rare-sample,cosine_ncm,,2,all,top1,' >/dev/null || fail "custom protocol row"

# retrieval on bioscan_sample: images of a seen species share a look, so even the random
# CLIP finds them; every query split x rank is a cell. The sample's CLIBD-shaped model (clade
# synth writes it, RANDOM weights) runs image->dna, dna->dna, image->image and image+dna out of
# the box: every cell there; barcodes of a species share most 5-mers, so dna->dna finds it.
"$CLADE" results --db "$T/r.db" --run 4 --format json > b.json
python3 - b.json <<'PY' || fail "bioscan retrieval: $(head -c 600 b.json)"
import json, sys
allrows = json.load(open(sys.argv[1]))
splits, ranks = ("test_seen", "test_unseen"), ("order", "family", "genus", "species")
metrics = {f"{a}_top{k}" for a in ("micro", "macro") for k in (1, 3, 5)}
def check(experiment, pairs):
    rows = [r for r in allrows if r["experiment"] == experiment]
    cells = {(r["query"], r["key"], r["split"], r["rank"]) for r in rows}
    assert cells == {(q, k, s, r) for q, k in pairs for s in splits for r in ranks}, (experiment, sorted(cells))
    v = {(r["query"], r["key"], r["split"], r["rank"], r["metric"]): r["value"] for r in rows}
    assert len(v) == len(rows) == len(cells) * len(metrics), (experiment, len(rows))
    assert {k[-1] for k in v} == metrics and all(0 <= x <= 1 for x in v.values()), experiment
    assert all(v[c + ("micro_top1",)] <= v[c + ("micro_top5",)] for c in cells), experiment
    assert all(r["n"] > 0 for r in rows), experiment
    return v
v = check("bioscan-image-image", [("image", "image")])
assert v[("image", "image", "test_seen", "species", "micro_top1")] > 0.5, v
v = check("bioscan-clibd", [("image", "dna"), ("dna", "dna"), ("image", "image"), ("image+dna", "image+dna")])
assert v[("dna", "dna", "test_seen", "species", "micro_top1")] > 0.5, v
assert {r["model"] for r in allrows if r["experiment"] == "bioscan-clibd"} == {"sample-clibd"}
PY

# the same CLIBD retrievals from `clade embed`'s features of the sample model (the
# CLADE_CLIBD_FEATURES override): every metric equal to the run that encoded through the towers
S="$CLADE_SAMPLE/data/bioscan_sample"
cut -d, -f2 "$S/metadata.csv" | tail -n +2 > simages.txt
cut -d, -f3 "$S/metadata.csv" | tail -n +2 > sdna.txt
(cd "$S" && xargs -a "$T/simages.txt" "$CLADE" embed --model "$CLADE_SAMPLE/clibd" --dna "$T/sdna.txt" \
   --out "$T/sfeats.safetensors" --backend cpu --images) 2>err || fail "embed the sample's CLIBD: $(cat err)"
CLADE_CLIBD_FEATURES="$T/sfeats.safetensors" "$CLADE" run "$CLADE_SRC/experiments/bioscan_retrieval.lua" \
  --db "$T/f.db" --quiet 2>err || fail "bioscan_retrieval on features: $(cat err)"
"$CLADE" results --db "$T/f.db" --format json > bf.json
python3 - b.json bf.json <<'PY' || fail "bioscan-clibd from features differs from the run through the model"
import json, sys
def cells(p):
    return {(r["query"], r["key"], r["split"], r["rank"], r["metric"]): r["value"]
            for r in json.load(open(p)) if r["experiment"] == "bioscan-clibd"}
a, b = cells(sys.argv[1]), cells(sys.argv[2])
assert len(a) == 4 * 2 * 4 * 6 and a == b, [k for k in a if a[k] != b.get(k)][:5]
PY

# bad input: the sample's CLIBD model without its DNA tower. A run whose retrieval needs the dna
# tower stops naming the tower and its first missing key, before encoding anything for it, and
# keeps the finished image->image evaluation; `clade embed --dna` says the same, writing nothing.
mkdir -p nodna nd
cp "$CLADE_SAMPLE/clibd/config.json" "$CLADE_SAMPLE/clibd/vocab.txt" nodna/
python3 - "$CLADE_SAMPLE/clibd/model.safetensors" nodna/model.safetensors dna_encoder. <<'PY'
import json, struct, sys
src, dst, drop = sys.argv[1:4]
f = open(src, "rb")
hdr = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
data = f.read()
out, blobs, off = {}, [], 0
for k, v in hdr.items():
    if k != "__metadata__" and not k.startswith(drop):
        a, b = v["data_offsets"]
        blobs.append(data[a:b])
        v = dict(v, data_offsets=[off, off + b - a])
        off += b - a
    if not k.startswith(drop):
        out[k] = v
h = json.dumps(out).encode()
h += b" " * (-len(h) % 8)
open(dst, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
cat > nodna.lua <<LUA
model "m" { path = "$T/nodna" }
dataset "b" { root = "$CLADE_SAMPLE/data/bioscan_sample" }
experiment "fine" { models = { "m" }, datasets = { "b" }, protocol = retrieval { query = "image", key = "image" } }
experiment "needs-dna" { models = { "m" }, datasets = { "b" }, protocol = retrieval { query = "dna", key = "dna" } }
LUA
if "$CLADE" run nodna.lua --db nd/r.db 2>err; then fail "a model without its dna tower ran dna->dna"; fi
grep -q "nodna.lua:4: experiment 'needs-dna' .*the model has no dna tower: missing key dna_encoder.base_dna_encoder.bert.embeddings.word_embeddings.weight" err ||
  fail "missing dna tower message: $(cat err)"
[ "$("$CLADE" results --db nd/r.db --format csv | grep -c ',fine,m,b,retrieval,')" = 48 ] || fail "the finished evaluation was lost"
if "$CLADE" results --db nd/r.db --format csv | grep -q needs-dna; then fail "rows stored for the failed evaluation"; fi
python3 -c 'import sqlite3, sys; print(sorted(sqlite3.connect(sys.argv[1]).execute("SELECT kind, count(*) FROM embeddings GROUP BY kind")))' \
  nd/cache.db > kinds || fail "reading the cache"
[ "$(cat kinds)" = "[('image', 72)]" ] || fail "the failed evaluation encoded something: $(cat kinds)"
if "$CLADE" embed --model nodna --dna sdna.txt --out nodna.st 2>err; then fail "embed --dna without a dna tower"; fi
grep -q "^clade: --dna: .*the model has no dna tower: missing key dna_encoder\.base_dna_encoder\." err || fail "embed message: $(cat err)"
[ ! -e nodna.st ] || fail "a failed embed wrote its output"

"$CLADE" predictions --db "$T/r.db" --run 1 --format csv > p.csv
head -1 p.csv | grep -x 'model,dataset,protocol,text_type,shots,trial,filepath,label,prediction,query,key,split,rank,retrieved' >/dev/null || fail "predictions header"
[ "$(grep -c ',zero_shot,taxonomic_common,0,all,images/' p.csv)" = 48 ] || fail "one zero-shot prediction per image"

# results json parses and carries full precision
"$CLADE" results --db "$T/r.db" --run 1 --format json > q.json
python3 -c "import json,sys; d=json.load(open('q.json')); assert any(r['trial']=='all' for r in d)" || fail "json"

# the same experiment run twice gives the same numbers (determinism)
"$CLADE" results --db "$T/r.db" --run 1 --format csv | cut -d, -f2- > a4
"$CLADE" results --db results/clade.db --run 1 --format csv | cut -d, -f2- > a1
cmp -s a4 a1 || fail "two runs of the same file differ"
echo "test_experiments: ok"
