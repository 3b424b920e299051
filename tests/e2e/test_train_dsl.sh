#!/usr/bin/env bash
# train "name" { ... } in an experiment file: the model is trained before the evaluations
# that use it, recorded (clade log, train_jobs and train_steps linked to its evaluations by
# the trained checkpoint's hash), and cached by content: rerunning the file does not train
# again, changing a hyperparameter does. Bad declarations are errors naming the file and
# line before anything runs or is recorded.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
export OMP_NUM_THREADS=1
"$CLADE" synth --out "$T/sample" >/dev/null 2>&1
$PY - "$T/sample/data/rare_sample/metadata.csv" "$T/split.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
out = [rows[0] + ["split"]] + [r + ["train" if i % 4 else "test"] for i, r in enumerate(rows[1:])]
csv.writer(open(sys.argv[2], "w", newline="")).writerows(out)
PY
sql() { $PY -c 'import sqlite3, sys; print("\n".join("|".join(map(str, r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))' "$@"; }
head_lua() {
  cat <<EOF
model "base" { path = "$T/sample/model" }
dataset "rare" { root = "$T/sample/data/rare_sample", manifest = "$T/split.csv" }
dataset "nosplit" { root = "$T/sample/data/rare_sample" }
EOF
}
{ head_lua; cat <<'EOF'
train "taxo" { from = "base", datasets = { "rare" }, split = "train", text_types = "taxonomic",
               epochs = 2, batch_size = 12, lr = 1e-4, warmup = 1, seed = 0, augment = false }
experiment "ev" { models = { "base", "taxo" }, datasets = { "rare" },
                  protocol = zero_shot { text_types = { "taxonomic", "common" }, templates = "plain" } }
EOF
} > "$T/t.lua"
mkdir -p "$T/r"
"$CLADE" run "$T/t.lua" --db "$T/r/r.db" 2>"$T/1.err" || fail "run: $(cat "$T/1.err")"
grep -q "train taxo: from base, 36 examples, 2 epochs of batch 12" "$T/1.err" || fail "no training notice: $(cat "$T/1.err")"
[ "$(sql "$T/r/r.db" "SELECT name, parent, status, steps, steps_done, n_examples FROM train_jobs")" = "taxo|base|complete|6|6|36" ] ||
  fail "train_jobs: $(sql "$T/r/r.db" "SELECT * FROM train_jobs")"
[ "$(sql "$T/r/r.db" "SELECT count(*), min(step), max(step), count(DISTINCT text_type) FROM train_steps")" = "6|0|5|1" ] ||
  fail "train_steps: $(sql "$T/r/r.db" "SELECT * FROM train_steps")"
[ "$(sql "$T/r/r.db" "SELECT spec_json LIKE '%\"batch_size\":12%' AND mixture_json = '[{\"type\":\"taxonomic\",\"weight\":1}]' AND data_json = '[{\"dataset\":\"rare\",\"split\":\"train\",\"examples\":36}]' FROM train_jobs")" = 1 ] ||
  fail "the recorded spec: $(sql "$T/r/r.db" "SELECT spec_json, mixture_json, data_json FROM train_jobs")"
# the trained model's evaluations carry the trained checkpoint's hash
mh=$(sql "$T/r/r.db" "SELECT model_hash FROM train_jobs")
out=$(sql "$T/r/r.db" "SELECT out_dir FROM train_jobs")
[ "$mh" = "$(git hash-object "$out/open_clip_model.safetensors")" ] || fail "model_hash is not the trained checkpoint's"
[ "$(sql "$T/r/r.db" "SELECT count(*) FROM evaluations WHERE model = 'taxo' AND model_hash = '$mh'")" = 2 ] ||
  fail "the trained model's evaluations: $(sql "$T/r/r.db" "SELECT model, model_hash FROM evaluations")"
"$CLADE" log --db "$T/r/r.db" | grep -q "  train 'taxo' from base .* complete .* 6/6 steps  loss " || fail "clade log: $("$CLADE" log --db "$T/r/r.db")"
# training moved the weights
cmp -s "$out/open_clip_model.safetensors" "$T/sample/model/open_clip_model.safetensors" && fail "the trained weights equal the parent's"

