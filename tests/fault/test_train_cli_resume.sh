#!/usr/bin/env bash
# clade train --save-every N, killed with kill -9 mid-training (asserted: a saved state of
# some but not all steps) and rerun with --resume: the same bytes as a training never
# stopped, and the JSON log goes on from the step it resumed at. --resume with other
# arguments is refused naming the state; without a state it starts from the model.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
source "$CLADE_SRC/tests/lib/common.sh"
export OMP_NUM_THREADS=1
"$CLADE" synth --out "$T/sample" >/dev/null 2>&1
IMGS=$(ls "$T"/sample/data/rare_sample/images/*.jpg | head -8)
$PY - "$T/sample/data/rare_sample/metadata.csv" "$T/texts.txt" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))[:8]
open(sys.argv[2], "w").write("".join("a photo of %s %s.\n" % (r["genus"], r["species"]) for r in rows))
PY
args=(--model "$T/sample/model" --images $IMGS --texts "$T/texts.txt" --steps 12 --lr 1e-4 --warmup 2 --batch-size 4)
"$CLADE" train "${args[@]}" --json-log --out "$T/a" > "$T/a.log" 2>/dev/null || fail "clean training"
[ "$(wc -l < "$T/a.log")" = 12 ] || fail "the clean training logged $(wc -l < "$T/a.log") steps"

"$CLADE" train "${args[@]}" --save-every 2 --json-log --out "$T/b" > /dev/null 2>&1 &
pid=$!
landed=$(kill_at_state $pid 2 8 "$T/b/.state/state")
wait $pid 2>/dev/null || true
[ -n "$landed" ] || fail "the kill never landed mid-training"
now=$(cat "$T/b/.state/state")
[ ! -e "$T/b/open_clip_model.safetensors" ] || fail "the killed training had written its result"
echo "killed with $now of 12 steps saved"

# other arguments: refused, naming the state
if "$CLADE" train "${args[@]/1e-4/2e-4}" --resume --save-every 2 --out "$T/b" 2>"$T/err" >/dev/null; then
  fail "--resume with another lr was accepted"
fi
grep -q "$T/b/.state/$now was saved by a training with other inputs" "$T/err" || fail "refusal: $(cat "$T/err")"

"$CLADE" train "${args[@]}" --resume --save-every 2 --json-log --out "$T/b" > "$T/b.log" 2>"$T/err" || fail "--resume: $(cat "$T/err")"
grep -q "resuming from step ${now#state-} of 12" "$T/err" || fail "did not resume from $now: $(cat "$T/err")"
[ "$(head -1 "$T/b.log" | $PY -c 'import json, sys; print(json.load(sys.stdin)["step"])')" = "${now#state-}" ] ||
  fail "the resumed log starts at $(head -1 "$T/b.log")"
diff <(tail -n "$(wc -l < "$T/b.log")" "$T/a.log") "$T/b.log" >&2 || fail "the resumed steps' log differs from the clean training's"
for f in open_clip_model.safetensors optimizer.safetensors open_clip_config.json; do
  cmp "$T/a/$f" "$T/b/$f" || fail "$f differs from the uninterrupted training's"
done
[ ! -e "$T/b/.state" ] || fail "the states were left behind"

# --resume with nothing saved: a full training, the same result
"$CLADE" train "${args[@]}" --resume --out "$T/c" 2>"$T/err" >/dev/null || fail "--resume without a state: $(cat "$T/err")"
grep -q "no saved state" "$T/err" || fail "no note that there was nothing to resume: $(cat "$T/err")"
cmp "$T/a/open_clip_model.safetensors" "$T/c/open_clip_model.safetensors" || fail "a fresh --resume differs"
echo "test_train_cli_resume: ok"
