#!/usr/bin/env bash
# clade compare, the regression gate: a rerun compares 'same' (exit 0); a planted regression
# (few-shot on degraded embeddings, same experiment and model names) is 'regressed' (exit 1)
# with the McNemar p an independent computation gives; a change inside min-delta or inside the
# noise passes (exit 0); without predictions the few-shot test falls back to a paired t-test;
# runs on different backends or precisions compare with a warning naming both; a side that
# cannot be found exits 2 with one stderr line; git revisions resolve through the
# repository of the current folder to the latest complete run at that commit.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}" "${CLADE_FIXTURES:?}"
PY=/usr/bin/python3
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: needs Debian's python3-numpy (ci/deps installs it)" >&2; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" --per-class 10 >/dev/null 2>&1
cd "$T"
OUT="$T/out.txt" ERR="$T/err.txt"

# expect CODE ARGS...: clade compare's exit status; stdout in "$OUT", stderr in "$ERR"
expect() {
  local want=$1; shift
  set +e
  "$CLADE" compare "$@" >"$OUT" 2>"$ERR"
  local rc=$?
  set -e
  [ "$rc" = "$want" ] || { cat "$ERR" >&2; fail "compare $* exited $rc, expected $want"; }
}
# expect2 ARGS...: a tool error: exit 2, nothing on stdout, one line on stderr
expect2() {
  expect 2 "$@"
  [ -s "$OUT" ] && fail "compare $* wrote to stdout: $(head -c 200 "$OUT")"
  [ "$(wc -l <"$ERR")" = 1 ] || fail "compare $*: expected one stderr line, got: $(cat "$ERR")"
  return 0
}
# verdicts FILE.json: "verdict:count ..." sorted
verdicts() { $PY -c 'import json,sys,collections; c=collections.Counter(r["verdict"] for r in json.load(open(sys.argv[1]))); print(" ".join(f"{k}:{v}" for k,v in sorted(c.items())))' "$1"; }

# ---- 1. the same experiment twice: every cell 'same', exit 0 ----
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --db r.db --quiet 2>/dev/null
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --db r.db --quiet 2>/dev/null
expect 0 1 2 --db r.db
grep -q '^experiment  *model  *dataset  *protocol  *text_type  *shots  *base  *head  *delta  *p  *verdict$' "$OUT" || fail "table header: $(cat "$OUT")"
[ "$(grep -c ' same$' "$OUT")" = 7 ] || fail "7 cells 'same' expected: $(cat "$OUT")"
grep -q '^0 regressed, 0 improved, 7 same' "$OUT" || fail "table summary: $(tail -1 "$OUT")"
expect 0 1 2 --db r.db --format json
cp "$OUT" same.json
[ "$(verdicts same.json)" = "same:7" ] || fail "json verdicts: $(verdicts same.json)"
$PY - same.json <<'PY' || fail "json fields"
import json, sys
rows = json.load(open(sys.argv[1]))
for r in rows:
    for k in ("experiment", "model", "dataset", "protocol", "text_type", "shots", "base", "head", "delta", "p_value", "verdict"):
        assert k in r, (k, r)
    assert r["delta"] == 0 and r["p_value"] == 1 and r["test"] == "mcnemar", r
    assert r["n_pairs"] > 0 and r["base_only_correct"] == 0 and r["head_only_correct"] == 0, r
zs = [r for r in rows if r["protocol"] == "zero_shot"]
assert len(zs) == 3 and all(r["n_pairs"] == 80 for r in zs), zs
PY
# top-5 pairs each example's hit <= 5 (predictions.hit, schema 8): McNemar on the zero-shot cells
expect 0 1 2 --db r.db --format json --metric top5
$PY - "$OUT" <<'PY' || fail "top5 not paired: $(head -c 600 "$OUT")"
import json, sys
zs = [r for r in json.load(open(sys.argv[1])) if r["protocol"] == "zero_shot"]
assert len(zs) == 3 and all(r["metric"] == "top5" and r["test"] == "mcnemar" and r["n_pairs"] == 80 and r["p_value"] == 1 for r in zs), zs
PY
expect 0 1 2 --db r.db --format markdown
head -1 "$OUT" | grep '^\*\*clade compare: no significant regression\*\*' >/dev/null || fail "markdown summary: $(head -1 "$OUT")"
grep -q '^| experiment | model | dataset | protocol | text type | shots |' "$OUT" || fail "markdown table"
[ "$(grep -c '^| quickstart' "$OUT")" = 7 ] || fail "markdown rows: $(cat "$OUT")"
if grep -q "the deltas include" "$ERR"; then fail "settings warning between two fp32 cpu runs: $(cat "$ERR")"; fi
# the same runs, head recorded as bf16: compared, with a warning naming both settings
cp r.db prec.db
$PY -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update runs set precision=? where id=2", ("bf16",)); c.commit()' prec.db
expect 0 1 2 --db prec.db
grep -q "base run 1 computed on cpu/fp32, head run 2 on cpu/bf16: the deltas include that change" "$ERR" ||
  fail "no settings warning: $(cat "$ERR")"