# the same file again: a new run, the model from the cache (no training, no new job)
touch -d '2001-01-01' "$out/open_clip_model.safetensors"
"$CLADE" run "$T/t.lua" --db "$T/r/r.db" 2>"$T/2.err" || fail "rerun: $(cat "$T/2.err")"
grep -q "train taxo: trained before, taken from" "$T/2.err" || fail "the rerun trained again: $(cat "$T/2.err")"
[ "$(sql "$T/r/r.db" "SELECT count(*) FROM train_jobs")" = 1 ] || fail "the rerun recorded another training"
[ "$(stat -c %Y "$out/open_clip_model.safetensors")" = "$(date -d '2001-01-01' +%s)" ] || fail "the cached model was rewritten"
[ "$(sql "$T/r/r.db" "SELECT count(*) FROM evaluations WHERE model = 'taxo' AND model_hash = '$mh'")" = 4 ] || fail "the rerun's evaluations"
# a new database beside the same cache: the training is recorded from the trained folder,
# step for step as the first database has it, without training
"$CLADE" run "$T/t.lua" --db "$T/r/new.db" 2>"$T/n.err" || fail "new database: $(cat "$T/n.err")"
grep -q "train taxo: trained before" "$T/n.err" || fail "trained again for a new database: $(cat "$T/n.err")"
q="SELECT step, epoch, loss, lr, text_type, draws FROM train_steps ORDER BY step"
[ "$(sql "$T/r/new.db" "$q")" = "$(sql "$T/r/r.db" "$q")" ] || fail "the recorded steps differ: $(sql "$T/r/new.db" "$q")"
[ "$(sql "$T/r/new.db" "SELECT status, steps_done, model_hash FROM train_jobs")" = "complete|6|$mh" ] ||
  fail "the new database's training job: $(sql "$T/r/new.db" "SELECT * FROM train_jobs")"
# one hyperparameter changed: another model
sed 's/seed = 0/seed = 1/' "$T/t.lua" > "$T/t2.lua"
"$CLADE" run "$T/t2.lua" --db "$T/r/r.db" --quiet 2>"$T/3.err" || fail "seed 1: $(cat "$T/3.err")"
[ "$(sql "$T/r/r.db" "SELECT count(DISTINCT content_key), count(DISTINCT model_hash) FROM train_jobs")" = "2|2" ] ||
  fail "seed 1 did not train another model: $(sql "$T/r/r.db" "SELECT name, content_key, model_hash FROM train_jobs")"

