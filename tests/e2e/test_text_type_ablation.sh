#!/usr/bin/env bash
# experiments/text_type_ablation.lua runs as ./ci/demo runs it (CLADE_ABLATION=short), cut to
# one epoch per training: four trainings from the sample model on tree_sample's train split
# (common, scientific, taxonomic, and the mixture of all five text types), each recorded
# complete with its 12 steps and a loss that fell, then each trained model tested zero-shot
# with all five text types on seen and held-out species (40 cells, top-1 a fraction).
set -euo pipefail
: "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" >/dev/null 2>&1 || fail "synth"
CLADE_ABLATION=short CLADE_ABLATION_EPOCHS=1 "$CLADE" run "$CLADE_SRC/experiments/text_type_ablation.lua" \
  --db "$T/a.db" --quiet 2> "$T/err" || { cat "$T/err" >&2; fail "the ablation run"; }
"$CLADE" results --db "$T/a.db" --format csv > "$T/r.csv" || fail "results"
$PY - "$T/a.db" "$T/r.csv" <<'PY' || fail "the ablation's records"
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
jobs = db.execute("SELECT id, name, status, steps, steps_done, n_examples, mixture_json FROM train_jobs ORDER BY id").fetchall()
assert [j[1] for j in jobs] == ["tree-common", "tree-scientific", "tree-taxonomic", "tree-mixed"], jobs
for id_, name, status, steps, done, n, mix in jobs:
    assert status == "complete" and steps == done == 12 and n == 192, (name, status, steps, done, n)
    loss = [l for (l,) in db.execute("SELECT loss FROM train_steps WHERE train_id = ? ORDER BY step", (id_,))]
    assert len(loss) == 12 and loss[-1] < loss[0], (name, loss)
assert all(t in jobs[3][6] for t in ("common", "scientific", "taxonomic", "scientific_common", "taxonomic_common")), jobs[3][6]
rows = [r for r in csv.DictReader(open(sys.argv[2])) if r["metric"] == "top1" and r["trial"] == "all"]
cells = {(r["model"], r["dataset"], r["text_type"]): float(r["value"]) for r in rows}
types = ["common", "scientific", "taxonomic", "scientific_common", "taxonomic_common"]
want = {(j[1], d, t) for j in jobs for d in ("tree-seen", "tree-unseen") for t in types}
assert set(cells) == want, sorted(set(cells) ^ want)[:5]
assert all(0 <= v <= 1 for v in cells.values())
n = {(r["dataset"]): int(r["n"]) for r in rows}
assert n == {"tree-seen": 96, "tree-unseen": 48}, n
print("4 trainings of 12 steps, loss falling; 40 zero-shot cells")
PY
echo "test_text_type_ablation: ok"
