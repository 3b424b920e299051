"""The PyTorch side of benchmarks/cpu/run: the same work as `clade bench`, in open_clip.

ViT-B-16 from open_clip with random weights (open_clip's own init, seed 0), fp32, eval mode,
torch.inference_mode(), torch.set_num_threads(THREADS). Measures, with the same names, units
and repetition rules as `clade bench --json`:
  gemm_peak    torch.mm of two 3072x3072 fp32 matrices (this torch's BLAS), best of 4
  image_tower  model.encode_image on random pixels [B,3,224,224], per batch
  text_tower   model.encode_text on the Rare Species prompts tokenised as open_clip does
               (padded to 77 tokens), in batches of --text-batch
  tokenize     open_clip's tokenizer on those prompts
  end_to_end   PIL decode + open_clip's preprocess (preprocess_val) + encode_image on the JPEGs
               of --images, batches of the largest --batch; the better of a plain loop and a
               DataLoader with 2 workers
  peak_rss     getrusage peak after the model is built (reset through /proc/self/clear_refs)
Prints one JSON object on stdout. Usage:
  bench_torch.py --label NAME --src CLADE_SOURCE [--batch 1,8,32] [--images DIR] ...
"""
import argparse
import csv
import json
import os
import platform
import resource
import statistics
import sys
import time


def now():
    return time.perf_counter()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- the prompts: lua/clade/text_types.lua's taxonomic_common x bioclip81 ----

def nonempty(s):
    if s is None:
        return None
    s = s.strip()
    return s or None


def capitalize(s):
    return s[:1].upper() + s[1:].lower()


def taxonomic_common(c):
    if not nonempty(c.get("kingdom")):
        g, sp = nonempty(c.get("genus")), nonempty(c.get("species"))
        base = None if not g else (capitalize(g) + (" " + sp.lower() if sp else ""))
    else:
        parts = [capitalize(nonempty(c[r])) for r in ("kingdom", "phylum", "cls", "order", "family", "genus")
                 if nonempty(c.get(r))]
        sp = nonempty(c.get("species"))
        if sp:
            parts.append(sp.lower())
        base = " ".join(parts)
    if base and nonempty(c.get("common_name")):
        base += " with common name " + nonempty(c["common_name"])
    return base


