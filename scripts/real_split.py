#!/usr/bin/env python3
"""Writes data/real/split.csv: every labelled real photo in train, validation or test, by
product family, so that no product has photos in two parts.

    python3 scripts/real_split.py [--assets ../shared/assets]

Deterministic; run it again after adding labels: a photo already in split.csv keeps its part
(evaluation parts never shift under models already measured on them), and a new photo joins its
family's part when the family is already split. Rules:
* family: the file name up to the first `-` or `_`, lower-cased (`mh04-white_main` → `mh04`,
  `ipod_nano_3` → `ipod`, `Oatly-Oat-Milk_004` → `oatly`), with opencart's `product_` prefix
  dropped (`product_iphone` → `iphone`) — views and colours of one product share a family;
* photos whose thumbnails are equal (copies under another name) join one family, and so do the
  crops of one shot seen by eye (`SAME_SHOT`; a crop's thumbnail differs from its source's);
* magento2 and spree keep the split the shipped experience network was trained under
  (`shotgrade_synth::shop_photo_split`: their families, over the whole index, sorted, round-robin
  train / validation / test), so its held-out photos stay held out;
* every other source: new families in the order of a hash of their name, each to the part
  furthest below its target share of the source's photos (the rows already split counted) —
  train 50 %, validation 25 %, test 25 %."""
import argparse, csv, glob, hashlib, os, re

TARGETS = {"train": 0.50, "validation": 0.25, "test": 0.25}

# Crops of one shot under unrelated names, seen while labelling: path → the family they join.
SAME_SHOT = {
    "real/chec/3_c77484.jpg": "1",
}


def family(path):
    stem = os.path.splitext(os.path.basename(path))[0].lower()
    if "/opencart/" in path:
        # `ipod_nano_3` and `ipod_classic_1` are different products; `product_samsungtab` is
        # a view of `samsung_tab`.
        stem = re.sub(r"^product_", "", stem)
        return re.sub(r"_\d+$", "", stem).replace("_", "")
    return re.split(r"[-_]", stem)[0]


def thumbprint(path):
    """A 24×24 grey thumbnail: close for re-saved or re-sized copies of one photo."""
    from PIL import Image
    return Image.open(path).convert("L").resize((24, 24), Image.BILINEAR).tobytes()


def copies(a, b):
    """Thumbnails of one photo: every pixel within 8 grey levels, on average within 2."""
    diffs = [abs(x - y) for x, y in zip(a, b)]
    return max(diffs) <= 8 and sum(diffs) <= 2 * len(diffs)


def source(path):
    parts = path.split("/")
    return parts[1] if len(parts) > 2 else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", default="../shared/assets")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    data = os.path.join(here, "..", "data", "real")
    labelled = []
    for f in sorted(glob.glob(os.path.join(data, "labels", "*.csv"))):
        labelled += [r["path"] for r in csv.DictReader(open(f))]
    if len(set(labelled)) != len(labelled):
        raise SystemExit("a photo is labelled twice")

    # The shop split of the shipped models: families of all magento2 + spree photos in the index.
    index = list(csv.DictReader(open(os.path.join(a.assets, "real", "index.csv"))))
    shop = sorted({family(r["path"]) for r in index
                   if r["path"].startswith(("real/magento2", "real/spree"))})
    shop_part = {f: ["train", "validation", "test"][i % 3] for i, f in enumerate(shop)}

    # Photos that are copies of one another (bagisto re-uses some under several product ids)
    # join their families, so a copy never lands on both sides of the split.
    fam = {p: SAME_SHOT.get(p, family(p)) for p in labelled}
    prints = {p: thumbprint(os.path.join(a.assets, p)) for p in labelled}
    merged = {}

    def root(f):
        while f in merged:
            f = merged[f]
        return f

    for i, p in enumerate(labelled):
        for q in labelled[:i]:
            if source(p) == source(q) and copies(prints[p], prints[q]):
                fp, fq = root(fam[p]), root(fam[q])
                if fp != fq:
                    merged[max(fp, fq)] = min(fp, fq)
    for p in labelled:
        fam[p] = root(fam[p])

    # Rows already split keep their part; their families pull new copies and views along.
    out = os.path.join(data, "split.csv")
    kept = {}
    if os.path.exists(out):
        kept = {r["path"]: r["part"] for r in csv.DictReader(open(out)) if r["path"] in fam}
    family_part = {}
    for p, k in kept.items():
        if family_part.setdefault((source(p), fam[p]), k) != k:
            print(f"warning: family {fam[p]} now spans parts ({p} stays in {k})")

    part = dict(kept)
    by_source = {}
    for p in labelled:
        by_source.setdefault(source(p), []).append(p)
    for src, paths in sorted(by_source.items()):
        if src in ("magento2", "spree"):
            for p in paths:
                part.setdefault(p, shop_part[family(p)])
            continue
        fams = {}
        counts = {k: 0 for k in TARGETS}
        for p in paths:
            if p in kept:
                counts[kept[p]] += 1
            elif (src, fam[p]) in family_part:
                part[p] = family_part[(src, fam[p])]
                counts[part[p]] += 1
            else:
                fams.setdefault(fam[p], []).append(p)
        order = sorted(fams, key=lambda f: hashlib.sha256(f"{src}/{f}".encode()).hexdigest())
        for f in order:
            total = sum(counts.values()) + len(fams[f])
            chosen = max(TARGETS, key=lambda k: TARGETS[k] * total - counts[k])
            counts[chosen] += len(fams[f])
            for p in fams[f]:
                part[p] = chosen

    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "source", "family", "part"])
        for p in sorted(part):
            w.writerow([p, source(p), fam[p], part[p]])
    summary = {}
    for p, k in part.items():
        summary.setdefault(source(p), {}).setdefault(k, 0)
        summary[source(p)][k] += 1
    for src, c in sorted(summary.items()):
        print(f"{src:10} " + "  ".join(f"{k} {c.get(k, 0)}" for k in TARGETS))
    print(f"{len(part)} photos → {os.path.relpath(out)}")


main()
