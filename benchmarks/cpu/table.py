"""One table from benchmarks/cpu/run's JSON files (clade.json, {pypi,debian}-{set,unset}.json).

For each PyTorch the faster of its two runs (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE set or
unset) is kept, judged by the geometric mean of its throughput ratios; ratios are clade over
the faster PyTorch per row (for memory: clade over the smaller). Markdown on stdout; with
--readme FILE the block between <!-- bench:begin --> and <!-- bench:end --> is replaced.
"""
import argparse
import glob
import json
import math
import os
import platform
import subprocess
import sys

THROUGHPUT = ("image_tower", "text_tower", "end_to_end", "tokenize", "gemm_peak")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def merge_rounds(out):
    """out/round*/NAME.json -> out/NAME.json: per measure, the best round (highest throughput,
    lowest time or memory); the other fields of the run from its first round."""
    rounds = sorted(glob.glob(os.path.join(out, "round*")))
    names = sorted({os.path.basename(p) for r in rounds for p in glob.glob(os.path.join(r, "*.json"))})
    for name in names:
        runs = [x for x in (load(os.path.join(r, name)) for r in rounds) if x]
        if not runs:
            continue
        best = {}
        for run in runs:
            for res in run.get("results", []):
                k = (res["name"], res.get("batch"))
                lower = res["name"] in ("peak_rss", "peak_rss_all", "load", "load_peak_rss", "error_vs_fp32", "draft_error")
                if k not in best or (res["value"] < best[k]["value"] if lower else res["value"] > best[k]["value"]):
                    best[k] = res
        merged = dict(runs[0])
        merged["results"] = list(best.values())
        merged["rounds"] = len(runs)
        for key in ("gemm_peak_gflops", "fma_peak_gflops"):
            if key in merged:
                merged[key] = max(x.get(key) or 0 for x in runs)
        with open(os.path.join(out, name), "w") as f:
            json.dump(merged, f)
    return len(rounds)


def index(run):
    out = {}
    for r in (run or {}).get("results", []):
        out[(r["name"], r.get("batch"))] = r
    return out


def pick(out, label):
    """The faster of the set/unset runs of one PyTorch, and a note saying which and by how much."""
    s, u = load(os.path.join(out, label + "-set.json")), load(os.path.join(out, label + "-unset.json"))
    if not s and not u:
        return None, None
    if not s or not u:
        return (s or u), "only one run"
    si, ui = index(s), index(u)
    logs = []
    for k, r in si.items():
        if k[0] in THROUGHPUT and k[0] != "gemm_peak" and k in ui and r["value"] and ui[k]["value"]:
            logs.append(math.log(r["value"] / ui[k]["value"]))
    g = math.exp(sum(logs) / len(logs)) if logs else 1.0
    best, which = (s, "set") if g >= 1 else (u, "unset")
    note = "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE %s won (set/unset throughput geo-mean %.3fx)" % (which, g)
    return best, note


