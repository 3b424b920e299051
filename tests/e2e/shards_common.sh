# Shared by test_shards.sh and test_slurm.sh (sourced): the sample suite as one experiment
# file, a run's rows without ids, and integrity checks. Needs T, CLADE, CLADE_SRC.
fail() { echo "FAIL: $*" >&2; exit 1; }

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

# rows DB [RUN]: every row of every table that references evaluations (results,
# predictions, support, and any added later), keyed by the evaluation's cell instead of ids,
# sorted; RUN defaults to the latest run.
rows() {
  python3 - "$1" "${2:-}" <<'PY'
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

# integrity DB...: PRAGMA integrity_check is ok on each.
integrity() {
  for db in "$@"; do
    [ -e "$db" ] || continue
    python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0]; sys.exit(0 if r=="ok" else print(sys.argv[1], r) or 1)' "$db" ||
      fail "integrity_check failed on $db"
  done
}

# status DB [RUN]: the run's status.
run_status() {
  python3 -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); print(d.execute("SELECT status FROM runs WHERE id = coalesce(?, (SELECT max(id) FROM runs))", (sys.argv[2] or None,)).fetchone()[0])' "$1" "${2:-}"
}
