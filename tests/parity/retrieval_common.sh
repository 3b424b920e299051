# Shared by test_retrieval_clibd.sh and test_retrieval_clibd_model.sh (sourced): the
# experiment of CLIBD's four query/key pairs on the retrieval fixture ($F), and the check that
# every metric equals CLIBD's expected.json.

# clibd_experiment FEATURES OUT: the experiment file, on a model of precomputed features
clibd_experiment() {
  cat > "$2" <<LUA
model "clibd" { features = "$1" }
dataset "bioscan" { root = "$F", manifest = "manifest.csv" }
experiment "clibd" {
  models = { "clibd" }, datasets = { "bioscan" },
  protocols = {
    retrieval {},
    retrieval { query = "dna", key = "dna" },
    retrieval { query = "image", key = "image" },
    retrieval { query = "image+dna", key = "image+dna" },
  },
}
LUA
}

# clibd_metrics RESULTS_JSON: all 192 metrics (4 pairs x 2 splits x 4 ranks x 6) equal to
# CLIBD's (the same summation order: equal, not close)
clibd_metrics() {
  python3 - "$F/expected.json" "$1" <<'PY'
import json, sys
exp, results = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
got = {(r["query"], r["key"], r["split"], r["rank"], r["metric"]): r["value"] for r in results}
n = 0
for case in exp["results"]:
    for split, levels in case["splits"].items():
        for rank, metrics in levels.items():
            for m, v in metrics.items():
                g = got.get((case["query"], case["key"], split, rank, m))
                assert g == v, (case["query"], case["key"], split, rank, m, g, v)
                n += 1
assert n == 4 * 2 * 4 * 6 and len(got) == n, (n, len(got))
print("%d metrics equal to CLIBD's" % n)
PY
}
