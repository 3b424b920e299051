# Shared by test_shards.sh and test_slurm.sh (sourced, after tests/lib/common.sh): the sample
# suite as one experiment file, every row a run's evaluations hold, integrity of many files.

# $T/x.lua: quickstart + sample_ablation on the sample suite in $CLADE_SAMPLE (6 jobs).
make_experiment() {
  export CLADE_SAMPLE="$T/sample"
  "$CLADE" synth --out "$CLADE_SAMPLE" "$@" >/dev/null 2>&1
  cat "$CLADE_SRC/experiments/quickstart.lua" "$CLADE_SRC/experiments/sample_ablation.lua" |
    grep -v '^model "sample-clip"\|^dataset "rare-sample"\|^local sample' > "$T/body.lua"
  { echo 'local sample = getenv("CLADE_SAMPLE")'
    echo 'model "sample-clip" { path = sample .. "/model" }'
    echo 'dataset "rare-sample" { root = sample .. "/data/rare_sample" }'
    cat "$T/body.lua"; } > "$T/x.lua"
}

# cell_rows DB [RUN]: every row of every table that references evaluations (results,
# predictions, support, and any added later), keyed by the evaluation's cell instead of ids,
# sorted; RUN defaults to the latest run.
cell_rows() {
  $PY - "$1" "${2:-}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run = int(sys.argv[2]) if sys.argv[2] else db.execute("SELECT max(id) FROM runs").fetchone()[0]
ecols = [r[1] for r in db.execute("PRAGMA table_info(evaluations)") if r[1] not in ("id", "run_id", "created_at")]
kids = [(t, f["from"]) for (t,) in db.execute("SELECT name FROM sqlite_schema WHERE type='table'")
        for f in [dict(zip([d[0] for d in c.description], row)) for c in [db.execute(f"PRAGMA foreign_key_list({t})")] for row in c.fetchall()]
        if f["table"] == "evaluations"]
out = []
for t, fk in sorted(kids):
    cols = [r[1] for r in db.execute(f"PRAGMA table_info({t})") if r[1] != fk]
    q = (f"SELECT {', '.join('e.' + c for c in ecols)}, {', '.join('x.' + c for c in cols)} FROM {t} x"
         f" JOIN evaluations e ON e.id = x.{fk} WHERE e.run_id = ?")
    out += [t + "|" + "|".join(repr(v) for v in r) for r in db.execute(q, (run,))]
for line in sorted(out):
    print(line)
PY
}

# integrity DB...: PRAGMA integrity_check is ok on each that exists.
integrity() {
  for db in "$@"; do [ ! -e "$db" ] || intact "$db"; done
}

# run_status DB [RUN]: the run's status (default: the latest run).
run_status() {
  $PY -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(d.execute("SELECT status FROM runs WHERE id = coalesce(?, (SELECT max(id) FROM runs))", (sys.argv[2] or None,)).fetchone()[0])' "$1" "${2:-}"
}