# ---- 2. a features model: good, degraded, nearly identical, and re-noised embeddings ----
mkdir -p toy
$PY - "$T/toy" <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(os.environ["CLADE_FIXTURES"], "tools"))
import st
out = sys.argv[1]
rng = np.random.default_rng(7)
C, M, D = 10, 20, 32
labels = np.repeat(np.arange(C), M)
rng.shuffle(labels)
centers = rng.standard_normal((C, D))
def feats(scale, seed):
    noise = np.random.default_rng(seed).standard_normal((len(labels), D))
    return (centers[labels] + scale * noise).astype(np.float32)
good = feats(0.8, 1)
st.save(f"{out}/good.safetensors", {"image_embeddings": good})
st.save(f"{out}/bad.safetensors", {"image_embeddings": feats(2.0, 2)})
# a small change: a little noise on every embedding flips a few predictions
tiny = good + (0.1 * np.random.default_rng(3).standard_normal(good.shape)).astype(np.float32)
st.save(f"{out}/tiny.safetensors", {"image_embeddings": tiny})
# the same noise level drawn twice: accuracy moves, but not beyond chance
st.save(f"{out}/midA.safetensors", {"image_embeddings": feats(1.1, 11)})
st.save(f"{out}/midB.safetensors", {"image_embeddings": feats(1.1, 12)})
with open(f"{out}/metadata.csv", "w") as f:
    f.write("filepath,class\n")
    for i, y in enumerate(labels):
        f.write(f"img{i:04d}.jpg,Genus{y} species{y}\n")
PY
cat > toy.lua <<'LUA'
model "feats" { features = getenv("CLADE_TEST_FEATS") }
dataset "toy" { root = getenv("CLADE_TEST_TOY"), manifest = "metadata.csv" }
experiment "toy-few-shot" { models = { "feats" }, datasets = { "toy" },
                            protocol = few_shot { shots = { 1, 5 }, trials = 5 } }
LUA
export CLADE_TEST_TOY="$T/toy"
toyrun() { CLADE_TEST_FEATS="$T/toy/$2.safetensors" "$CLADE" run "$3" --db "$1" --quiet 2>/dev/null || fail "toy run $2"; }
toyrun f.db good toy.lua   # run 1
toyrun f.db bad toy.lua    # run 2
toyrun f.db tiny toy.lua   # run 3
toyrun f.db midA toy.lua   # run 4
toyrun f.db midB toy.lua   # run 5

# the planted regression
expect 1 1 2 --db f.db
[ "$(grep -c ' regressed$' "$OUT")" = 2 ] || fail "two regressed cells expected: $(cat "$OUT")"
grep -q 'regressed significantly' "$ERR" || fail "no stderr summary: $(cat "$ERR")"
expect 1 1 2 --db f.db --format json
cp "$OUT" reg.json
[ "$(verdicts reg.json)" = "regressed:2" ] || fail "json verdicts: $(verdicts reg.json)"
# b, c and p against the database and an exact binomial computed here, independently
$PY - reg.json f.db <<'PY' || fail "McNemar statistics"
import json, math, sqlite3, sys
rows = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
def correct(run, shots):
    q = ("SELECT p.trial, p.filepath, p.correct FROM predictions p JOIN evaluations v ON v.id = p.eval_id"
         " WHERE v.run_id = ? AND v.shots = ?")
    return {(t, f): c for t, f, c in db.execute(q, (run, shots))}
