#!/usr/bin/env bash
# clade report: one self-contained HTML file (no URL, no script), the four SVG plots or a note
# where a plot has no data, every name escaped; then headless Chromium renders it with no
# console error and takes a non-trivial screenshot. Without chromium: skip (exit 77) after the
# static checks.
set -euo pipefail
: "${CLADE:?}" "${CLADE_SRC:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export CLADE_SAMPLE="$T/sample"
"$CLADE" synth --out "$CLADE_SAMPLE" --per-class 10 >/dev/null 2>&1
cd "$T"

# two runs with zero-shot and few-shot cells: history has two points per cell
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --db r.db --quiet 2>/dev/null
"$CLADE" run "$CLADE_SRC/experiments/quickstart.lua" --db r.db --quiet 2>/dev/null
"$CLADE" report --db r.db --out report.html >out.txt 2>err.txt || { cat err.txt; fail "report"; }
[ -s out.txt ] && fail "report wrote to stdout: $(head -c 200 out.txt)"
grep -q 'report.html' err.txt || fail "report does not say where it wrote: $(cat err.txt)"
[ -s report.html ] || fail "no report.html"
ls report.html.tmp.* >/dev/null 2>&1 && fail "temporary file left behind"

# static: self-contained, four plots, the run's tables
check_static() { # FILE N_SVG N_OMITTED
  local f=$1
  grep -Eiq 'https?://' "$f" && fail "$f references a URL: $(grep -Eio '.{30}https?://.{30}' "$f" | head -3)"
  grep -qi '<script' "$f" && fail "$f holds a script"
  # every src/href is a fragment or the empty data: icon
  bad=$(grep -Eio '(src|href)="[^"]*"' "$f" | grep -Ev '^(src|href)="(#[^"]*|data:,)"$' || true)
  [ -z "$bad" ] || fail "$f links out: $bad"
  [ "$(grep -o '<svg' "$f" | wc -l)" = "$2" ] || fail "$f: $(grep -o '<svg' "$f" | wc -l) <svg elements, expected $2"
  [ "$(grep -o 'class="note omitted"' "$f" | wc -l)" = "$3" ] || fail "$f: $(grep -o 'class="note omitted"' "$f" | wc -l) notes, expected $3"
  $PY - "$f" <<'PY' || fail "$f does not parse as balanced HTML"
import sys
from html.parser import HTMLParser
VOID = {"meta", "link", "br", "img", "input", "hr", "col", "area", "base", "source", "wbr"}
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []
    def handle_starttag(s, t, a):
        if t not in VOID: s.stack.append(t)
    def handle_startendtag(s, t, a): pass
    def handle_endtag(s, t):
        assert s.stack and s.stack[-1] == t, (t, s.stack[-5:])
        s.stack.pop()
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); p.close()
assert p.stack == [], p.stack
PY
}
check_static report.html 4 0
for id in plot-bars plot-shots plot-heatmap plot-history; do grep -q "<figure id=\"$id\">" report.html || fail "no $id"; done
grep -q '<h3 id="exp-1">quickstart-zero-shot</h3>' report.html || fail "zero-shot table"
grep -q '<h3 id="exp-2">quickstart-few-shot</h3>' report.html || fail "few-shot table"
grep -q 'clade report: run 2' report.html || fail "not the latest run"
# history: two runs on the x axis, one polyline per cell with top1 (7), two points each
$PY - report.html <<'PY' || fail "history plot"
import re, sys
h = open(sys.argv[1], encoding="utf-8").read()
fig = h[h.index('<figure id="plot-history">'):]
fig = fig[:fig.index("</figure>")]
lines = re.findall(r'<polyline[^>]*points="([^"]*)"', fig)
assert len(lines) == 7, len(lines)
assert all(len(p.split()) == 2 for p in lines), lines
PY
"$CLADE" report --db r.db --run 1 --out r1.html 2>/dev/null
grep -q 'clade report: run 1' r1.html || fail "--run 1"

