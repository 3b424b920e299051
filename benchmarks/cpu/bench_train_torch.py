"""One open_clip training step (forward, ClipLoss, backward, AdamW) timed in PyTorch, the way
open_clip_train's loop does it (fp32, no AMP, accum_freq 1), on the same weights, images and
captions as `clade train` in benchmarks/cpu/train_step. Prints one JSON object.

    python bench_train_torch.py --weights DIR --images DIR --texts F --batch 32 --threads 2 --steps 5
    python bench_train_torch.py --make-weights DIR      # writes random ViT-B-16 weights as a hub folder
"""
import argparse, glob, json, math, os, resource, struct, sys, time


def save_safetensors(path, tensors):
    head, blobs, off = {}, [], 0
    for k, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        head[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make-weights")
    ap.add_argument("--weights")
    ap.add_argument("--images")
    ap.add_argument("--texts")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--label", default="torch")
    a = ap.parse_args()
    import torch, open_clip
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.make_weights:
        model = open_clip.create_model("ViT-B-16")
        os.makedirs(a.make_weights, exist_ok=True)
        save_safetensors(a.make_weights + "/open_clip_model.safetensors", model.state_dict())
        cfg = {"model_cfg": open_clip.get_model_config("ViT-B-16"),
               "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}}
        json.dump(cfg, open(a.make_weights + "/open_clip_config.json", "w"), indent=2)
        return
    from PIL import Image
    model, _, preprocess = open_clip.create_model_and_transforms(
        "ViT-B-16", pretrained=a.weights + "/open_clip_model.safetensors")
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    files = sorted(glob.glob(a.images + "/*.jpg"))[: a.batch]
    lines = open(a.texts).read().splitlines()[: a.batch]
    images = torch.stack([preprocess(Image.open(f)) for f in files])
    texts = tokenizer(lines)
    model.train()
    named = list(model.named_parameters())
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    groups = [{"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
              {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": 0.2}]
    opt = torch.optim.AdamW(groups, lr=1e-5, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.loss.ClipLoss()
    times = []
    for i in range(a.steps + 1):  # the first is the warm-up
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(*model(images, texts))  # open_clip's CLIP returns (image, text, logit_scale.exp())
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if i:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"label": a.label, "torch": torch.__version__, "batch": a.batch, "threads": a.threads,
                      "step_seconds": med, "images_per_s": a.batch / med,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    sys.exit(main())