# augmentation (open_clip's RandomResizedCrop): every crop recorded, 90-100% of its image's
# area (or the central fallback), and the same weights when trained again apart
{ head_lua; cat <<'EOF'
train "aug" { from = "base", datasets = { "rare" }, split = "train", text_types = mixture { common = 1, scientific = 1 },
              epochs = 1, batch_size = 12, lr = 1e-4, seed = 3 }
EOF
} > "$T/aug.lua"
mkdir -p "$T/aug1" "$T/aug2"
"$CLADE" run "$T/aug.lua" --db "$T/aug1/r.db" --quiet 2>"$T/aug.err" || fail "augmented training: $(cat "$T/aug.err")"
"$CLADE" run "$T/aug.lua" --db "$T/aug2/r.db" --quiet 2>"$T/aug.err" || fail "augmented training again: $(cat "$T/aug.err")"
a1=$(ls -d "$T"/aug1/trained/*/) a2=$(ls -d "$T"/aug2/trained/*/)
cmp "$a1/open_clip_model.safetensors" "$a2/open_clip_model.safetensors" || fail "two augmented trainings differ"
$PY - "$a1/draws.safetensors" "$T/split.csv" "$T/sample/data/rare_sample" <<'PY' || fail "the recorded crops"
import csv, json, struct, sys
from PIL import Image
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
def arr(name):
    h = head[name]
    b = raw[8 + n + h["data_offsets"][0]:8 + n + h["data_offsets"][1]]
    return list(struct.unpack("<%di" % (len(b) // 4), b)), h["shape"]
boxes, shape = arr("boxes")
rows, _ = arr("rows")
assert shape == [3, 12, 4], shape
train = [r for r in csv.DictReader(open(sys.argv[2])) if r["split"] == "train"]
full = 0
for k, row in enumerate(rows):
    l, t, w, h = boxes[4 * k:4 * k + 4]
    W, H = Image.open(sys.argv[3] + "/" + train[row]["filepath"]).size
    assert 0 <= l and 0 <= t and l + w <= W and t + h <= H and w > 0 and h > 0, (l, t, w, h, W, H)
    share = w * h / (W * H)
    full += share == 1
    assert 0.9 <= share <= 1 or (w, h) == (min(W, H), min(W, H)), (share, l, t, w, h, W, H)
assert full < len(rows), "every crop is the whole image"
print("%d crops, %d of the whole image" % (len(rows), full))
PY

# BioCLIP's own draw: its five text types with equal weights, one per batch, seed 0 is
# train_one_epoch's random.seed(step); random.choice([sci, com, taxon, sci_com, taxon_com])
{ head_lua; cat <<'EOF'
train "five" { from = "base", datasets = { "rare" }, split = "train", epochs = 4, batch_size = 12, seed = 0,
               augment = false, projections_only = true,
               text_types = mixture { taxonomic_common = 1, common = 1, scientific_common = 1, taxonomic = 1, scientific = 1 } }
EOF
} > "$T/five.lua"
mkdir -p "$T/five"
"$CLADE" run "$T/five.lua" --db "$T/five/r.db" --quiet 2>"$T/five.err" || fail "five types: $(cat "$T/five.err")"
got=$(sql "$T/five/r.db" "SELECT text_type FROM train_steps ORDER BY step" | tr '\n' ' ')
want=$($PY -c '
import random
for step in range(12):
    random.seed(step)
    print(random.choice(["scientific", "common", "taxonomic", "scientific_common", "taxonomic_common"]), end=" ")')
[ "$got" = "$want" ] || fail "the five-type draws are not BioCLIP's: got '$got', BioCLIP draws '$want'"

# bad declarations: an error naming the file and line, no run recorded, nothing trained
n=0
bad() { # LINE EXPECTED-MESSAGE: the declaration below it on line 4 of a file
  n=$((n + 1))
  { head_lua; cat; } > "$T/bad$n.lua"
  if "$CLADE" run "$T/bad$n.lua" --db "$T/bad/r$n.db" 2>"$T/bad.err"; then fail "bad$n ran: $(cat "$T/bad$n.lua")"; fi
  grep -qF "bad$n.lua:$1:" "$T/bad.err" || fail "bad$n: no file and line $1 in: $(cat "$T/bad.err")"
  grep -qF "$2" "$T/bad.err" || fail "bad$n: expected '$2' in: $(cat "$T/bad.err")"
  [ ! -e "$T/bad/r$n.db" ] || [ "$(sql "$T/bad/r$n.db" "SELECT count(*) FROM runs")" = 0 ] || fail "bad$n recorded a run"
  [ ! -e "$T/bad/trained" ] || fail "bad$n trained something"
}
echo 'train "t" { from = "base", datasets = { "rare" }, text_types = mixture { taxonomic = 0, common = 0 } }' |
  bad 4 "needs at least one positive weight"
echo 'train "t" { from = "base", datasets = { "rare" }, text_types = mixture { taxonomic = 1, latin = 1 } }' |
  bad 4 "unknown text type 'latin'"
echo 'train "t" { from = "base", datasets = { "rare" }, text_types = "latin" }' | bad 4 "unknown text type 'latin'"
echo 'train "t" { from = "base", datasets = { "nosplit" }, split = "train" }' | bad 4 "has no split column"
echo 'train "t" { from = "base", datasets = { { "rare", split = "validation" } } }' |
  bad 4 "dataset 'rare' has no row of split 'validation' (its splits: test, train)"
echo 'train "t" { from = "base", datasets = { } }' | bad 4 "needs datasets = { ... }"
echo 'train "t" { from = "base", datasets = { "rare" }, split = "train", batch_size = 37 }' |
  bad 4 "batch_size 37 is larger than the training set (36 examples)"
echo 'train "t" { from = "nobody", datasets = { "rare" } }' | bad 4 "from = 'nobody' is not a model declared above"
echo 'train "t" { from = "base", datasets = { "rare" }, draw = "epoch" }' | bad 4 'draw must be "batch"'
echo 'train "t" { from = "base", datasets = { "rare" }, seed = -1 }' | bad 4 "seed must be an integer in [0, 65535]"
echo 'train "t" { from = "base", datasets = { "rare" }, epoch = 3 }' | bad 4 "unknown field 'epoch'"
echo 'train "t" { from = "base", datasets = { "rare" }, templates = "nosuch" }' | bad 4 "unknown template set 'nosuch'"
printf 'train "t" { from = "base", datasets = { "rare" } }\ntrain "t" { from = "base", datasets = { "rare" } }\n' |
  bad 5 "a model of that name is already declared"
echo "test_train_dsl: ok"