def fmt(v, unit):
    if v is None:
        return "–"
    if unit in ("MiB",):
        return "%.0f" % v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def lscpu():
    model, cores = platform.processor() or "?", os.cpu_count()
    try:
        txt = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in txt.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model, cores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--started", default="")
    ap.add_argument("--command", default="benchmarks/cpu/run")
    ap.add_argument("--readme")
    a = ap.parse_args()
    nrounds = merge_rounds(a.out)
    clade = load(os.path.join(a.out, "clade.json"))
    if not clade:
        sys.exit("table.py: no clade.json in " + a.out)
    ci = index(clade)
    refs = {}
    notes = []
    for label, title in (("pypi", "PyTorch (PyPI)"), ("debian", "PyTorch (Debian)")):
        run, note = pick(a.out, label)
        if run:
            refs[label] = (title, run, index(run))
            notes.append("%s %s, open_clip %s, %d threads: %s" % (title, run.get("torch"), run.get("open_clip"),
                                                                 run.get("threads", 0), note))
    peak = clade.get("gemm_peak_gflops") or 0

    fma = clade.get("fma_peak_gflops") or 0
    rows = [("gemm_peak", None, "fp32 GEMM peak (GFLOP/s)"),
            ("fma_peak", None, "fp32 FMA ceiling, register-only loop (GFLOP/s)")]
    batches = sorted({k[1] for k in ci if k[0] == "image_tower"})
    rows += [("image_tower", b, "image tower, batch %d (images/s)" % b) for b in batches]
    tt = [k for k in ci if k[0] == "text_tower"]
    if tt:
        rows.append(("text_tower", tt[0][1], "text tower, Rare Species prompts (prompts/s)"))
    rows.append(("tokenize", None, "tokenizer (prompts/s)"))
    ee = [k for k in ci if k[0] == "end_to_end"]
    if ee:
        rows.append(("end_to_end", ee[0][1], "end to end: JPEG decode + preprocess + encode, batch %d (images/s)" % ee[0][1]))
    rows.append(("peak_rss", None, "peak RSS after loading (MiB)"))

    hdr = ["measure", "clade"] + [refs[k][0] for k in refs] + ["clade / best PyTorch", "clade, share of GEMM peak",
                                                               "best PyTorch, share of peak"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for name, batch, title in rows:
        c = ci.get((name, batch))
        if not c:
            continue
        vals = []
        for k in refs:
            r = refs[k][2].get((name, batch)) or refs[k][2].get((name, None))
            vals.append(r)
        lower_better = name in ("peak_rss", "load")
        present = [r for r in vals if r and r.get("value")]
        best = None
        if present:
            best = (min if lower_better else max)(present, key=lambda r: r["value"])
        ratio = "%.2fx" % (c["value"] / best["value"]) if best and c.get("value") else "–"
        cfrac = "%.0f%%" % (100 * c["peak_fraction"]) if c.get("peak_fraction") is not None else ""
        bfrac = "%.0f%%" % (100 * best["peak_fraction"]) if best and best.get("peak_fraction") is not None else ""
        if name == "gemm_peak":
            cfrac, bfrac = "100%", "%.0f%%" % (100 * best["value"] / peak) if best and peak else ""
        if name == "fma_peak":
            cfrac = "%.0f%%" % (100 * c["value"] / peak) if peak else ""
        lines.append("| " + " | ".join([title, fmt(c["value"], c["unit"])] + [fmt(r["value"] if r else None, c["unit"])
                                                                            for r in vals] + [ratio, cfrac, bfrac]) + " |")
    # derived: end to end vs encoder only; memory vs weights + activations; text details
    extra = []
    e2e = ci.get(("end_to_end", ee[0][1])) if ee else None
    if e2e and e2e.get("vs_image_tower") not in (None, -1):
        extra.append("clade end to end = %.0f%% of its image tower at batch %d (goal >= 90%%); decode+preprocess "
                     "%.1f ms/image on one core" % (100 * e2e["vs_image_tower"], e2e["batch"],
                                                     e2e.get("decode_ms_per_image", 0)))
    rss = ci.get(("peak_rss", None))
    if rss and rss.get("vs_weights_plus_activations"):
        extra.append("clade peak RSS = %.2fx (weights %.0f MiB + one batch of %d images' activations %.0f MiB; "
                     "goal <= 1.3x)" % (rss["vs_weights_plus_activations"], rss["weights_mib"], rss["act_batch"],
                                        rss["activations_mib"]))
    t = ci.get(tt[0]) if tt else None
    if t:
        extra.append("text: %d prompts (%d classes spread over the 400 x %d templates), mean %.1f tokens: clade "
                     "computes the real tokens (%.2f GFLOP/prompt, %.0f%% of peak on those FLOPs; %.0f%% counted "
                     "at 77 tokens = 5.96 GFLOP), PyTorch all 77" %
                     (t["prompts"], t["classes"], t["templates"], t["mean_tokens"], t["real_gflop_per_prompt"],
                      100 * t["real_peak_fraction"], 100 * (t["peak_fraction"] or 0)))
    # the image goal against every PyTorch run, set or unset (the columns keep one setting per
    # PyTorch), and against the ceiling: what 1.5x the best of them would take
    runs = [load(os.path.join(a.out, "%s-%s.json" % (lb, how))) for lb in ("pypi", "debian") for how in ("set", "unset")]
    parts, shares = [], []
    for b in batches:
        c = ci.get(("image_tower", b))
        vals = [r["value"] for run in runs if run for r in run.get("results", [])
                if r["name"] == "image_tower" and r.get("batch") == b and r.get("value")]
        if not c or not vals:
            continue
        best = max(vals)
        parts.append("batch %d: %.2fx (%s)" % (b, c["value"] / best, fmt(best, "images/s")))
        if fma:
            flop = 35.13  # nominal GFLOP per ViT-B/16 image, as the shares of peak
            shares.append("batch %d: clade %.0f%%, best PyTorch %.0f%%, 1.5x it %.0f%%" %
                          (b, 100 * c["value"] * flop / fma, 100 * best * flop / fma, 150 * best * flop / fma))
    if parts:
        extra.append("image tower against the fastest PyTorch run of each batch, OPENBLAS_* set or unset: " +
                     "; ".join(parts))
    if shares:
        extra.append("image tower as a share of the FMA ceiling (%.0f GFLOP/s, %s; 35.13 GFLOP an image): " %
                     (fma, (ci.get(("fma_peak", None)) or {}).get("isa", "?")) + "; ".join(shares))
    bf = load(os.path.join(a.out, "clade-bf16.json"))
    if bf:
        bi, parts = index(bf), []
        for b in batches:
            r, c = bi.get(("image_tower", b)), ci.get(("image_tower", b))
            if r and c and c.get("value"):
                parts.append("%s images/s at batch %d (%.2fx fp32)" % (fmt(r["value"], r["unit"]), b,
                                                                     r["value"] / c["value"]))
        err = bi.get(("error_vs_fp32", None))
        extra.append("clade bf16 (opt-in `--precision bf16`, never the default): " + ", ".join(parts) +
                     ("; largest relative error of its embeddings against fp32: %.2g" % err["value"] if err else ""))
    dr = load(os.path.join(a.out, "clade-draft.json"))
    if dr and ee:
        di = index(dr)
        r, c, err = di.get(("end_to_end", ee[0][1])), ci.get(("end_to_end", ee[0][1])), di.get(("draft_error", None))
        if r and c and c.get("value"):
            extra.append("clade draft decoding (opt-in `--decode draft`, PIL's Image.draft; never the default): end "
                         "to end %s images/s (%.2fx full decoding), decode+preprocess %.1f ms/image (full: %.1f); "
                         "largest relative distance of its embeddings from full decoding's: %s" %
                         (fmt(r["value"], r["unit"]), r["value"] / c["value"], r.get("decode_ms_per_image", 0),
                          (err or {}).get("full_decode_ms_per_image", 0),
                          "%.2g" % err["value"] if err else "?"))
    for k in refs:
        e = refs[k][2].get(("end_to_end", ee[0][1])) if ee else None
        if e and e.get("loader"):
            extra.append("%s end to end: %s (the faster of a plain loop and a 2-worker DataLoader)" % (refs[k][0], e["loader"]))
    model, cores = lscpu()
    head = ["Machine: %s, %d cores (`lscpu`); %d threads for every run; %s." % (model, cores, clade.get("threads", 0),
                                                                                clade.get("model", "")),
            "Date: %s. Command: `%s`%s." % (a.started or "?", a.command,
                                            " (%d rounds, each tool's best round per measure)" % nrounds
                                            if nrounds > 1 else ""),
            "clade %s (%s, %s), OPENBLAS_CORETYPE=%s." % (clade.get("version"), clade.get("backend"),
                                                         clade.get("precision"),
                                                         (clade.get("env") or {}).get("OPENBLAS_CORETYPE"))]
    text = "\n".join(head) + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join("- " + x for x in extra + notes) + "\n"
    print(text)
    if a.readme:
        with open(a.readme) as f:
            doc = f.read()
        b, e = doc.find("<!-- bench:begin -->"), doc.find("<!-- bench:end -->")
        if b < 0 or e < 0:
            sys.exit("table.py: %s has no <!-- bench:begin --> ... <!-- bench:end --> block" % a.readme)
        doc = doc[:b + len("<!-- bench:begin -->")] + "\n" + text + doc[e:]
        with open(a.readme, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