for r in rows:
    a, h = correct(1, r["shots"]), correct(2, r["shots"])
    keys = a.keys() & h.keys()
    b = sum(1 for k in keys if a[k] and not h[k])
    c = sum(1 for k in keys if h[k] and not a[k])
    n, k = b + c, min(b, c)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    assert r["test"] == "mcnemar" and r["n_pairs"] == len(keys), r
    assert (r["base_only_correct"], r["head_only_correct"]) == (b, c), (r, b, c)
    assert abs(r["p_value"] - p) <= 1e-9 * max(p, 1e-300) + 1e-300, (r["p_value"], p)
    assert r["delta"] <= -0.1 and r["p_value"] < 1e-6, r
    # trials of 1 and 5 shots: 10 classes x (20 - k) queries each, 5 trials
    assert len(keys) == 5 * 10 * (20 - r["shots"]), len(keys)
PY
expect 1 1 2 --db f.db --format markdown
head -1 "$OUT" | grep '^\*\*clade compare: significant regression\*\*' >/dev/null || fail "markdown summary: $(head -1 "$OUT")"
[ "$(grep -c '| \*\*regressed\*\* |$' "$OUT")" = 2 ] || fail "markdown regressed rows: $(cat "$OUT")"
# the reverse is an improvement, which never fails the gate
expect 0 2 1 --db f.db --format json
[ "$(verdicts "$OUT")" = "improved:2" ] || fail "reverse: $(verdicts "$OUT")"
# a bar higher than the drop: same
expect 0 1 2 --db f.db --min-delta 0.9

# a small change passes: below min-delta, or a few flips the test cannot tell from chance
expect 0 1 3 --db f.db --format json
[ "$(verdicts "$OUT")" = "same:2" ] || fail "tiny change: $(cat "$OUT")"
$PY - "$OUT" <<'PY' || fail "small change: expected a few flipped predictions, |delta| < 1 point"
import json, sys
rows = json.load(open(sys.argv[1]))
assert all(abs(r["delta"]) < 0.01 for r in rows), rows
assert sum(r["base_only_correct"] + r["head_only_correct"] for r in rows) > 0, rows
PY
# the same noise drawn twice passes, even with no minimum delta: the test finds no effect
expect 0 4 5 --db f.db --min-delta 0 --format json
cp "$OUT" noise.json
[ "$(verdicts noise.json)" = "same:2" ] || fail "re-noised: $(cat noise.json)"
$PY - noise.json <<'PY' || fail "re-noised embeddings: expected discordant pairs both ways and p >= 0.05"
import json, sys
for r in json.load(open(sys.argv[1])):
    assert r["base_only_correct"] > 10 and r["head_only_correct"] > 10 and r["p_value"] >= 0.05, r
PY
# a stricter alpha than the planted regression's p turns it into 'same'
expect 0 1 2 --db f.db --alpha 1e-300

# without predictions: a paired t-test over the 5 trial accuracies
cp f.db np.db
$PY -c 'import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute("DELETE FROM predictions"); d.commit()' np.db
expect 1 1 2 --db np.db --format json
"$CLADE" results --db np.db --run 1 --format json >t1.json
"$CLADE" results --db np.db --run 2 --format json >t2.json
$PY - "$OUT" t1.json t2.json <<'PY' || fail "paired t fallback: $(cat "$OUT")"
import json, math, sys
rows = json.load(open(sys.argv[1]))
def trials(path, shots):
    return {r["trial"]: r["value"] for r in json.load(open(path))
            if r["shots"] == shots and r["metric"] == "top1" and r["trial"] != "all"}
def t_tail(t, nu, steps=20000):  # 2 P[T > |t|], Simpson's rule over x = |t| + tan(u)
    c = math.gamma((nu + 1) / 2) / (math.sqrt(nu * math.pi) * math.gamma(nu / 2))
    f = lambda u: c * (1 + (abs(t) + math.tan(u)) ** 2 / nu) ** (-(nu + 1) / 2) / math.cos(u) ** 2
    h = (math.pi / 2 - 1e-9) / steps
    s = f(0) + f(steps * h) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 2 * s * h / 3
