#!/usr/bin/env bash
# A training job (augmented, captions drawn per example) killed with kill -9 mid-training, in
# its second epoch (asserted: a state of some but not all of its steps was on disk, and no
# trained model), and rerun resumes from its last state and ends
# with the same bytes as a training never stopped, made apart: weights, optimizer state and
# draws, and the same loss at every step in the records. A training stopped by SIGTERM saves
# its state, is marked interrupted, and resumes the same way. The recorded draws (each epoch's
# order, each example's text type and template) equal Python's random as documented.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
export OMP_NUM_THREADS=1 # the two trainings run the same kernels on the same threads
"$CLADE" synth --out "$T/sample" >/dev/null 2>&1
# a split column: three rows in four train, the rest test
$PY - "$T/sample/data/rare_sample/metadata.csv" "$T/split.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
out = [rows[0] + ["split"]] + [r + ["train" if i % 4 else "test"] for i, r in enumerate(rows[1:])]
csv.writer(open(sys.argv[2], "w", newline="")).writerows(out)
PY
# 36 training rows, batch 6: 6 steps an epoch, 18 steps; a state every 2 steps and each epoch
cat > "$T/t.lua" <<EOF
model "base" { path = "$T/sample/model" }
dataset "rare" { root = "$T/sample/data/rare_sample", manifest = "$T/split.csv" }
train "mixed" {
  from = "base", datasets = { "rare" }, split = "train",
  text_types = mixture { taxonomic = 1, common = 1, scientific = 2 }, draw = "example",
  templates = { "a photo of {}.", "an image of {}." },
  epochs = 3, batch_size = 6, lr = 1e-4, warmup = 3, seed = 7, augment = true, save_every = 2, clip_grad = 1.0,
}
EOF
weights() { ls "$1"/trained/*/open_clip_model.safetensors 2>/dev/null | grep -v partial | head -1; }
losses() { $PY -c 'import sqlite3, sys; print("\n".join("%d %r %r %s" % r for r in sqlite3.connect(sys.argv[1]).execute("SELECT step, loss, lr, draws FROM train_steps ORDER BY step")))' "$1"; }

mkdir -p "$T/clean" "$T/k"
"$CLADE" run "$T/t.lua" --db "$T/clean/r.db" --quiet 2>"$T/clean.err" || fail "clean training: $(cat "$T/clean.err")"
A=$(weights "$T/clean")
[ -n "$A" ] || fail "the clean training left no model: $(ls -R "$T/clean")"
[ "$(losses "$T/clean/r.db" | wc -l)" = 18 ] || fail "the clean training recorded $(losses "$T/clean/r.db" | wc -l) steps, not 18"

# the draws are Python's random as cl_train_job.h documents them: each epoch's order
# random.seed(2**62 + seed * 2**40 + epoch) then shuffle; each step's captions
# random.seed(seed * 2**40 + step), then per example random.choices(types, weights) and
# random.randrange(templates)
$PY - "$T/clean/r.db" <<'PY' || fail "the recorded draws are not Python's random as documented"
import json, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
mix, spec, n = db.execute("SELECT mixture_json, spec_json, n_examples FROM train_jobs").fetchone()
mix, spec = json.loads(mix), json.loads(spec)
seed, B, weights = spec["seed"], spec["batch_size"], [m["weight"] for m in mix]
nb, checked = n // B, 0
for step, draws in db.execute("SELECT step, draws FROM train_steps ORDER BY step"):
    d = json.loads(draws)
    epoch, b0 = divmod(step, nb)
    random.seed(2**62 + seed * 2**40 + epoch)
    rows = list(range(n))
    random.shuffle(rows)
    random.seed(seed * 2**40 + step)
    types, tmpl = [], []
    for _ in range(B):
        types.append(random.choices(range(len(mix)), weights)[0])
        tmpl.append(random.randrange(len(spec["templates"])))
    assert d == {"rows": rows[b0 * B:b0 * B + B], "types": types, "templates": tmpl}, (step, d, rows, types, tmpl)
    checked += 1
assert checked == 18 and len({t for s in db.execute("SELECT draws FROM train_steps") for t in json.loads(s[0])["types"]}) == 3
PY

# kill -9 once a state of 8..16 of the 18 steps is on disk (mid-epoch, after the first epoch)
"$CLADE" run "$T/t.lua" --db "$T/k/r.db" --quiet 2>/dev/null &
pid=$!
landed=$(kill_at_state $pid 8 16 "$T/k/trained/*.partial/state")
wait $pid 2>/dev/null || true
[ -n "$landed" ] || fail "the kill never landed mid-training"
[ -z "$(weights "$T/k")" ] || fail "the killed training had finished already"
now=$(cat "$T"/k/trained/*.partial/state)
[ "${now#state-}" -lt 18 ] || fail "the killed training's state is $now: not mid-run"
echo "killed with $now of 18 steps on disk"
# clade log lists the killed training's work folder with its size and the command removing it
"$CLADE" log --db "$T/k/r.db" > "$T/k.log"
key=$(basename "$T"/k/trained/*.partial .partial)
grep -q "^  ${key:0:12}\.partial  [0-9.]* [kMG]B  train 'mixed' (run 1, running, [0-9]* of 18 steps)\$" "$T/k.log" &&
  grep -q "^    remove: rm -rf '$T/k/trained/$key.partial'\$" "$T/k.log" || fail "clade log: $(cat "$T/k.log")"

# a kill between a state and its records loses the records of the state's last steps: the
# rerun records them again from the state
$PY -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM train_steps WHERE step >= 3"); c.commit()' "$T/k/r.db"
"$CLADE" run "$T/t.lua" --db "$T/k/r.db" 2>"$T/k.err" || fail "rerun after kill -9: $(cat "$T/k.err")"
grep -q "resumed from step ${now#state-} of 18" "$T/k.err" || fail "the rerun did not resume from $now: $(cat "$T/k.err")"
B=$(weights "$T/k")
[ -n "$B" ] || fail "the resumed training left no model"
for f in open_clip_model.safetensors optimizer.safetensors draws.safetensors open_clip_config.json; do
  cmp "$(dirname "$A")/$f" "$(dirname "$B")/$f" || fail "$f differs from the uninterrupted training's"
done
[ "$(basename "$(dirname "$A")")" = "$(basename "$(dirname "$B")")" ] || fail "the two trainings have different content keys"
diff <(losses "$T/clean/r.db") <(losses "$T/k/r.db") >&2 || fail "the recorded steps differ from the uninterrupted training's"
ls -d "$T"/k/trained/*.partial 2>/dev/null && fail "the work folder was left behind"
"$CLADE" log --db "$T/k/r.db" | grep -q "unfinished trainings" && fail "clade log lists a finished training"
intact "$T/k/r.db"

# SIGTERM: the state is saved at once, the job is marked interrupted, a rerun resumes
mkdir -p "$T/s"
"$CLADE" run "$T/t.lua" --db "$T/s/r.db" --quiet 2>"$T/s.err" &
pid=$!
for _ in $(seq 1 3000); do
  [ -n "$(cat "$T"/s/trained/*.partial/state 2>/dev/null || true)" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.02
done
kill -TERM $pid
rc=0
wait $pid || rc=$?
if [ -n "$(weights "$T/s")" ]; then
  echo "SIGTERM came after the last step: nothing to resume" >&2
else
  [ $rc = 143 ] || fail "SIGTERM: exit $rc, not 143: $(cat "$T/s.err")"
  [ "$($PY -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT status FROM train_jobs").fetchone()[0])' "$T/s/r.db")" = interrupted ] ||
    fail "the stopped training is not marked interrupted"
  "$CLADE" run "$T/t.lua" --db "$T/s/r.db" 2>"$T/s2.err" || fail "rerun after SIGTERM: $(cat "$T/s2.err")"
  grep -q "resumed from step" "$T/s2.err" || fail "the rerun after SIGTERM did not resume: $(cat "$T/s2.err")"
fi
cmp "$A" "$(weights "$T/s")" || fail "weights after SIGTERM and rerun differ from the uninterrupted training's"
[ "$($PY -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*), max(status) FROM train_jobs").fetchone())' "$T/s/r.db")" = "(1, 'complete')" ] ||
  fail "the resumed training is not one complete job"
echo "test_train_kill_resume: ok"
