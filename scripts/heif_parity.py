#!/usr/bin/env python3
"""AVIF and HEIC score like JPEG: re-encodes real shop photos as HEIC and AVIF, 8- and 10-bit,
scores every file with shotgrade, and compares each total with the original JPEG's.

    python3 scripts/heif_parity.py [--shotgrade target/release/shotgrade] [--count 20]

Needs libheif's `heif-enc` (Debian `libheif-examples`), Pillow and pypng (16-bit PNG input for
the 10-bit files). Photos: the first --count of the labelled `test` part of data/real, taken
round-robin over its sources, so packshots, on-model, lifestyle and amateur photos all appear.
Writes the files and results under --out; exits 1 when a total differs by more than --tolerance.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
from collections import OrderedDict

import png
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def pick(count, assets):
    split = list(csv.DictReader(open(os.path.join(REPO, "data", "real", "split.csv"))))
    by_source = OrderedDict()
    for row in split:
        if row["part"] == "test" and row["path"].lower().endswith((".jpg", ".jpeg")):
            by_source.setdefault(row["source"], []).append(row["path"])
    chosen = []
    while len(chosen) < count and any(by_source.values()):
        for paths in by_source.values():
            if paths and len(chosen) < count:
                chosen.append(paths.pop(0))
    return [os.path.join(assets, p) for p in chosen]


def encode(src, out_dir, stem, quality):
    """The photo as 8- and 10-bit HEIC and AVIF; returns {variant: path}."""
    rgb = Image.open(src).convert("RGB")
    png8 = os.path.join(out_dir, stem + ".8.png")
    rgb.save(png8)
    w, h = rgb.size
    raw = rgb.tobytes()
    rows = [[v * 257 for v in raw[y * 3 * w:(y + 1) * 3 * w]] for y in range(h)]
    png16 = os.path.join(out_dir, stem + ".16.png")
    with open(png16, "wb") as f:
        png.Writer(w, h, greyscale=False, bitdepth=16).write(f, rows)
    files = {}
    for variant, source, extra in [
        ("heic 8-bit", png8, []),
        ("avif 8-bit", png8, ["-A"]),
        # Debian 12's heif-enc (libheif 1.15, aom 3.6) aborts on 10-bit AVIF: not made here.
        ("heic 10-bit", png16, ["-b", "10"]),
    ]:
        ext = "avif" if "-A" in extra else "heic"
        target = os.path.join(out_dir, f"{stem}.{variant.split()[1].replace('-', '')}.{ext}")
        subprocess.run(["heif-enc", "-q", str(quality), *extra, source, "-o", target],
                       check=True, capture_output=True)
        files[variant] = target
    os.remove(png8)
    os.remove(png16)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shotgrade", default=os.path.join(REPO, "target", "release", "shotgrade"))
    ap.add_argument("--assets", default=os.path.join(os.path.dirname(REPO), "shared", "assets"))
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--tolerance", type=float, default=2.0)
    ap.add_argument("--out", default="/tmp/shotgrade-heif-parity")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    photos = pick(a.count, a.assets)
    variants = {}
    for i, src in enumerate(photos):
        stem = f"{i:02d}"
        variants[src] = encode(src, a.out, stem, a.quality)
    paths = photos + [p for v in variants.values() for p in v.values()]
    run = subprocess.run([a.shotgrade, "score", "--format", "jsonl", "-q", *paths],
                         capture_output=True, text=True)
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    total = {}
    for row in rows:
        total[row["path"]] = row.get("scores", {}).get("total") if row.get("status") == "ok" else None
    worst = 0.0
    print(f"{'photo':<48} {'jpeg':>6}  " + "  ".join(f"{v:>11}" for v in next(iter(variants.values()))))
    failed = False
    for src, files in variants.items():
        base = total.get(src)
        cells = []
        for v, p in files.items():
            t = total.get(p)
            if base is None or t is None:
                cells.append(f"{'error':>11}")
                failed = True
                continue
            d = t - base
            worst = max(worst, abs(d))
            failed |= abs(d) > a.tolerance
            cells.append(f"{d:>+11.2f}")
        name = os.path.relpath(src, a.assets)
        print(f"{name[-48:]:<48} {base if base is None else round(base, 1):>6}  " + "  ".join(cells))
    print(f"{len(variants)} photos x {len(next(iter(variants.values())))} encodings: largest "
          f"difference from the JPEG's total {worst:.2f} points (tolerance {a.tolerance})")
    sys.exit(1 if failed else 0)


main()
