#!/usr/bin/env python3
"""Helpers for labelling real photos by eye (see data/real/GUIDE.md).

    label_tool.py grid PHOTO --out view.png [--box x0,y0,x1,y1]
        The photo at up to 900 px on mid-grey with a coordinate grid in the photo's own pixels
        (a line every 10 % of each side, labelled; ticks every 5 %); with --box, that box in red.
        Read a box's corners off the grid, then re-run with --box to check and adjust it.
    label_tool.py autobox PHOTO [--out check.png] [--tol 18]
        For photos on a white or near-white backdrop: the box of every pixel that differs from the
        backdrop colour (median of the border) by more than --tol in any channel, ignoring specks.
        Prints x0,y0,x1,y1; with --out, draws it on the grid view to be checked by eye.

Boxes are in the pixels of the file as stored (after EXIF orientation), x1/y1 exclusive.
Needs Pillow."""
import argparse, sys
from PIL import Image, ImageDraw, ImageFont, ImageOps

VIEW = 900


def load(path):
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


def grid(im, box=None):
    w, h = im.size
    s = min(VIEW / w, VIEW / h, 2.0)
    vw, vh = max(1, round(w * s)), max(1, round(h * s))
    pad = 60
    out = Image.new("RGB", (vw + 2 * pad, vh + 2 * pad), (128, 128, 128))
    out.paste(im.resize((vw, vh), Image.LANCZOS), (pad, pad))
    d = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=14)
    for i in range(21):
        f = i / 20
        x, y = pad + f * vw, pad + f * vh
        major = i % 2 == 0
        colour = (0, 200, 255) if major else (255, 0, 255)
        # dashed lines so the photo stays readable under them
        for t in range(0, vh, 8):
            if major:
                d.line([(x, pad + t), (x, pad + min(t + 3, vh))], fill=colour)
        for t in range(0, vw, 8):
            if major:
                d.line([(pad + t, y), (pad + min(t + 3, vw), y)], fill=colour)
        d.line([(x, pad - (12 if major else 6)), (x, pad)], fill=colour, width=2)
        d.line([(x, pad + vh), (x, pad + vh + (12 if major else 6))], fill=colour, width=2)
        d.line([(pad - (12 if major else 6), y), (pad, y)], fill=colour, width=2)
        d.line([(pad + vw, y), (pad + vw + (12 if major else 6), y)], fill=colour, width=2)
        if major:
            d.text((x - 12, 2), str(round(f * w)), fill=(255, 255, 0), font=font)
            d.text((x - 12, pad + vh + 16), str(round(f * w)), fill=(255, 255, 0), font=font)
            d.text((2, y - 7), str(round(f * h)), fill=(255, 255, 0), font=font)
            d.text((pad + vw + 14, y - 7), str(round(f * h)), fill=(255, 255, 0), font=font)
    if box:
        x0, y0, x1, y1 = box
        d.rectangle([pad + x0 * s, pad + y0 * s, pad + x1 * s - 1, pad + y1 * s - 1], outline=(255, 0, 0), width=3)
    d.text((pad, vh + pad + 34), f"{w}x{h}", fill=(255, 255, 255), font=font)
    return out


def autobox(im, tol):
    w, h = im.size
    px = im.load()
    border = [px[x, 0] for x in range(w)] + [px[x, h - 1] for x in range(w)]
    border += [px[0, y] for y in range(h)] + [px[w - 1, y] for y in range(h)]
    bg = tuple(sorted(c[i] for c in border)[len(border) // 2] for i in range(3))
    cols = [0] * w
    rows = [0] * h
    for y in range(h):
        for x in range(w):
            p = px[x, y]
            if max(abs(p[i] - bg[i]) for i in range(3)) > tol:
                cols[x] += 1
                rows[y] += 1
    # a column/row counts when more than 0.3 % of its pixels are foreground: ignores dust and JPEG ringing
    cx = [i for i, c in enumerate(cols) if c > max(1, h * 0.003)]
    ry = [i for i, c in enumerate(rows) if c > max(1, w * 0.003)]
    if not cx or not ry:
        return None, bg
    return (cx[0], ry[0], cx[-1] + 1, ry[-1] + 1), bg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grid")
    g.add_argument("photo")
    g.add_argument("--out", required=True)
    g.add_argument("--box")
    a_ = sub.add_parser("autobox")
    a_.add_argument("photo")
    a_.add_argument("--out")
    a_.add_argument("--tol", type=int, default=18)
    a = ap.parse_args()
    im = load(a.photo)
    if a.cmd == "grid":
        box = tuple(int(v) for v in a.box.split(",")) if a.box else None
        grid(im, box).save(a.out)
    else:
        box, bg = autobox(im, a.tol)
        if box is None:
            print("no foreground found", file=sys.stderr)
            sys.exit(1)
        print(",".join(map(str, box)), f"backdrop={bg}")
        if a.out:
            grid(im, box).save(a.out)


main()