# intervals: every top-k aggregate of the tables carries clade results' 95% interval, the best
# of each dataset/protocol/shots/metric is in bold; the bars and the shots plot draw them as error bars
"$CLADE" results --db r.db --format json > res.json
$PY - report.html res.json <<'PY' || fail "report intervals"
import json, re, sys
h = open(sys.argv[1], encoding="utf-8").read()
rows = [r for r in json.load(open(sys.argv[2])) if r["trial"] == "all" and r["ci"]]
assert rows, "no interval in clade results"
want = sorted("[%.2f, %.2f]" % (100 * r["ci"]["low"], 100 * r["ci"]["high"]) for r in rows)
tables = h[h.index('<section id="tables">'):]
got = sorted(re.findall(r'<span class="ci">(\[[0-9.]+, [0-9.]+\])</span>', tables))
assert got == want, (got, want)
assert len(re.findall(r'class="num best"', tables)) == len({(r["dataset"], r["protocol"], r["shots"], r["metric"]) for r in rows})
for fig, n in (("plot-bars", 1), ("plot-shots", 4)):
    f = h[h.index('<figure id="%s">' % fig):]
    f = f[:f.index("</figure>")]
    assert "95% bootstrap confidence interval" in f, fig
    assert len(re.findall(r'class="ci"|<path d="M', f)) >= n, fig
print("report: %d intervals as clade results' " % len(got))
PY
"$CLADE" report --db r.db --out none.html --ci none 2>/dev/null
grep -q 'class="ci"' none.html && fail "--ci none drew intervals"
if "$CLADE" report --db r.db --out x.html --ci-seed -1 2>/dev/null; then fail "--ci-seed -1 accepted"; fi

# a run with few-shot only, and names that need escaping: notes instead of empty plots
cat > fs.lua <<'LUA'
local sample = getenv("CLADE_SAMPLE")
model "clip <b>&amp;</b> \"q\"" { path = sample .. "/model" }
dataset "rare-sample" { root = sample .. "/data/rare_sample" }
experiment "fs <script>alert(1)</script> & 'x'" { models = { "clip <b>&amp;</b> \"q\"" }, datasets = { "rare-sample" },
  protocol = few_shot { shots = { 1, 2 }, trials = 2 } }
LUA
"$CLADE" run fs.lua --db fs.db --quiet 2>/dev/null || fail "few-shot-only run"
"$CLADE" report --db fs.db --out fs.html 2>/dev/null || fail "report of a few-shot-only run"
check_static fs.html 2 2
grep -q 'No zero-shot results in this run: plot omitted.' fs.html || fail "bars note"
grep -q 'fs &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;' fs.html || fail "experiment name not escaped"
grep -q 'clip &lt;b&gt;&amp;amp;&lt;/b&gt; &quot;q&quot;' fs.html || fail "model name not escaped"

# a run that trains: the loss curve of each training job and the train-type x test-type
# heatmaps (one per dataset) of the trained models' zero-shot top-1
cat > tr.lua <<'LUA'
local sample = getenv("CLADE_SAMPLE")
model "sample-clip" { path = sample .. "/model" }
dataset "tree" { root = sample .. "/data/tree_sample" }
dataset "seen" { root = sample .. "/data/tree_sample", manifest = "test_seen.csv" }
dataset "held-out" { root = sample .. "/data/tree_sample", manifest = "test_unseen.csv" }
train "t-tax" { from = "sample-clip", datasets = { { "tree", split = "train" } }, text_types = "taxonomic",
  batch_size = 64, epochs = 1, lr = 1e-4 }
train "t-mix" { from = "sample-clip", datasets = { { "tree", split = "train" } }, batch_size = 64, epochs = 1,
  text_types = mixture { common = 1, taxonomic = 3 }, lr = 1e-4 }
experiment "types" { models = { "t-tax", "t-mix" }, datasets = { "seen", "held-out" },
  protocol = zero_shot { text_types = { "common", "taxonomic" }, templates = "plain" } }
LUA
"$CLADE" run tr.lua --db tr.db --quiet 2>err.txt || { cat err.txt; fail "training run"; }
"$CLADE" report --db tr.db --out tr.html 2>/dev/null || fail "report of a training run"
# bars, heatmap, history, loss, two train-type heatmaps; the shots plot is a note
check_static tr.html 6 1
for id in plot-loss plot-train-types; do grep -q "<figure id=\"$id\">" tr.html || fail "no $id"; done
$PY - tr.html tr.db <<'PY' || fail "training plots"
import re, sqlite3, sys
h = open(sys.argv[1], encoding="utf-8").read()
def fig(i):
    f = h[h.index('<figure id="%s">' % i):]
    return f[:f.index("</figure>")]
