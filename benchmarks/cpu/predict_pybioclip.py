#!/usr/bin/python3
"""The pybioclip side of benchmarks/cpu/predict, and the label set both sides use.

  predict_pybioclip.py labels MODEL_DIR N D      # a synthetic Tree of Life label set, N taxa
  predict_pybioclip.py run MODEL_DIR THREADS RANK BATCH IMAGE...   # pybioclip's TreeOfLifeClassifier
  predict_pybioclip.py logit WEIGHTS.safetensors SCALE       # set logit_scale = ln(SCALE) in place

`run` points pybioclip (any version with TreeOfLifeClassifier: PyPI's in a venv, or 2.1.6 on
PYTHONPATH) at MODEL_DIR: its open_clip_config.json (model_cfg registered under a local name),
open_clip_model.safetensors (loaded into the open_clip model) and embeddings/. Only downloads
and torch.compile (absent from torch < 2) are patched; the model string stays
hf-hub:imageomics/bioclip so pybioclip uses its BioCLIP transform. Prints one JSON line:
seconds for the model and label set to load, and for predict() over the images."""
import json, os, sys, time


def labels(model_dir, n, d):
    import numpy as np
    rng = np.random.Generator(np.random.PCG64(7))
    os.makedirs(os.path.join(model_dir, "embeddings"), exist_ok=True)
    emb = rng.standard_normal(size=(d, n), dtype=np.float32)
    emb /= np.sqrt((emb.astype(np.float64) ** 2).sum(axis=0)).astype(np.float32)
    np.save(os.path.join(model_dir, "embeddings", "txt_emb_species.npy"), emb)
    # ~30 species a genus, ~8 genera a family, ...: names from indices, two kingdoms share genera
    names = []
    for j in range(n):
        g = j // 30
        f, o, c, p, k = g // 8, g // 40, g // 200, g // 1000, g % 3
        names.append([[f"Kingdom{k}", f"Phylum{p}", f"Class{c}", f"Order{o}", f"Family{f}", f"Genus{g % 5000}",
                       "" if j % 30 == 0 else f"ep{j}"], f"common {j}"])
    with open(os.path.join(model_dir, "embeddings", "txt_emb_species.json"), "w") as fh:
        json.dump(names, fh)


def logit(path, scale):
    """Rewrites the one logit_scale value (fp16 or fp32) in place; the header stays as it is."""
    import math, struct
    with open(path, "r+b") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        t = json.loads(fh.read(n))["logit_scale"]
        fh.seek(8 + n + t["data_offsets"][0])
        fh.write(struct.pack("<e" if t["dtype"] == "F16" else "<f", math.log(scale)))


def run(model_dir, threads, rank, batch, images):
    t0 = time.perf_counter()
    import torch
    torch.set_num_threads(threads)
    if not hasattr(torch, "compile"):
        torch.compile = lambda m, *a, **k: m
    import open_clip as oc
    from open_clip import factory
    from safetensors.torch import load_file
    cfg = json.load(open(os.path.join(model_dir, "open_clip_config.json")))["model_cfg"]
    factory._MODEL_CONFIGS["clade-bench"] = cfg

    def create_local(model_str, pretrained=None, device="cpu", return_transform=True):
        model, _, pre = oc.create_model_and_transforms("clade-bench", device=device)
        sd = {k: v.float() for k, v in load_file(os.path.join(model_dir, "open_clip_model.safetensors")).items()}
        model.load_state_dict(sd)
        return model.eval(), pre
    oc.list_pretrained_tags_by_model = lambda name: []
    oc.create_model_from_pretrained = create_local
    sys.modules.setdefault("prettytable", __import__("types").ModuleType("prettytable"))
    import bioclip.predict as bp
    from bioclip._constants import Rank
    bp.BaseClassifier.get_cached_datafile = lambda self, filename: os.path.join(model_dir, filename)
    clf = bp.TreeOfLifeClassifier(model_str="hf-hub:imageomics/bioclip")
    t1 = time.perf_counter()
    preds = clf.predict(images, Rank[rank.upper()], k=5, batch_size=batch)
    t2 = time.perf_counter()
    print(json.dumps({"tool": "pybioclip", "rank": rank, "images": len(images), "batch": batch, "rows": len(preds),
                      "load_s": t1 - t0, "predict_s": t2 - t1}))


if __name__ == "__main__":
    if sys.argv[1] == "labels":
        labels(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "logit":
        logit(sys.argv[2], float(sys.argv[3]))
    else:
        run(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6:])
