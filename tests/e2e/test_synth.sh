#!/usr/bin/env bash
# clade synth: writes the sample suite, deterministically, with loadable manifests and valid
# images; a different seed changes the bytes; bad options fail with a message.
set -euo pipefail
CLADE=${CLADE:-}
if [[ -z "$CLADE" || ! -x "$CLADE" ]]; then
  echo "test_synth: CLADE (the clade binary) is not set or not executable" >&2
  exit 77
fi
tmp=$(mktemp -d /tmp/clade_test_synth.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_synth: FAIL: $*" >&2; exit 1; }

"$CLADE" synth --out "$tmp/a" --seed 7 >"$tmp/a.out" 2>"$tmp/a.err" || { cat "$tmp/a.err" >&2; fail "synth exited non-zero"; }
"$CLADE" synth --out "$tmp/b" --seed 7 >/dev/null 2>&1 || fail "second synth exited non-zero"
"$CLADE" synth --out "$tmp/c" --seed 8 >/dev/null 2>&1 || fail "third synth exited non-zero"

# stdout carries only the directory; stderr says the weights are random.
[[ "$(cat "$tmp/a.out")" == "$tmp/a" ]] || fail "stdout was '$(cat "$tmp/a.out")', expected the directory"
grep -q RANDOM "$tmp/a.err" || fail "stderr does not say the weights are RANDOM"
# its help names everything it writes (each folder under DIR and DIR/data)
"$CLADE" synth --help > "$tmp/help" || fail "synth --help"
for p in $(cd "$tmp/a" && ls -d * data/*); do
  [ "$p" = data ] || grep -q "DIR/$p\b" "$tmp/help" || fail "clade synth --help does not name DIR/$p: $(cat "$tmp/help")"
done

# Same seed, same bytes; another seed, other bytes.
diff -r "$tmp/a" "$tmp/b" >/dev/null || fail "two runs with --seed 7 differ"
cmp -s "$tmp/a/model/open_clip_model.safetensors" "$tmp/c/model/open_clip_model.safetensors" &&
  fail "--seed 8 wrote the same weights as --seed 7"
cmp -s "$tmp/a/data/rare_sample/images/0001.jpg" "$tmp/c/data/rare_sample/images/0001.jpg" &&
  fail "--seed 8 wrote the same image as --seed 7"

# The model: hub-style config and a safetensors file whose header names open_clip keys.
m="$tmp/a/model"
[[ -s "$m/open_clip_model.safetensors" ]] || fail "no safetensors"
grep -q '"model_cfg"' "$m/open_clip_config.json" || fail "config lacks model_cfg"
grep -q '"preprocess_cfg"' "$m/open_clip_config.json" || fail "config lacks preprocess_cfg"
head -c 65536 "$m/open_clip_model.safetensors" | grep -a 'visual.conv1.weight' >/dev/null || fail "no visual.conv1.weight"
head -c 65536 "$m/open_clip_model.safetensors" | grep -a 'token_embedding.weight' >/dev/null || fail "no token_embedding.weight"

# The CLIBD-shaped model: a "format": "clibd" config with its three towers, CLIBD's state-dict
# names (LoRA in the image tower), a vocabulary; it loads and embeds each modality.
c="$tmp/a/clibd"
python3 - "$c" <<'PY' || fail "clibd model files"
import json, struct, sys
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
assert cfg["format"] == "clibd" and "RANDOM" in cfg["clade_synth"], cfg
assert {"image", "dna", "text"} <= set(cfg) and cfg["text"]["vocab_file"] == "vocab.txt"
vocab = open(d + "/vocab.txt").read().split("\n")[:-1]
assert vocab[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] and len(vocab) == cfg["text"]["bert_config"]["vocab_size"]
f = open(d + "/model.safetensors", "rb")
hdr = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
assert "RANDOM" in hdr["__metadata__"]["clade_synth"]
for k, shape in {"image_encoder.base_image_encoder.blocks.0.attn.qkv.linear_a_q.weight": [4, 64],
                 "image_encoder.base_image_encoder.head.weight": [32, 64],
                 "dna_encoder.base_dna_encoder.bert.embeddings.word_embeddings.weight": [1027, 64],
                 "dna_encoder.base_dna_encoder.cls.predictions.decoder.weight": [32, 64],
                 "language_encoder.proj.weight": [32, 64]}.items():
    assert hdr[k]["shape"] == shape and hdr[k]["dtype"] == "F32", (k, hdr.get(k))
PY
cmp -s "$c/model.safetensors" "$tmp/c/clibd/model.safetensors" && fail "--seed 8 wrote the same CLIBD weights as --seed 7"
printf 'ACGTACGTAC\n' > "$tmp/dna.txt"
printf 'Diptera Sciaridae\n' > "$tmp/texts.txt"
"$CLADE" embed --model "$c" --backend cpu --dna "$tmp/dna.txt" --texts "$tmp/texts.txt" --out "$tmp/e.safetensors" \
  --images "$tmp/a/data/bioscan_sample/images/0001.jpg" 2>"$tmp/e.err" || fail "embed with the CLIBD model: $(cat "$tmp/e.err")"
python3 - "$tmp/e.safetensors" <<'PY' || fail "CLIBD embeddings' shapes"
import json, struct, sys
f = open(sys.argv[1], "rb")
hdr = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
for k, shape in {"image_embeddings": [1, 32], "dna_embeddings": [1, 32], "dna_tokens": [1, 133],
                 "text_embeddings": [1, 32], "text_tokens": [1, 20]}.items():
    assert hdr[k]["shape"] == shape, (k, hdr[k])
PY

# Manifests: header as the real ones, 8x6 and 5x6 rows, every image present and valid.
check_dataset() { # dir header rows classes magic-hex filepath-column
  local d=$1 header=$2 rows=$3 classes=$4 magic=$5
  [[ "$(head -n1 "$d/metadata.csv")" == "$header" ]] || fail "$d: header is '$(head -n1 "$d/metadata.csv")'"
  local n
  n=$(awk 'NR>1' "$d/metadata.csv" | wc -l)
  [[ $n -eq $rows ]] || fail "$d: $n rows, expected $rows"
  n=$(awk -F, 'NR>1{print $NF}' "$d/metadata.csv" | sort -u | wc -l)
  [[ $n -eq $classes ]] || fail "$d: $n classes, expected $classes"
  # filepath is the second-to-last column in rare_sample and column 2 in plankton_sample.
  local col=$6
  while IFS= read -r rel; do
    local f="$d/$rel"
    [[ -s "$f" ]] || fail "$f: missing or empty"
    [[ "$(head -c $((${#magic} / 2)) "$f" | od -An -tx1 | tr -d ' \n')" == "$magic" ]] ||
      fail "$f: does not start with the expected signature"
  done < <(awk -F, -v c="$col" 'NR>1{print $c}' "$d/metadata.csv")
}
check_dataset "$tmp/a/data/rare_sample" ",kingdom,phylum,cls,order,family,genus,species,common_name,filepath,class" \
  48 8 ffd8ff 10
check_dataset "$tmp/a/data/plankton_sample" ",filepath,class" 30 5 89504e47 2
# bioscan_sample: 12 species x 6 specimens in BIOSCAN-1M's five splits (the last column);
# barcodes share more with their own species than with the genus' other species, and more
# within an order than across orders
check_dataset "$tmp/a/data/bioscan_sample" "processid,filepath,dna_barcode,order,family,genus,species,split" 72 5 ffd8ff 2
python3 - "$tmp/a/data/bioscan_sample/metadata.csv" <<'PY' || fail "bioscan_sample barcodes"
import csv, sys, itertools
rows = list(csv.DictReader(open(sys.argv[1])))
assert len({r["species"] for r in rows}) == 12 and len({r["order"] for r in rows}) == 3
def same(a, b):
    n = min(len(a), len(b))
    return sum(x == y for x, y in zip(a[:n], b[:n])) / n
groups = {"species": [], "genus": [], "order": [], "none": []}
for a, b in itertools.combinations(rows, 2):
    k = ("species" if a["species"] == b["species"] else "genus" if a["genus"] == b["genus"]
         else "order" if a["order"] == b["order"] else "none")
    groups[k].append(same(a["dna_barcode"], b["dna_barcode"]))
m = {k: sum(v) / len(v) for k, v in groups.items()}
assert m["species"] > m["genus"] > m["order"] > m["none"], m
assert all(set(r["dna_barcode"]) <= set("ACGTN") and 600 <= len(r["dna_barcode"]) <= 658 for r in rows)
PY
# tree_sample: 36 species in 3 orders x 2 families x 2 genera x 3 species; 24 seen species
# with 8 train and 4 test_seen images, 12 held-out ones (one per genus) with 4 test_unseen;
# the images follow the tree: the body's colour is its order's (the dominant channel of its
# saturated pixels), and images of one family look more alike than of different families
check_dataset "$tmp/a/data/tree_sample" ",kingdom,phylum,cls,order,family,genus,species,common_name,filepath,class,split" \
  336 3 ffd8ff 10  # (3: the last column is the split)
/usr/bin/python3 - "$tmp/a/data/tree_sample" <<'PY' || fail "tree_sample"
import collections, csv, os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "metadata.csv"))))
split = collections.Counter(r["split"] for r in rows)
assert split == {"train": 192, "test_seen": 96, "test_unseen": 48}, split
sp = {r["class"]: r for r in rows}
assert len(sp) == 36 and len({r["order"] for r in rows}) == 3 and len({r["family"] for r in rows}) == 6
assert len({r["genus"] for r in rows}) == 12 and len({r["common_name"] for r in rows}) == 36
train_sp = {r["class"] for r in rows if r["split"] == "train"}
unseen_sp = {r["class"] for r in rows if r["split"] == "test_unseen"}
assert len(train_sp) == 24 and len(unseen_sp) == 12 and not train_sp & unseen_sp
assert {r["class"] for r in rows if r["split"] == "test_seen"} == train_sp
for part in ("test_seen", "test_unseen"):  # one split's rows each, as in metadata.csv
    assert list(csv.DictReader(open(os.path.join(d, part + ".csv")))) == [r for r in rows if r["split"] == part], part
train_genera = {sp[c]["genus"] for c in train_sp}
assert all(sp[c]["genus"] in train_genera for c in unseen_sp)          # known genera
assert len({sp[c]["genus"] for c in unseen_sp}) == 12                  # one per genus
for c, r in sp.items():
    assert c == r["genus"] + " " + r["species"] and r["common_name"].split()[-1] == \
        {"Ardelidae": "glider", "Borvidae": "creeper", "Calnidae": "hopper", "Dersidae": "borer",
         "Eumidae": "dancer", "Fostridae": "weaver"}[r["family"]], r
order_channel, shape = {}, []
for r in rows:
    x = np.asarray(Image.open(os.path.join(d, r["filepath"])).convert("RGB"), dtype=np.float32)
    sat = x.max(axis=2) - x.min(axis=2) > 60                             # the saturated body
    assert sat.mean() > 0.03, r["filepath"]
    order_channel.setdefault(r["order"], set()).add(int(np.argmax(x[sat].mean(axis=0))))
    bg = np.median(np.concatenate([x[:4].reshape(-1, 3), x[-4:].reshape(-1, 3)]), axis=0)
    body = np.abs(x - bg).sum(axis=2) > 60                               # the body's outline
    edge = body & ~(np.roll(body, 1, 0) & np.roll(body, -1, 0) & np.roll(body, 1, 1) & np.roll(body, -1, 1))
    shape.append((r["family"], np.array([np.log(body.sum()), edge.sum() ** 2 / body.sum() / 10])))
assert all(len(v) == 1 for v in order_channel.values()), order_channel  # one colour per order
assert len({min(v) for v in order_channel.values()}) == 3, order_channel # three different ones
# shape by family: (log area, compactness) tells the family apart (nearest family mean)
cent = {f: np.mean([v for g, v in shape if g == f], axis=0) for f in {g for g, _ in shape}}
right = sum(min(cent, key=lambda g: np.sum((cent[g] - v) ** 2)) == f for f, v in shape)
assert right > 0.75 * len(shape), (right, len(shape))
PY
grep -q '^0,Animalia,Mollusca,Bivalvia,Unionida,Unionidae,Cyclonaias,tuberculata,purple wartyback,images/0001.jpg,Cyclonaias tuberculata$' \
  "$tmp/a/data/rare_sample/metadata.csv" || fail "rare_sample's first row lacks the real taxonomy"

# Options: smaller suites, and errors for bad values.
"$CLADE" synth --out "$tmp/d" --classes 3 --per-class 2 >/dev/null 2>&1 || fail "--classes 3 --per-class 2 failed"
[[ $(awk 'NR>1' "$tmp/d/data/rare_sample/metadata.csv" | wc -l) -eq 6 ]] || fail "--classes 3 --per-class 2: not 6 rows"
if "$CLADE" synth --out "$tmp/e" --classes 0 2>"$tmp/e.err"; then fail "--classes 0 succeeded"; fi
grep -q -- '--classes' "$tmp/e.err" || fail "--classes 0: message does not name the option"
if "$CLADE" synth 2>/dev/null; then fail "synth without --out succeeded"; fi
if "$CLADE" synth --out "$tmp/f" --bogus 1 2>/dev/null; then fail "an unknown option succeeded"; fi
echo "test_synth: ok"
