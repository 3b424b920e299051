#!/usr/bin/env bash
# A results database in a read-only directory (a read-only mount as root, chmod otherwise) is
# read by results, predictions, log, compare and report, as it reads where it was written:
# after a clean close (no -wal: opened immutable) and after a writer died (its -wal and -shm
# left beside it: read through them, the newest rows included).
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
private_mounts "$0" "$@"
sample_zero_shot
mkdir -p "$T/ro" "$T/rw"
"$CLADE" run "$T/x.lua" --db "$T/ro/r.db" --quiet 2>/dev/null
"$CLADE" run "$T/x.lua" --db "$T/ro/r.db" --quiet 2>/dev/null
# a writer killed with rows in its -wal: a copy of the files taken while one is open
$PY - "$T/ro/r.db" "$T/rw" <<'PY'
import shutil, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE runs SET file = 'renamed.lua' WHERE id = 2"); db.commit()
for sfx in ("", "-wal", "-shm"): shutil.copy(sys.argv[1] + sfx, sys.argv[2] + "/r.db" + sfx)
db.execute("UPDATE runs SET file = (SELECT file FROM runs WHERE id = 1) WHERE id = 2"); db.commit()
PY
[ -s "$T/rw/r.db-wal" ] || fail "the copy holds no -wal"
reads() { # every reading command on $1 (&&: a function under || runs without set -e)
  "$CLADE" results --db "$1" --format csv &&
    "$CLADE" predictions --db "$1" --run 1 --format csv &&
    "$CLADE" log --db "$1" --format json &&
    "$CLADE" compare 1 2 --db "$1" --format json &&
    { "$CLADE" report --db "$1" --out "$T/report.html" 2>"$T/report.err" >/dev/null || { cat "$T/report.err" >&2; false; }; }
}
reads "$T/ro/r.db" > "$T/ro.want"
reads "$T/rw/r.db" > "$T/rw.want"
grep -q renamed.lua "$T/rw.want" || fail "the copied -wal's rows are not read"
read_only "$T/ro" "$T/rw"
touch "$T/ro/probe" 2>/dev/null && fail "the folder is still writable"
for d in ro rw; do
  reads "$T/$d/r.db" > "$T/$d.got" 2> "$T/err" || fail "reading in a read-only folder ($d): $(cat "$T/err")"
  diff -q "$T/$d.want" "$T/$d.got" >/dev/null || { diff "$T/$d.want" "$T/$d.got" | head -5 >&2; fail "$d: read differently"; }
done
[ ! -e "$T/ro/r.db-wal" ] || fail "a -wal appeared"
# writing there is refused with the reason, before any work
if "$CLADE" run "$T/x.lua" --db "$T/ro/r.db" 2> "$T/err"; then fail "a run into a read-only folder succeeded"; fi
grep -q "r.db: .*not writable" "$T/err" || fail "no clear refusal: $(cat "$T/err")"
echo "test_results_readonly: results, predictions, log, compare and report read a read-only folder"
