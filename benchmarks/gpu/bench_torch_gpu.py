"""The PyTorch side of benchmarks/gpu/run, and the comparison table.

timm's vit_base_patch16_clip_224 (ViT-B/16, CLIP's image tower; random weights), eval mode,
torch.inference_mode(), random pixels [B,3,224,224] on the GPU, in four modes:
  fp32          TF32 off (what clade's fp32 computes)
  tf32          fp32 with TF32 matmuls and convolutions
  bf16          bf16 autocast, eager
  bf16-compile  bf16 autocast, torch.compile (default mode)
Each (mode, batch): one warm-up call (which compiles), then calls until --seconds have passed
(at least 3), synchronising after each, as clade's encode call returns host results.
Prints `RESULT torch images <mode> <batch> <images/s>` lines, then, given clade's RESULT
lines (--clade FILE: fp32, tf32, bf16 and bf16-sdpa), a table with the ratios clade/torch:
fp32 vs fp32, clade's better bf16 vs torch's bf16 eager, and best vs best.
"""
import argparse
import time

import torch
import timm

MODES = ["fp32", "tf32", "bf16", "bf16-compile"]


def bench(model, x, bf16, seconds):
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        model(x)
        torch.cuda.synchronize()
        runs, t0 = 0, time.perf_counter()
        while True:
            model(x)
            torch.cuda.synchronize()
            runs += 1
            t = time.perf_counter() - t0
            if runs >= 3 and t >= seconds:
                return runs * x.shape[0] / t


def read_results(path):
    res = {}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 6 and p[0] == "RESULT":
                res[(p[1], p[2], p[3], int(p[4]))] = float(p[5])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,32,256")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--clade", help="a file with clade's RESULT lines")
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    print(f"# torch {torch.__version__}, timm {timm.__version__}, {torch.cuda.get_device_name()}")
    torch.manual_seed(0)
    eager = timm.create_model("vit_base_patch16_clip_224", pretrained=False).cuda().eval()
    compiled = torch.compile(eager)
    res = {}
    for mode in MODES:
        tf32 = mode == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        model = compiled if mode.endswith("compile") else eager
        for b in batches:
            x = torch.randn(b, 3, 224, 224, device="cuda")
            ips = bench(model, x, mode.startswith("bf16"), a.seconds)
            res[("torch", "images", mode, b)] = ips
            print(f"RESULT torch images {mode} {b} {ips:.1f}", flush=True)
    if not a.clade:
        return
    res.update(read_results(a.clade))
    clade_modes = ["fp32", "tf32", "bf16", "bf16-sdpa"]
    cols = [("clade", m) for m in clade_modes] + [("torch", m) for m in MODES]
    nc = len(clade_modes)
    print("\nimages/s, ViT-B/16 image tower")
    print("| batch | " + " | ".join(f"{w} {m}" for w, m in cols)
          + " | clade/torch fp32 | clade/torch bf16 | clade best/torch best |")
    print("|" + "---|" * (len(cols) + 4))
    for b in batches:
        v = [res.get((w, "images", m, b)) for w, m in cols]
        cl = [x for x in v[:nc] if x]
        th = [x for x in v[nc:] if x]
        t = dict(zip(MODES, v[nc:]))
        c = dict(zip(clade_modes, v[:nc]))
        r32 = c["fp32"] / t["fp32"] if c["fp32"] and t["fp32"] else float("nan")
        cb = max([x for x in (c["bf16"], c["bf16-sdpa"]) if x], default=None)
        r16 = cb / t["bf16"] if cb and t["bf16"] else float("nan")
        rbest = max(cl) / max(th) if cl and th else float("nan")
        cells = " | ".join(f"{x:.0f}" if x else "-" for x in v)
        print(f"| {b} | {cells} | {r32:.2f} | {r16:.2f} | {rbest:.2f} |")

if __name__ == "__main__":
    main()
