"""Shared by the PIL reference tests (test_decode_draft, test_augment_pil): read the `pixels`
tensor and metadata `clade preprocess` writes, and finish a PIL image as open_clip's ToTensor
+ Normalize does (RGB, /255, OpenAI mean/std, in float32, CHW)."""
import json
import struct

import numpy as np

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    t = hdr["pixels"]
    a, b = t["data_offsets"]
    return np.frombuffer(data[a:b], dtype=np.float32).reshape(t["shape"]), hdr["__metadata__"]


def normalize(im):
    x = np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255)
    return ((x - MEAN) / STD).transpose(2, 0, 1)
