#!/usr/bin/env python3
"""Probe behind the background model's second stage (models/README.md, "A second stage for
white against off-white"): how well do statistics of the border band tell white from solid,
and what would trees over them plus the network's probabilities do for all five classes?

Not part of the build; needs numpy, Pillow and scikit-learn. Inputs (see the model card):

  shotgrade synth --count 10000 --seed 777000000 --min-side 160 --max-side 640 --out TRAIN
  shotgrade synth --count 5000 --seed 1099511627776 --min-side 160 --max-side 640 --out VAL
  shotgrade score TRAIN --weights NET_ONLY -q -o TRAIN.jsonl   # NET_ONLY: runs/L8's background
  shotgrade score VAL --weights NET_ONLY -q -o VAL.jsonl       # file + the shipped other two
  scripts/backdrop_probe.py TRAIN TRAIN.jsonl VAL VAL.jsonl
"""
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CLASSES = ['white', 'black', 'solid', 'lifestyle', 'cluttered']


def features(path):
    """19 border statistics (as shotgrade_image::backdrop_statistics, unscaled), then 6 more:
    band steps (mean, median, share > 8, 90th percentile) and edge densities of the photo."""
    a = np.asarray(Image.open(path).convert('RGB')).astype(np.float32)
    h, w, _ = a.shape
    b = max(1, round(min(w, h) * 0.02))
    m = np.zeros((h, w), bool)
    m[:b] = m[-b:] = True
    m[:, :b] = m[:, -b:] = True
    px = a[m]
    dark = px.min(axis=1)
    f = list(np.percentile(dark, [5, 10, 25, 50, 75, 90, 95]))
    f += [np.mean(dark >= 250), np.mean(dark >= 254.5), dark.mean(), dark.std()]
    f += list(np.median(px, axis=0)) + list(px.std(axis=0))
    g = a.mean(axis=2)
    dx = np.abs(np.diff(g, axis=1))
    f += [dx.mean(), np.median(dx)]
    band = np.concatenate([np.abs(np.diff(g[:b], axis=1)).ravel(), np.abs(np.diff(g[-b:], axis=1)).ravel(),
                           np.abs(np.diff(g[:, :b], axis=0)).ravel(), np.abs(np.diff(g[:, -b:], axis=0)).ravel()])
    f += [band.mean(), np.median(band), np.mean(band > 8), np.percentile(band, 90)]
    f += [np.mean(dx > 16), np.mean(dx > 32)]
    return [float(x) for x in f]


def load(folder, scores):
    rows = [json.loads(line) for line in open(os.path.join(folder, 'manifest.jsonl'))]
    probs = {}
    for line in open(scores):
        r = json.loads(line)
        probs[os.path.basename(r['path'])] = [r['background']['probabilities'][c] for c in CLASSES]
    with ProcessPoolExecutor() as ex:
        feats = list(ex.map(features, [os.path.join(folder, r['file']) for r in rows], chunksize=64))
    x = np.array([f + list(np.log(np.clip(probs[r['file']], 1e-6, 1))) for f, r in zip(feats, rows)])
    y = np.array([CLASSES.index(r['background']) for r in rows])
    net = np.array([int(np.argmax(probs[r['file']])) for r in rows])
    return x, y, net


def main():
    x, y, _ = load(sys.argv[1], sys.argv[2])
    xv, yv, net = load(sys.argv[3], sys.argv[4])
    light = [0, 2]
    tr, va = np.isin(y, light), np.isin(yv, light)
    print(f'network alone: {(net != yv).sum()} errors of {len(yv)}; '
          f'white<->solid among the {va.sum()} white/solid: {(np.isin(net[va], light) & (net[va] != yv[va])).sum()}')
    border = list(range(19))
    for name, model in [('trees', HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05)),
                        ('mlp64', make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=3000, random_state=0)))]:
        model.fit(x[tr][:, border], y[tr] == 0)
        wrong = (model.predict(xv[va][:, border]) != (yv[va] == 0)).sum()
        print(f'white vs solid from the 19 border statistics, {name}: {wrong} errors of {va.sum()}')
    every = list(range(30))
    for name, model in [('trees', HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05)),
                        ('mlp64', make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=2000, random_state=0)))]:
        model.fit(x[:, every], y)
        wrong = (model.predict(xv[:, every]) != yv).sum()
        print(f'all five classes from 25 statistics + the network\'s log-probabilities, {name}: '
              f'{wrong} errors of {len(yv)} ({100 * (1 - wrong / len(yv)):.2f} %)')


if __name__ == '__main__':
    main()
