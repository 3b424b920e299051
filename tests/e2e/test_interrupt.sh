#!/usr/bin/env bash
# Ctrl-C: the first SIGINT stops after the evaluation in flight and marks the run
# interrupted (exit 130); running the file again resumes it to a complete run.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" --per-class 60 >/dev/null 2>&1
set +e
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --db "$T/r.db" 2> "$T/err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
set -e
if [ $rc -eq 0 ] || "$CLADE" log --db "$T/r.db" | grep "complete" >/dev/null; then
  echo "SKIP: the run finished before the signal arrived" >&2
  exit 77
fi
[ $rc -eq 130 ] || { cat "$T/err"; fail "exit $rc after Ctrl-C, want 130"; }
grep -q "stopping after the evaluation in flight" "$T/err" || fail "no notice: $(cat "$T/err")"
"$CLADE" log --db "$T/r.db" | grep "interrupted" >/dev/null || fail "run not marked interrupted: $("$CLADE" log --db "$T/r.db")"
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --db "$T/r.db" 2> "$T/err2" || fail "resume failed: $(cat "$T/err2")"
grep -q "resuming the unfinished run 1" "$T/err2" || fail "did not resume: $(cat "$T/err2")"
"$CLADE" log --db "$T/r.db" | grep "^1 .*complete" >/dev/null || fail "resumed run not complete: $("$CLADE" log --db "$T/r.db")"
echo "test_interrupt: ok"
