"""The Omniglot recipe of prototxt/omniglot_siamese_train_test.prototxt and its solver, in PyTorch.

The pairs and their augmentation come from layerforge's own Data layer (built from the same
prototxt, phase TRAIN: balanced pairs, different_within_group, Koch's affine warp), so only
the net, losses and solver run in PyTorch: the same Conv-4 encoder (conv 3x3 without bias,
BatchNorm with Caffe's moving-average fraction 0.999, ReLU, 2x2 max pooling; FC "feat"; width,
feature size and input size read from the prototxt),
ContrastiveLoss (margin 1, Caffe's 1/2N normalisation) on the two encodings of each pair plus
a softmax classifier on every image, msra / xavier initialisation as Caffe's fillers draw
them, biases at twice the learning rate, Adam (lr 0.001, betas 0.9/0.999) with the rate cut
tenfold at the solver's stepvalue. It is then scored as `make omniglot` scores layerforge:
`layerforge oneshot --alphabets` trials (seed 0) on the held-out alphabets.

Usage (needs torch, and data/omniglot/{train,val} from `make omniglot` or
`layerforge data omniglot`): python benchmarks/omniglot_pytorch.py [--iters N] [--threads 2]
On a fold of omniglot_folds.py (its solver.prototxt holds the net, pointed at the fold's data):
    python benchmarks/omniglot_pytorch.py --solver runs/omniglot_folds/Greek-Korean/solver.prototxt \
        --held-out Greek,Korean
"""
import argparse
import functools
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from google.protobuf import text_format

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from layerforge import io  # noqa: E402
from layerforge.proto import layerforge_pb2 as pb  # noqa: E402
from layerforge.testing import make_layer  # noqa: E402
from layerforge.tools import oneshot  # noqa: E402
from omniglot_folds import input_size  # noqa: E402

SOLVER = os.path.join(ROOT, "solvers", "omniglot_siamese_solver.prototxt")
HELD_OUT = ["Balinese", "Early_Aramaic"]


def caffe_xavier(weight):
    bound = math.sqrt(3.0 / (weight[0].numel()))        # Caffe: uniform ±sqrt(3 / fan_in)
    nn.init.uniform_(weight, -bound, bound)