loss = fig("plot-loss")
lines = re.findall(r'<polyline[^>]*points="([^"]*)"', loss)
assert len(lines) == 2 and all(len(p.split()) == 3 for p in lines), lines  # 192 examples / 64: 3 steps each
assert "t-tax (taxonomic)" in loss and "t-mix (common 0.25 + taxonomic 0.75)" in loss, loss[:2000]
types = fig("plot-train-types")
assert types.count("<svg") == 2 and "<h4>seen</h4>" in types and "<h4>held-out</h4>" in types
db = sqlite3.connect(sys.argv[2])
want = {(m, d, t): v for m, d, t, v in db.execute(
    "SELECT v.model, v.dataset, v.text_type, r.value FROM evaluations v JOIN results r ON r.eval_id = v.id"
    " WHERE r.metric = 'top1' AND r.trial IS NULL")}
assert len(want) == 8, want
for (m, d, t), v in want.items():  # every cell, in its dataset's heatmap, with its value
    part = types[types.index("<h4>%s</h4>" % d):]
    label = {"t-tax": "t-tax (taxonomic)", "t-mix": "t-mix (common 0.25 + taxonomic 0.75)"}[m]
    tip = "trained %s, tested with %s on %s: %.2f%%" % (label, t, d, 100 * v)
    assert tip in part, tip
PY

# errors: one line, exit 1; usage: exit 2
set +e
"$CLADE" report --db r.db --run 9 --out x.html 2>err.txt; rc=$?
[ "$rc" = 1 ] && [ "$(wc -l <err.txt)" = 1 ] && grep -q 'no run 9' err.txt || fail "unknown run: rc $rc, $(cat err.txt)"
[ -e x.html ] && fail "x.html written for an unknown run"
"$CLADE" report --db missing.db --out x.html 2>err.txt; rc=$?
[ "$rc" = 1 ] && grep -q 'missing.db' err.txt || fail "missing db: rc $rc, $(cat err.txt)"
"$CLADE" report --db r.db 2>/dev/null; rc=$?
[ "$rc" = 2 ] || fail "no --out: rc $rc"
"$CLADE" report --db r.db --out x.html --run abc 2>/dev/null; rc=$?
[ "$rc" = 2 ] || fail "--run abc: rc $rc"
set -e

# ---- the browser ----
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "SKIP: chromium not installed (ci/deps installs it)" >&2
  exit 77
fi
chrome() { # chrome OUTPUT-FLAG URL: headless, its own profile, logging on stderr
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$T/profile" \
    --no-first-run --enable-logging=stderr --v=0 "$@"
}
# the detector catches a console error on a page that has one (so a quiet log means something)
printf '<!DOCTYPE html><title>x</title><script>console.error("planted"); nosuchfn();</script>\n' >bad.html
chrome --dump-dom "file://$T/bad.html" >/dev/null 2>bad.log || true
grep -E 'CONSOLE|Uncaught' bad.log | grep planted >/dev/null || fail "chromium's log format changed: no CONSOLE line for a planted error: $(tail -5 bad.log)"

for f in report fs tr; do
  chrome --dump-dom "file://$T/$f.html" >"$f.dom" 2>"$f.log" || fail "chromium --dump-dom $f.html: $(tail -5 "$f.log")"
  if grep -E 'CONSOLE|Uncaught' "$f.log"; then fail "console messages rendering $f.html"; fi
  want=4; [ "$f" = fs ] && want=2; [ "$f" = tr ] && want=6
  [ "$(grep -o '<svg' "$f.dom" | wc -l)" = "$want" ] || fail "$f: the rendered DOM has $(grep -o '<svg' "$f.dom" | wc -l) svg elements, expected $want"
done
chrome --screenshot="$T/shot.png" --window-size=1200,2400 "file://$T/report.html" >/dev/null 2>shot.log || fail "screenshot: $(tail -5 shot.log)"
if grep -E 'CONSOLE|Uncaught' shot.log; then fail "console messages while taking the screenshot"; fi
$PY - shot.png <<'PY' || fail "screenshot"
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", b[16:24])
assert (w, h) == (1200, 2400), (w, h)
assert len(b) > 30000, f"only {len(b)} bytes: a blank page?"
PY
# CLADE_REPORT_SHOT=PATH keeps the screenshot, to look at
if [ -n "${CLADE_REPORT_SHOT:-}" ]; then cp shot.png "$CLADE_REPORT_SHOT"; fi
echo "test_report: ok"
