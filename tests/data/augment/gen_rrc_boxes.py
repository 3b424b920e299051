"""Reference crop boxes of torchvision's RandomResizedCrop.get_params (torchvision 0.14, the
transform open_clip 2.32 trains with), its code unmodified, its random draws taken from
Python's `random` (CPython's MT19937, which clade's cl_pyrand reproduces):
  torch.empty(1).uniform_(a, b) -> a float32 tensor of a + (b - a) * rng.random()
  torch.randint(lo, hi, size=(1,)) -> lo + rng.randrange(hi - lo)
Everything else (float32 log of the ratio range, float32 exp of the drawn log-ratio, Python's
round, the 10 attempts, the central fallback) is torchvision's. Two boxes are drawn in a row
from each generator, so the number of draws each box consumes is checked too.
Made once with Debian's python3-torch/python3-torchvision (not in CI):
  /usr/bin/python3 tests/data/augment/gen_rrc_boxes.py > tests/data/augment/rrc_boxes.json
"""
import json
import random

import torch
import torchvision
from torchvision.transforms import RandomResizedCrop

rng = random.Random(0)


class _Draw:
    def uniform_(self, a, b):
        a, b = float(a), float(b)
        return torch.tensor([a + (b - a) * rng.random()], dtype=torch.float32)


real_empty, real_randint = torch.empty, torch.randint
torch.empty = lambda *shape, **kw: _Draw()
torch.randint = lambda lo, hi, size: real_empty(1, dtype=torch.int64).fill_(lo + rng.randrange(hi - lo))

SIZES = [(224, 224), (97, 131), (1024, 768), (640, 480), (300, 500), (400, 300), (300, 260),
         (350, 250), (256, 320), (1, 1), (2, 3), (5, 1), (100, 1000), (1000, 100), (225, 300),
         (300, 225), (299, 224), (64, 48)]
SCALES = [(0.9, 1.0), (0.08, 1.0), (1.0, 1.0)]
RATIOS = [(3.0 / 4.0, 4.0 / 3.0), (1.0, 1.0)]
cases = []
for w, h in SIZES:
    img = torch.zeros((1, h, w))
    for scale in SCALES:
        for ratio in RATIOS:
            for seed in range(4):
                rng.seed(seed)
                boxes = []
                for _ in range(2):
                    i, j, bh, bw = RandomResizedCrop.get_params(img, list(scale), list(ratio))
                    boxes.append([j, i, bw, bh])  # left, top, width, height
                cases.append({"width": w, "height": h, "scale": list(scale), "ratio": list(ratio),
                              "seed": seed, "boxes": boxes})
head = json.dumps({"generator": "tests/data/augment/gen_rrc_boxes.py", "torch": torch.__version__,
                   "torchvision": torchvision.__version__, "boxes": "[left, top, width, height]"})
print(head[:-1] + ', "cases": [\n' + ",\n".join(json.dumps(c) for c in cases) + "\n]}")