class Encoder(nn.Module):
    def __init__(self, width, feat, size):
        super().__init__()
        layers, channels = [], 1
        for _ in range(4):
            conv = nn.Conv2d(channels, width, 3, padding=1, bias=False)
            nn.init.normal_(conv.weight, 0, math.sqrt(2.0 / conv.weight[0].numel()))   # Caffe msra
            layers += [conv, nn.BatchNorm2d(width, momentum=0.001), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
            channels = width
            size = math.ceil(size / 2)
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.feat = nn.Linear(width * size * size, feat)
        caffe_xavier(self.feat.weight)
        nn.init.zeros_(self.feat.bias)

    def forward(self, x):
        return self.feat(self.body(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--solver", default=SOLVER,
                        help="the recipe's solver (default: solvers/omniglot_siamese_solver.prototxt); "
                             "a fold's solver from omniglot_folds.py trains on that fold's data")
    parser.add_argument("--held-out", default=",".join(HELD_OUT), metavar="A,B",
                        help=f"alphabets to score (default: {','.join(HELD_OUT)})")
    parser.add_argument("--iters", type=int, help="training iterations (default: the solver's max_iter)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--eval-at", default="1000,2000", metavar="LIST",
                        help="also score the one-shot accuracy after these iterations (default: 1000,2000)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    os.chdir(ROOT)
    solver = io.read_solver(args.solver)
    args.iters = args.iters or solver.max_iter
    held_out = tuple(args.held_out.split(","))
    net = solver.net_param if solver.HasField("net_param") else io.read_net(solver.net)

    train_param = next(layer for layer in net.layer
                       if layer.type == "Data" and layer.include[0].phase == pb.TRAIN)
    data_layer, _, tops = make_layer(text_format.MessageToString(train_param), [], "TRAIN", 1, np.float32, 2)
    layers = {layer.name: layer for layer in net.layer}
    classes = layers["classifier"].inner_product_param.num_output
    feat = layers["feat"].inner_product_param.num_output
    size = input_size(net)[0]

    encoder = Encoder(layers["conv1"].convolution_param.num_output, feat, size)
    classifier = nn.Linear(feat, classes)
    caffe_xavier(classifier.weight)
    nn.init.zeros_(classifier.bias)
    biases = [encoder.feat.bias, classifier.bias]
    others = [p for p in list(encoder.parameters()) + list(classifier.parameters())
              if all(p is not b for b in biases)]
    optimizer = torch.optim.Adam([{"params": others, "lr": solver.base_lr},
                                  {"params": biases, "lr": 2 * solver.base_lr}],
                                 betas=(solver.momentum, solver.momentum2), eps=solver.delta)
    steps = list(solver.stepvalue)
    eval_at = {int(i) for i in args.eval_at.split(",") if i}
    try:
        held_out_trials(size, args.trials, held_out)  # before training: a missing zip stops it now
    except oneshot.OneShotError as err:
        sys.exit(f"omniglot_pytorch: {err}")
    start, cpu = time.time(), time.process_time()
    for it in range(args.iters):
        if it in steps:
            for group in optimizer.param_groups:
                group["lr"] *= solver.gamma
        data_layer.forward([], tops)
        pairs = torch.from_numpy(tops[0].data.reshape(-1, 1, size, size).copy())
        labels = torch.from_numpy(tops[1].data.reshape(-1).astype(np.int64))
        encoder.train()
        feat = encoder(pairs)
        a, b = feat[0::2], feat[1::2]
        similar = (labels[0::2] == labels[1::2]).float()
        d = (a - b).pow(2).sum(1).add(1e-12).sqrt()
        contrastive = (similar * d.pow(2) + (1 - similar) * F.relu(1 - d).pow(2)).sum() / (2 * len(d))
        loss = contrastive + F.cross_entropy(classifier(feat), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if it % solver.display == 0 or it == args.iters - 1:
            print(f"Iteration {it}, loss = {loss.item():.4f} (contrastive {contrastive.item():.4f}), "
                  f"{time.time() - start:.0f} s", flush=True)
        if it + 1 in eval_at and it + 1 < args.iters:
            print(f"Iteration {it + 1}: {one_shot(encoder, size, args.trials, held_out).line()}", flush=True)
    wall, cpu = time.time() - start, time.process_time() - cpu
    data_layer.close()
    print(f"PyTorch {torch.__version__}, {args.iters} iterations, {args.threads} threads: "
          f"training {wall:.0f} s wall, {cpu:.0f} s CPU (with the evaluations at {args.eval_at})")
    print(f"{one_shot(encoder, size, args.trials, held_out).line()} [held out: {', '.join(held_out)}]")


@functools.lru_cache(maxsize=1)
def held_out_trials(size, trials, held_out):
    """The trials' images, queries and supports, and the generator's state after drawing them."""
    rng = np.random.default_rng(0)
    images, query, support = oneshot.alphabet_trials(None, list(held_out), (size, size), 20, trials, rng)
    return images.astype(np.float32) * np.float32(0.00390625), query, support, rng.bit_generator.state


def one_shot(encoder, size, trials, held_out):
    """20-way trials within the held-out alphabets, drawn as `layerforge oneshot --seed 0` draws them."""
    pixels, query, support, state = held_out_trials(size, trials, held_out)
    rng = np.random.default_rng(0)
    rng.bit_generator.state = state
    encoder.eval()
    with torch.no_grad():
        encodings = encoder(torch.from_numpy(pixels)).numpy()
    encoder.train()
    return oneshot.score_trials(oneshot.euclidean_scores(encodings), query, support, rng)


if __name__ == "__main__":
    main()