def rare_prompts(src, nclasses):
    with open(os.path.join(src, "lua/clade/templates/bioclip81.txt"), encoding="utf-8") as f:
        templates = [l.rstrip("\r\n") for l in f if l.rstrip("\r\n")]
    classes, seen = [], set()
    with open(os.path.join(src, "lua/clade/suites/rare_species/metadata.csv"), encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            label = row.get("class") or (row.get("genus", "") + " " + row.get("species", "")).strip()
            if label not in seen:
                seen.add(label)
                classes.append(row)
    nc = len(classes)
    use = nc if nclasses < 1 or nclasses >= nc else nclasses
    names = [taxonomic_common(classes[i * nc // use]) for i in range(use)]
    return [t.replace("{}", n) for n in names for t in templates], use, len(templates)


# ---- measuring ----

def timed_reps(fn, items, repeat, min_seconds, cap=256):
    rates, t0 = [], now()
    while len(rates) < cap and (len(rates) < repeat or now() - t0 < min_seconds):
        t = now()
        fn()
        rates.append(items / (now() - t))
    return rates


def measure(name, batch, unit, rates, n, flops, peak, **extra):
    rates = sorted(rates)
    v = statistics.median(rates)
    m = {"name": name, "batch": batch, "value": v, "unit": unit, "min": rates[0], "max": rates[-1],
         "reps": len(rates), "n": n, "peak_fraction": (v * flops * 1e-9 / peak) if flops and peak else None}
    m.update(extra)
    return m


def image_flops(layers=12, W=768, M=3072, S=197, P=16, E=512):
    return layers * (2.0 * S * (4 * W * W + 2 * W * M) + 4.0 * S * S * W) + 2.0 * (S - 1) * W * 3 * P * P + 2.0 * W * E


def text_flops(L, layers=12, W=512, M=2048, E=512):
    return layers * (2.0 * L * (4 * W * W + 2 * W * M) + 4.0 * L * L * W) + 2.0 * W * E


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--src", required=True, help="the clade source tree (templates, Rare Species manifest)")
    ap.add_argument("--batch", default="1,8,32")
    ap.add_argument("--images", help="a folder of JPEGs for end_to_end")
    ap.add_argument("--text-classes", type=int, default=8)
    ap.add_argument("--text-batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peak", type=float, default=0.0, help="the machine's fp32 GEMM peak (GFLOP/s) from clade")
    ap.add_argument("--only", default="gemm,image,text,e2e")
    a = ap.parse_args()
    only = set(a.only.split(","))
    batches = [int(b) for b in a.batch.split(",")]

    import torch
    import open_clip
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    res = []
    peak = a.peak

    if "gemm" in only:
        x, y = torch.randn(3072, 3072), torch.randn(3072, 3072)
        best = 0.0
        for r in range(5):
            t = now()
            torch.mm(x, y.t())
            g = 2.0 * 3072 ** 3 / (now() - t) * 1e-9
            best = max(best, g) if r else best
        res.append(measure("gemm_peak", None, "GFLOP/s", [best], 0, 0, 0, note="torch.mm 3072^3"))
        del x, y

    t = now()
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-16", pretrained=None)
    model.eval()
    res.append(measure("load", None, "s", [now() - t], 0, 0, 0))
    res.append(measure("load_peak_rss", None, "MiB", [peak_rss_mb()], 0, 0, 0))
    reset = reset_peak_rss()

    with torch.inference_mode():
        if "image" in only:
            bmax = max(batches)
            px = torch.randn(bmax, 3, 224, 224)
            model.encode_image(px)  # warm-up
            for b in batches:
                x = px[:b].contiguous()
                rates = timed_reps(lambda: model.encode_image(x), b, a.repeat, a.min_seconds)
                res.append(measure("image_tower", b, "images/s", rates, b, image_flops(), peak))

        if "text" in only:
            texts, ncls, ntpl = rare_prompts(a.src, a.text_classes)
            tok = open_clip.get_tokenizer("ViT-B-16")
            t = now()
            ids = tok(texts)
            tok_rate = len(texts) / (now() - t)
            lens = (ids.argmax(dim=-1) + 1).tolist()
            B = a.text_batch
            model.encode_text(ids[:B])  # warm-up

            def one_pass():
                for s in range(0, len(texts), B):
                    model.encode_text(ids[s:s + B])
            rates = timed_reps(one_pass, len(texts), min(a.repeat, 2), a.min_seconds, 64)
            m = measure("text_tower", B, "prompts/s", rates, len(texts), text_flops(77), peak,
                        prompts=len(texts), classes=ncls, templates=ntpl,
                        mean_tokens=sum(lens) / len(lens), tokens_computed=ids.shape[1])
            res.append(m)
            res.append(measure("tokenize", None, "prompts/s", [tok_rate], len(texts), 0, 0))

        if "e2e" in only and a.images:
            from PIL import Image
            paths = sorted(os.path.join(a.images, p) for p in os.listdir(a.images)
                           if p.lower().endswith((".jpg", ".jpeg", ".png")))
            B = max(batches)

            def loop_plain():
                for s in range(0, len(paths), B):
                    x = torch.stack([preprocess(Image.open(p)) for p in paths[s:s + B]])
                    model.encode_image(x)

            class DS(torch.utils.data.Dataset):
                def __len__(self):
                    return len(paths)

                def __getitem__(self, i):
                    return preprocess(Image.open(paths[i]))

            def loop_loader():
                dl = torch.utils.data.DataLoader(DS(), batch_size=B, num_workers=2)
                for x in dl:
                    model.encode_image(x)

            best = None
            for how, fn in (("plain loop", loop_plain), ("DataLoader, 2 workers", loop_loader)):
                rates = timed_reps(fn, len(paths), min(a.repeat, 2), a.min_seconds, 64)
                m = measure("end_to_end", B, "images/s", rates, len(paths), image_flops(), peak,
                            images=len(paths), loader=how)
                if best is None or m["value"] > best["value"]:
                    best = m
            res.append(best)

    res.append(measure("peak_rss" if reset else "peak_rss_all", None, "MiB", [peak_rss_mb()], 0, 0, 0,
                       since="model built" if reset else "process start"))
    out = {"tool": "pytorch", "label": a.label, "torch": torch.__version__, "open_clip": open_clip.__version__,
           "python": platform.python_version(), "threads": torch.get_num_threads(),
           "blas": "mkl" if torch.backends.mkl.is_available() else "other",
           "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                                  "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
           "results": res}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
