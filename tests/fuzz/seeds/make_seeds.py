#!/usr/bin/python3
"""Writes the small seed inputs of tests/fuzz/seeds/<harness>/ (made once, committed; the fuzz
stage adds the fixtures in ../shared/fixtures at run time). Needs only python3 and python3-pil.
Checkpoints are pickled by Python's own pickle against stand-in `torch` modules, so their bytes
are what torch.save writes for a state dict (GLOBALs, BINPERSID storages, _rebuild_tensor_v2)."""
import io, json, os, pickle, struct, sys, types, zipfile
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))


def out(harness, name, data):
    os.makedirs(os.path.join(HERE, harness), exist_ok=True)
    with open(os.path.join(HERE, harness, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


out("safetensors", "small.safetensors", safetensors({
    "image_embeddings": ("F32", [2, 3], struct.pack("<6f", 0, 1, 2, 3, 4, 5)),
    "ids": ("I64", [3], struct.pack("<3q", -7, 1 << 40, 42)),
    "half": ("BF16", [2], struct.pack("<2H", 0x3F80, 0xBF80)),
    "scalar": ("F16", [], struct.pack("<H", 0x3C00)),
}, {"format": "pt"}))

# --- stand-in torch: just enough names for pickle to write torch.save's opcodes ---
torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
torch._utils = utils


def _rebuild_tensor_v2(*a):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils._rebuild_tensor_v2 = _rebuild_tensor_v2
for cls in ("FloatStorage", "HalfStorage", "LongStorage"):
    setattr(torch, cls, type(cls, (), {"__module__": "torch"}))


class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())

    def __reduce__(self):
        return (_rebuild_tensor_v2, self.args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def torch_zip(obj, storages, folder="archive"):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    pkl = buf.getvalue()
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as f:
        entry = lambda name: zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # same bytes each time
        f.writestr(entry(f"{folder}/data.pkl"), pkl)
        f.writestr(entry(f"{folder}/byteorder"), "little")
        for key, raw in storages.items():
            f.writestr(entry(f"{folder}/data/{key}"), raw)
        f.writestr(entry(f"{folder}/version"), "3\n")
    return pkl, z.getvalue()


s0 = Storage(torch.FloatStorage, "0", 6)
s1 = Storage(torch.LongStorage, "1", 3)
s2 = Storage(torch.HalfStorage, "2", 2)
sd = OrderedDict([
    ("module.visual.proj", Tensor(s0, 0, [2, 3], [3, 1])),
    ("module.visual.proj_t", Tensor(s0, 0, [3, 2], [1, 3])),  # a strided (transposed) view
    ("module.row", Tensor(s0, 3, [3], [1])),                  # an offset view of the same storage
    ("module.ids", Tensor(s1, 0, [3], [1])),
    ("module.logit_scale", Tensor(s2, 1, [], [])),
])
raw = {"0": struct.pack("<6f", 0, 1, 2, 3, 4, 5), "1": struct.pack("<3q", 1, 2, 3),
       "2": struct.pack("<2H", 0x3C00, 0xC000)}
pkl, z = torch_zip(sd, raw)
out("pickle", "state_dict.pkl", pkl)
out("torchzip", "state_dict.pt", z)
pkl, z = torch_zip({"epoch": 3, "name": "tiny", "state_dict": sd}, raw, folder="tiny_epoch_3")
out("pickle", "training.pkl", pkl)
out("torchzip", "training.pt", z)
buf = io.BytesIO()
Pickler(buf, protocol=4).dump({"a": [1, 2.5, None, True, b"x", "\u00e9"], "b": (1 << 70, -1)})
out("pickle", "protocol4.pkl", buf.getvalue())

out("clip_config", "tiny.json", json.dumps({
    "embed_dim": 32, "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32,
                   "mlp_ratio": 4.0},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}, indent=1))
out("clip_config", "hub.json", json.dumps({"model_cfg": {"embed_dim": 16,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "patch_size": 8},
    "text_cfg": {"width": 32, "heads": 1, "layers": 1}}, "preprocess_cfg": {}}))

out("manifest", "classes.csv", "filepath,class\nimages/a.jpg,Ursus arctos\nimages/b.jpg,\"Canis, lupus\"\n"
    "images/c.jpg,Ursus arctos\n")
out("manifest", "taxonomy.csv", "\ufeff,filepath,kingdom,phylum,cls,order,family,genus,species,common_name\r\n"
    "0,x/1.png,Animalia,Chordata,Mammalia,Carnivora,Ursidae,Ursus,arctos,brown bear\r\n"
    "1,x/2.png,Animalia,Chordata,Aves,,,Corvus,,\r\n\r\n2,\"x/\"\"3\"\".png\",Plantae,,,,,Quercus,robur,oak\r\n")

