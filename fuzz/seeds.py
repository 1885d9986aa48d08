#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into fuzz/corpus/<target>/ (gitignored).

decode: small images in every format the loader reads (8- and 16-bit, grey, alpha, palette,
EXIF-rotated, progressive, CMYK), each also truncated and with flipped bytes, plus the example
photos; config_toml: the built-in profiles and scoring configs; http_request: one request per
route, with and without the API key, raw and multipart uploads. Needs Pillow
(`pip install pillow`).
"""
import io
import random
import struct
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
rng = random.Random(7)


def images():
    base = Image.new("RGB", (48, 32), (250, 250, 250))
    for x in range(12, 36):
        for y in range(8, 24):
            base.putpixel((x, y), (200, 40, 30))
    out = {}
    for fmt, kw in [
        ("JPEG", {"quality": 90}),
        ("JPEG", {"quality": 20, "progressive": True}),
        ("PNG", {}),
        ("WEBP", {"quality": 80}),
        ("WEBP", {"lossless": True}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
    ]:
        buf = io.BytesIO()
        base.save(buf, fmt, **kw)
        out[f"{fmt.lower()}_{len(out)}"] = buf.getvalue()
    for mode in ["L", "LA", "RGBA", "P", "I;16", "1"]:
        buf = io.BytesIO()
        base.convert("RGBA" if mode == "LA" else mode).convert(mode).save(buf, "PNG")
        out[f"png_{mode.replace(';', '')}"] = buf.getvalue()
    buf = io.BytesIO()
    base.convert("CMYK").save(buf, "JPEG")
    out["jpeg_cmyk"] = buf.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°
    buf = io.BytesIO()
    base.save(buf, "JPEG", exif=exif.tobytes())
    out["jpeg_exif_rot"] = buf.getvalue()
    return out


def damaged(data):
    cut = data[: max(1, len(data) // 2)]
    flipped = bytearray(data)
    for _ in range(8):
        i = rng.randrange(len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
    return cut, bytes(flipped)


def write(target, name, data):
    d = ROOT / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main():
    imgs = images()
    for name, data in imgs.items():
        write("decode", name, data)
        cut, flipped = damaged(data)
        write("decode", name + "_cut", cut)
        write("decode", name + "_flip", flipped)
    for p in sorted((REPO / "examples").glob("*.jpg"))[:4]:
        write("decode", p.name, p.read_bytes())
    # AVIF and HEIC (read through libheif when the system has it), whole and damaged.
    fixtures = REPO / "crates/shotgrade-image/tests/fixtures"
    for p in sorted(q for q in fixtures.iterdir() if q.suffix in (".avif", ".heic")):
        data = p.read_bytes()
        cut, flipped = damaged(data)
        write("decode", p.name, data)
        write("decode", p.name + "_cut", cut)
        write("decode", p.name + "_flip", flipped)

    write("config_toml", "empty", b"")
    write("config_toml", "profiles.toml", (REPO / "crates/shotgrade-core/profiles.toml").read_bytes())
    write("config_toml", "profile", b'[house]\ntitle = "house"\nsource = "us"\n'
          b'background = ["solid", "lifestyle"]\n[house.checks]\nlongest_side = { min = 2000 }\n')
    write("config_toml", "scene", b'default_scene = "toys"\n[weights]\nbackground = 1.0\n'
          b"[scenes.toys]\nwhite = 90\nblack = 50\nsolid = 95\nlifestyle = 90\ncluttered = 10\n")

    jpeg = imgs["jpeg_0"]
    auth = b"Authorization: Bearer fuzz-key\r\n"
    head = b"Host: x\r\nConnection: close\r\n"
    for name, line in [("healthz", b"GET /healthz"), ("readyz", b"GET /readyz"),
                       ("metrics", b"GET /metrics"), ("openapi", b"GET /openapi.json"),
                       ("models", b"GET /v1/models"), ("missing", b"GET /nope")]:
        write("http_request", name, line + b" HTTP/1.1\r\n" + head + auth + b"\r\n")
    for name, query, key in [("score", b"", auth), ("score_nokey", b"", b""),
                             ("score_query", b"?scene=studio&profile=amazon-main", auth)]:
        write("http_request", name, b"POST /v1/score" + query + b" HTTP/1.1\r\n" + head + key
              + b"Content-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
              + b"\r\n\r\n" + jpeg)
    boundary = b"XyZ"
    body = b""
    for i, data in enumerate([jpeg, imgs["png_2"], b"not an image"]):
        body += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f"
                 + str(i).encode() + b".jpg\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 + data + b"\r\n")
    body += b"--" + boundary + b"--\r\n"
    for path in [b"/v1/score", b"/v1/score/batch"]:
        write("http_request", "multipart" + path.decode().replace("/", "_"),
              b"POST " + path + b" HTTP/1.1\r\n" + head + auth
              + b"Content-Type: multipart/form-data; boundary=" + boundary
              + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    write("http_request", "chunked", b"POST /v1/score HTTP/1.1\r\n" + head + auth
          + b"Transfer-Encoding: chunked\r\n\r\n" + hex(len(jpeg))[2:].encode() + b"\r\n" + jpeg
          + b"\r\n0\r\n\r\n")
    print("seed corpora written under", ROOT / "corpus", file=sys.stderr)


if __name__ == "__main__":
    main()
