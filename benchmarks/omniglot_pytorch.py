"""The Omniglot one-shot recipe of prototxt/omniglot_siamese_train_test.prototxt in PyTorch.

Same data (layerforge.data.omniglot reads the zips), the same held-out alphabets, pairs,
augmentation ranges, net, loss and solver settings, and the same seeded 20-way
within-alphabet trials (layerforge.tools.oneshot), so the accuracy is comparable with
`make omniglot`. Usage (needs torch and LAYERFORGE_OMNIGLOT):
    python benchmarks/omniglot_pytorch.py [--iters 3000] [--size 28]
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from layerforge.data.omniglot import load_omniglot  # noqa: E402
from layerforge.tools.oneshot import euclidean_scores, score_trials, within_group_trials  # noqa: E402

HELD_OUT = ("Balinese", "Early_Aramaic")


def encoder(size, width, feat, bn, classes):
    layers, channels = [], 1
    for _ in range(4):
        layers += [nn.Conv2d(channels, width, 3, padding=1)]
        layers += [nn.BatchNorm2d(width)] if bn else []
        layers += [nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
        channels = width
    side = size
    for _ in range(4):
        side = math.ceil(side / 2)
    body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * side * side, feat))
    head = nn.Linear(feat, classes) if classes else None
    return body, head


def affine(x, rng, rotation, shear, scale, translate):
    """Random affine warp per image (bilinear, zero fill) like layerforge's augmentation."""
    n, _, h, w = x.shape
    a = np.radians(rng.uniform(-rotation, rotation, n))
    sh = rng.uniform(-shear, shear, n)
    s = rng.uniform(1 - scale, 1 + scale, n)
    t = rng.uniform(-translate, translate, (n, 2)) * 2 / np.array([w, h])
    cos, sin = np.cos(a), np.sin(a)
    # output -> input map (normalised coords): inverse of scale·rotation·shear
    m = np.zeros((n, 2, 3))
    m[:, 0, 0], m[:, 0, 1] = cos / s, (sin + sh * cos) / s
    m[:, 1, 0], m[:, 1, 1] = -sin / s, (cos - sh * sin) / s
    m[:, :, 2] = t
    grid = F.affine_grid(torch.tensor(m, dtype=torch.float32), x.shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--feat", type=int, default=64)
    parser.add_argument("--bn", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--within", type=float, default=0.5, help="share of negatives from the same alphabet")
    parser.add_argument("--softmax", type=float, default=0.0, help="weight of a classification loss")
    parser.add_argument("--aug", type=int, default=1)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    start = time.time()
    full = load_omniglot(size=(args.size, args.size))
    alphabets = np.array(full.alphabets)
    train_classes = np.flatnonzero(~np.isin(alphabets, HELD_OUT))
    keep = np.isin(full.labels, train_classes)
    images = torch.tensor(full.images[keep], dtype=torch.float32) / 255
    labels = np.searchsorted(train_classes, full.labels[keep])
    groups = np.unique(alphabets[train_classes], return_inverse=True)[1]
    by_class = [np.flatnonzero(labels == c) for c in range(len(train_classes))]
    same_group = [np.flatnonzero((groups == groups[c]) & (np.arange(len(groups)) != c)) for c in range(len(groups))]
    body, head = encoder(args.size, args.width, args.feat, args.bn, len(train_classes) if args.softmax else 0)
    params = list(body.parameters()) + (list(head.parameters()) if head else [])
    opt = torch.optim.Adam(params, lr=args.lr)
    print(f"train {len(train_classes)} classes ({', '.join(sorted(set(alphabets[train_classes])))}), "
          f"held out {', '.join(HELD_OUT)}; {len(images)} images at {args.size}", flush=True)
    for it in range(args.iters):
        first = rng.integers(0, len(labels), args.batch)
        c = labels[first]
        match = np.arange(args.batch) % 2 == 0
        other = (c + 1 + rng.integers(0, len(by_class) - 1, args.batch)) % len(by_class)
        hard = rng.random(args.batch) < args.within
        for i in np.flatnonzero(hard):
            other[i] = rng.choice(same_group[c[i]])
        partner_class = np.where(match, c, other)
        partner = np.array([rng.choice(by_class[k]) for k in partner_class])
        x1, x2 = images[first], images[partner]
        if args.aug:
            x1 = affine(x1, rng, 10, 0.3, 0.2, 2 * args.size / 105 * 2)
            x2 = affine(x2, rng, 10, 0.3, 0.2, 2 * args.size / 105 * 2)
        body.train()
        h = body(torch.cat([x1, x2]))
        a, b = h[:args.batch], h[args.batch:]
        d = (a - b).pow(2).sum(1).add(1e-12).sqrt()
        y = torch.tensor(match, dtype=torch.float32)
        loss = (y * d.pow(2) + (1 - y) * F.relu(args.margin - d).pow(2)).mean() / 2
        if head is not None:
            loss = loss + args.softmax * F.cross_entropy(head(h), torch.tensor(np.concatenate([c, partner_class])))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 250 == 0 or it == args.iters - 1:
            print(f"iter {it} loss {loss.item():.4f} {time.time() - start:.0f}s", flush=True)
    train_time = time.time() - start
    body.eval()
    test = np.isin(alphabets[full.labels], HELD_OUT)
    with torch.no_grad():
        enc = body(torch.tensor(full.images[test], dtype=torch.float32) / 255).numpy()
    labels_t = full.labels[test]
    groups_t = np.unique(alphabets, return_inverse=True)[1]
    query, support = within_group_trials(labels_t, groups_t, full.drawers[test], 20, args.trials,
                                         np.random.default_rng(0))
    result = score_trials(euclidean_scores(enc), query, support, np.random.default_rng(0))
    print(f"PyTorch {vars(args)}")
    print(result.line() + f" [held out: {', '.join(HELD_OUT)}]; train {train_time:.0f} s")


if __name__ == "__main__":
    main()