for r in rows:
    assert r["test"] == "paired_t" and r["n_pairs"] == 5 and r["verdict"] == "regressed", r
    a, b = trials(sys.argv[2], r["shots"]), trials(sys.argv[3], r["shots"])
    d = [b[k] - a[k] for k in sorted(a)]
    m = sum(d) / len(d)
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))
    p = t_tail(m / (sd / math.sqrt(len(d))), len(d) - 1)
    assert abs(r["p_value"] - p) <= 1e-6 * p, (r["p_value"], p)
PY
expect 0 1 1 --db np.db --format json
[ "$(verdicts "$OUT")" = "same:2" ] || fail "paired t, same run: $(cat "$OUT")"

# cells on one side only: added / removed, not a failure
expect 0 1 2 --db r.db --format json
CLADE_TEST_FEATS="$T/toy/good.safetensors" "$CLADE" run toy.lua --db r.db --quiet 2>/dev/null
last=$("$CLADE" log --db r.db --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
expect 0 2 "$last" --db r.db --format json
[ "$(verdicts "$OUT")" = "added:2 removed:7" ] || fail "added/removed: $(verdicts "$OUT")"

# ---- 3. sides that cannot be found: exit 2, one line ----
expect2 1 99 --db f.db
grep -q 'no run 99' "$ERR" || fail "unknown run: $(cat "$ERR")"
expect2 99 1 --db f.db
expect2 no-such-revision 1 --db f.db          # $T is no git repository
grep -q 'not inside a git repository' "$ERR" || fail "outside a repo: $(cat "$ERR")"
expect2 1 2 --db missing.db
grep -q 'missing.db' "$ERR" || fail "missing db: $(cat "$ERR")"
expect 2 1 --db f.db
expect 2 1 2 3 --db f.db
expect 2 1 2 --db f.db --format xml
expect 2 1 2 --db f.db --alpha 0
expect 2 1 2 --db f.db --min-delta -1

# ---- 4. git revisions ----
mkdir repo
cp toy.lua repo/exp.lua
export GIT_AUTHOR_NAME=clade GIT_AUTHOR_EMAIL=clade@example.invalid GIT_COMMITTER_NAME=clade GIT_COMMITTER_EMAIL=clade@example.invalid
(
  cd repo
  git init -q .
  git add exp.lua
  git commit -qm base
  toyrun "$T/g.db" good exp.lua
  toyrun "$T/g.db" good exp.lua     # a rerun at the same commit: the latest is taken
  echo "head" > NOTES
  git add NOTES
  git commit -qm head
  toyrun "$T/g.db" bad exp.lua
  # runs recorded the full commit of the repository holding the file
  [ "$("$CLADE" log --db "$T/g.db" --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)[-1]["commit"])')" = "$(git rev-parse HEAD)" ] || fail "run commit"
  expect 0 HEAD HEAD --db "$T/g.db"
  grep -q "^base: run 3: commit $(git rev-parse --short=7 HEAD) from 'HEAD', complete" "$OUT" || fail "HEAD side: $(head -2 "$OUT")"
  expect 0 HEAD~1 HEAD~1 --db "$T/g.db" --format json
  [ "$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r[0]["base_run"], r[0]["head_run"])' "$OUT")" = "2 2" ] || fail "HEAD~1 is run 2: $(head -c 300 "$OUT")"
  expect 1 HEAD~1 HEAD --db "$T/g.db"
  [ "$(grep -c ' regressed$' "$OUT")" = 2 ] || fail "git sides: $(cat "$OUT")"
  expect 1 "$(git rev-parse HEAD~1)" 3 --db "$T/g.db"
  expect 0 1 HEAD~1 --db "$T/g.db"
  expect2 no-such-revision HEAD --db "$T/g.db"
  grep -q "no-such-revision" "$ERR" || fail "bad revision: $(cat "$ERR")"
  echo more >> NOTES
  git commit -qam "no run here"
  expect2 HEAD~1 HEAD --db "$T/g.db"
  grep -q 'no run recorded at commit' "$ERR" || fail "commit without run: $(cat "$ERR")"
  expect2 'HEAD:exp.lua' HEAD~1 --db "$T/g.db"   # a blob, not a commit
)
echo "test_compare: ok"
