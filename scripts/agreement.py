#!/usr/bin/env python3
"""Agreement between the committed labels and a second rater's background classes.

    python3 scripts/agreement.py [data/real/agreement/background_rater2.csv]

The second rater classed the photos blind to the labels and to every model (the file's
`background` column, same classes and guide). Photos either rater called `none` are left out.
Prints the share of photos on which both agree, per source, and the pairs they disagree on."""
import collections, csv, glob, os, sys

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "real")
second = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "agreement", "background_rater2.csv")
labels = {}
for f in glob.glob(os.path.join(here, "labels", "*.csv")):
    labels.update({r["path"]: r["background"] for r in csv.DictReader(open(f))})
pairs = collections.defaultdict(list)
for r in csv.DictReader(open(second)):
    first = labels.get(r["path"])
    if first is None:
        raise SystemExit(f"{r['path']}: not in the committed labels")
    if "none" in (first, r["background"]):
        continue
    source = r["path"].split("/")[1]
    group = "clothing" if source == "clothing" else "shops"
    pairs[group].append((first, r["background"]))
    pairs["all"].append((first, r["background"]))
for group in ("clothing", "shops", "all"):
    p = pairs[group]
    same = sum(a == b for a, b in p)
    print(f"{group:9} {same}/{len(p)} agree: {100 * same / max(len(p), 1):.1f} %")
off = collections.Counter((a, b) for a, b in pairs["all"] if a != b)
for (a, b), n in off.most_common():
    print(f"  labels {a}, second rater {b}: {n}")