out("tokenizer", "cases.txt", "A photo of a Ursus arctos, brown bear &amp; friends!  ")
out("tokenizer", "unicode.txt", "Ça\u00a0va? 🦝 日本語 don't we'll I'M 2024-01 <a>&lt;b&gt;</a>\tend")
out("tokenizer", "long.txt", "a photo of the " * 40)

out("lua_decl", "experiment.lua", '''model "m" { path = "models/m", gelu = "exact" }
model "feats" { features = "feats/{dataset}.safetensors" }
dataset "d" { root = "data/d", manifest = "metadata.csv" }
text_type "genus_only" { text = function(class) return class.genus or class.label end }
experiment "zs" { models = { "m" }, datasets = { "d" },
  protocol = zero_shot { text_types = { "taxonomic_common", "genus_only" }, templates = "bioclip81" } }
experiment "fs" { models = { "feats" }, datasets = { "d" },
  protocol = few_shot { shots = { 1, 5 }, trials = 2, sampler = "bioclip" } }
''')
out("lua_decl", "tensor.lua", '''local T = clade.tensor
local a = T.from{{1, 2}, {3, 4}}
local b = a:matmul(a, true):normalize():add(1):mul(T.new(1, 2, 0.5))
assert(b:topk(1)[1][1] == 2)
local p = protocol "p" { fields = { k = "number" }, run = function(ctx, opts) end }
experiment "e" { models = {}, datasets = {}, protocol = p { k = 1 } }
''')
out("lua_decl", "core_calls.lua", """local c = clade.core
for _, f in ipairs{
  function() return c.store_eval({}) end, function() return c.claim("a", "b") end,
  function() return c.job_done(1) end, function() return c.embed_images(nil) end,
  function() return c.manifest("metadata.csv") end, function() return c.load_features("f.safetensors", 4) end,
  function() return c.check_image("x.jpg") end, function() return c.pyrandom(1):shuffle({1, 2, 3}) end,
  function() return c.model("m", { path = "m" }) end, function() return c.embed_texts(nil, {"a"}) end,
  function() return clade.tensor.from{{1, 2}, {3, 4}}:ridge(clade.tensor.new(2, 1), 0.5) end,
} do pcall(f) end
""")


def npy(descr, shape, raw, fortran=False):
    """np.save's bytes (format 1.0, data 64-byte aligned), written without NumPy."""
    sh = "(%s)" % (", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, sh)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + raw


out("npy", "f32_2x3.npy", npy("<f4", [2, 3], struct.pack("<6f", 0, 1, 2, 3, 4, 5)))
out("npy", "f16_5.npy", npy("<f2", [5], struct.pack("<5H", 0x3C00, 0, 0x8000, 0x7BFF, 1)))
out("npy", "i64_scalar.npy", npy("<i8", [], struct.pack("<q", 7)))
out("npy", "u1_fortran.npy", npy("|u1", [2, 3], bytes(range(6)), fortran=True))

# taxa: the first byte chooses the .npy's columns (byte % 6 + 1), the rest is txt_emb_species.json
RANKS7 = '["Animalia","Chordata","Aves","Suliformes","Sulidae","Morus","bassanus"]'
out("taxa", "two.json", b"\x01[[" + RANKS7.encode() + b',"Northern gannet"],'
    b'[["Plantae","Tracheophyta","Magnoliopsida","Rosales","Moraceae","Morus",""],null]]')
out("taxa", "escapes.json", b'\x00[[["A\\u00e9\\ud83d\\ude00",null,"c","o","f","g","e"],"x, \\"y\\""]]')
out("taxa", "short_entry.json", b'\x02[[["A","p","c","o","f","g","e"],"x"],[["A","p","c","o","f","g","e"],"x"],'
    b'[["A","p","c","o","f","g"],"x"]]')
out("taxa", "object.json", b'\x00{"a": [1, 2.5e3, true]}')

from PIL import Image  # noqa: E402 (python3-pil)

def img(fmt, im, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()

grad = Image.new("RGB", (12, 9))
grad.putdata([(x * 20, y * 28, (x * y) % 256) for y in range(9) for x in range(12)])
out("image", "rgb.jpg", img("JPEG", grad, quality=80))
out("image", "progressive.jpg", img("JPEG", grad, quality=60, progressive=True, subsampling=0))
out("image", "gray.jpg", img("JPEG", grad.convert("L")))
out("image", "cmyk.jpg", img("JPEG", grad.convert("CMYK")))
out("image", "large_draft.jpg", img("JPEG", grad.resize((70, 66))) + b"\0")  # odd length: draft
out("image", "rgba.png", img("PNG", grad.convert("RGBA")))
out("image", "palette.png", img("PNG", grad.convert("P", palette=Image.ADAPTIVE, colors=5), transparency=1))
out("image", "bits.png", img("PNG", grad.convert("1")))
out("image", "gray16.png", img("PNG", grad.convert("I").point(lambda v: v * 200)))
out("image", "la.png", img("PNG", grad.convert("LA")))
