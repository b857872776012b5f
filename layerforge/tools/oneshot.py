"""N-way one-shot evaluation in the style of Koch et al. (2015): classify a query image by
the nearest of N support images, one per class, in a net's encoding space (or by the highest
score of a verification net that compares two images).

Trials come from labelled images (random classes), from Omniglot alphabets (within one
alphabet, as Lake's runs are drawn) or from Lake's run folders themselves.

Each trial draws N distinct classes, one support image per class and a query of the first
class (a different image than its support); it is correct when the query's encoding is
nearest (Euclidean) to that support. Ties are broken at random, so a collapsed encoder
scores chance (1/N), not 1. The 95 % interval is Wilson's score interval.
"""
import math
import re
import tempfile
from dataclasses import dataclass

import numpy as np

from layerforge.net import PHASE_NAMES, NetError
from layerforge.proto import layerforge_pb2 as pb

Z95 = 1.959963984540054   # the standard normal's 97.5 % quantile


class OneShotError(ValueError):
    """The images cannot support the asked evaluation (too few classes or images)."""


@dataclass(frozen=True)
class OneShotResult:
    """How many of `trials` N-way trials were right, with the accuracy's 95 % interval."""
    ways: int
    trials: int
    correct: int
    low: float     # 95 % Wilson score interval of the accuracy
    high: float

    @property
    def accuracy(self):
        return self.correct / self.trials

    def line(self):
        return (f"{self.ways}-way one-shot accuracy over {self.trials} trials: {self.accuracy:.3f} "
                f"(95% CI {self.low:.3f}-{self.high:.3f})")


def wilson_interval(correct, trials, z=Z95):
    """Wilson's score interval for a binomial proportion: the p whose normal-approximation
    test does not reject correct/trials. Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1]
    and is not empty at p = 0 or 1:
        (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p, n = correct / trials, trials
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)


def one_shot_accuracy(encode, images, labels, ways, trials, rng):
    """Run `trials` N-way one-shot trials on `images` (labels: one class per image).

    `encode(images)` returns one encoding per image (N×D, or N×anything: flattened); it is
    called once, on all images. `rng` is a numpy Generator (seed it to repeat a run).
    """
    labels = np.asarray(labels)
    if ways < 2 or trials < 1:
        raise OneShotError(f"need ways >= 2 and trials >= 1, got ways {ways}, trials {trials}")
    classes, counts = np.unique(labels, return_counts=True)
    if ways > len(classes):
        raise OneShotError(f"{ways}-way one-shot needs {ways} classes but the images hold "
                           f"{len(classes)} ({', '.join(map(str, classes))}); lower --ways or add classes")
    if counts.min() < 2:
        raise OneShotError(f"class {classes[counts.argmin()]} has {counts.min()} image; one-shot trials "
                           f"need at least 2 images per class (a support and a query)")
    encodings = np.asarray(encode(images), np.float64)
    if len(encodings) != len(labels):
        raise OneShotError(f"the encoder returned {len(encodings)} encodings for {len(labels)} images")
    members = [np.flatnonzero(labels == c) for c in classes]
    query = np.empty(trials, np.int64)
    support = np.empty((trials, ways), np.int64)
    for t in range(trials):
        chosen = rng.choice(len(classes), ways, replace=False)
        query[t], support[t, 0] = rng.choice(members[chosen[0]], 2, replace=False)
        support[t, 1:] = [rng.choice(members[c]) for c in chosen[1:]]
    return score_trials(euclidean_scores(encodings), query, support, rng)


def euclidean_scores(encodings):
    """score(query, support) for score_trials: minus the squared Euclidean distance between
    rows of `encodings` (N×anything, flattened)."""
    encodings = np.asarray(encodings, np.float64)
    encodings = encodings.reshape(len(encodings), -1)

    def score(query, support):
        return -np.sum((encodings[support] - encodings[query][:, None]) ** 2, axis=2)
    return score


def concatenated_encoder(encoders):
    """encode(images) of several models together: each encoder's encodings (flattened) scaled
    to unit mean L2 norm over `images`, then concatenated. The scaling gives every model the
    same weight in the Euclidean distance whatever the scale of its encoding; it is one number
    per model, computed from the images being scored without their labels."""
    def encode(images):
        parts = []
        for one in encoders:
            encodings = np.asarray(one(images), np.float64)
            encodings = encodings.reshape(len(encodings), -1)
            norm = np.linalg.norm(encodings, axis=1).mean()
            parts.append(encodings / norm if norm > 0 else encodings)
        return np.concatenate(parts, axis=1)
    return encode


def score_trials(score, query, support, rng):
    """OneShotResult of trials whose right answer is column 0 of `support` (T×N indices):
    `score(query, support)` gives T×N similarities; the highest wins, ties broken with rng."""
    scores = score(query, support)
    correct = 0
    for row in scores:
        correct += int(rng.choice(np.flatnonzero(row == row.max())) == 0)
    trials, ways = support.shape
    return OneShotResult(ways, trials, correct, *wilson_interval(correct, trials))


def within_group_trials(labels, groups, drawers, ways, trials, rng):
    """(query T, support T×N) image indices of N-way trials drawn within one group (Omniglot:
    one alphabet), as in Lake's runs: a trial picks a group with at least N classes, N of its
    classes and two drawers; the supports are the first drawer's images of the N classes, the
    query the second drawer's image of the class in column 0."""
    labels, groups, drawers = (np.asarray(a) for a in (labels, groups, drawers))
    index = {(int(c), int(d)): i for i, (c, d) in enumerate(zip(labels, drawers))}
    drawers_of = {}
    for c, d in index:
        drawers_of.setdefault(c, set()).add(d)
    classes_of = {int(g): np.unique(labels[groups[labels] == g]) for g in np.unique(groups[labels])}
    eligible = sorted(g for g, members in classes_of.items() if len(members) >= ways)
    if ways < 2 or trials < 1:
        raise OneShotError(f"need ways >= 2 and trials >= 1, got ways {ways}, trials {trials}")
    if not eligible:
        raise OneShotError(f"{ways}-way trials within a group need a group with {ways} classes; the "
                           f"largest has {max(map(len, classes_of.values()))}")
    query = np.empty(trials, np.int64)
    support = np.empty((trials, ways), np.int64)
    for t in range(trials):
        chosen = rng.choice(classes_of[eligible[rng.integers(len(eligible))]], ways, replace=False)
        common = set.intersection(*(drawers_of[int(c)] for c in chosen))
        if len(common) < 2:
            raise OneShotError(f"classes {', '.join(map(str, chosen))} share fewer than 2 drawers")
        first, second = rng.choice(sorted(common), 2, replace=False)
        support[t] = [index[(int(c), int(first))] for c in chosen]
        query[t] = index[(int(chosen[0]), int(second))]
    return query, support


def read_runs(folder, size=None):
    """Lake's one-shot runs under `folder`: (images N×1×H×W, query T, support T×W).

    Each `runNN/` holds `training/*.png` (one image per class), `test/*.png` and
    `class_labels.txt`, lines `runNN/test/itemXX.png runNN/training/classYY.png` relative to
    `folder`. Every test item is a trial against all its run's training images; its right
    answer is column 0 of `support`. Images are read as `layerforge data omniglot` reads them.
    """
    from pathlib import Path

    from layerforge.data.omniglot import read_image

    root = Path(folder)
    runs = sorted(p for p in root.glob("run*") if re.fullmatch(r"run\d+", p.name) and p.is_dir())
    if not runs:
        raise OneShotError(f"{root}: no runNN/ folders (expected Lake's one-shot runs: runNN/class_labels.txt, "
                           f"runNN/training/classYY.png, runNN/test/itemXX.png)")
    paths, queries, supports = [], [], []
    index = {}

    def add(path):
        if path not in index:
            if not path.is_file():
                raise OneShotError(f"{path}: no such image")
            index[path] = len(paths)
            paths.append(path)
        return index[path]

    for run in runs:
        training = [add(p) for p in sorted((run / "training").glob("*.png"))]
        labels = run / "class_labels.txt"
        if not labels.is_file() or not training:
            raise OneShotError(f"{run}: expected class_labels.txt and training/*.png")
        for number, line in enumerate(labels.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or root / parts[1] not in index or index[root / parts[1]] not in training:
                raise OneShotError(f"{labels}:{number}: expected '<run>/test/<item>.png <run>/training/<class>.png' "
                                   f"naming a training image of {run.name}, got {line.strip()!r}")
            answer = index[root / parts[1]]
            queries.append(add(root / parts[0]))
            supports.append([answer] + [t for t in training if t != answer])
    if len({len(s) for s in supports}) != 1:
        raise OneShotError(f"{root}: the runs have different numbers of training images")
    if not queries:
        raise OneShotError(f"{root}: the class_labels.txt files list no test items")
    images = np.stack([read_image(str(p), size) for p in paths])[:, None]
    return images, np.array(queries), np.array(supports)


def alphabet_trials(source, alphabets, size, ways, trials, rng):
    """(images, query T, support T×N) of N-way trials within the Omniglot `alphabets` of the
    zips at `source` (see within_group_trials)."""
    from layerforge.data import DatasetError
    from layerforge.data.omniglot import load_omniglot

    try:
        data = load_omniglot(source, alphabets, size)
    except DatasetError as err:
        raise OneShotError(str(err)) from None
    groups = np.unique(data.alphabets, return_inverse=True)[1]
    query, support = within_group_trials(data.labels, groups, data.drawers, ways, trials, rng)
    return data.images, query, support


def pair_scores(net, images, transform=None, blob=None, first="data", second="data_p", batch_size=256):
    """score(query, support) for score_trials from a verification net: the net's RUN inputs
    `first` and `second` take the two images of a pair, and `blob` (default: its one output)
    gives one similarity per pair, higher meaning "same"."""
    blob = blob or (net.outputs[-1] if net.outputs else None)
    if blob not in net.blobs:
        raise NetError(f"{net.source}: no score blob {blob!r} in phase RUN; blobs: {', '.join(net.blobs)}")
    pixels = images if transform is None else transform(images)

    def score(query, support):
        a = np.repeat(query, support.shape[1])
        b = support.ravel()
        out = np.empty(len(a))
        for start in range(0, len(a), batch_size):
            span = slice(start, start + batch_size)
            net.forward(**{first: pixels[a[span]], second: pixels[b[span]]})
            values = net.blobs[blob].data.reshape(len(a[span]), -1)
            if values.shape[1] != 1:
                raise NetError(f"blob '{blob}' has {values.shape[1]} values per pair; a verification net "
                               f"gives one score per pair")
            out[span] = values[:, 0]
        return out.reshape(support.shape)
    return score


def net_encoder(net, blob="feat", input="data", transform=None, batch_size=256):
    """encode(images) for one_shot_accuracy: batches through `net.forward(input=...)` (after
    `transform`, e.g. a DataTransformer) and collects the `blob` rows."""
    if blob not in net.blobs:
        raise NetError(f"{net.source}: the net has no blob '{blob}' in phase {PHASE_NAMES[net.phase]}; "
                       f"blobs: {', '.join(net.blobs)}")

    def encode(images):
        rows = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            net.forward(**{input: batch if transform is None else transform(batch)})
            data = net.blobs[blob].data
            if len(data) != len(batch):
                raise NetError(f"blob '{blob}' has {len(data)} rows for a batch of {len(batch)} images; "
                               f"give a blob with one encoding per image")
            rows.append(data.reshape(len(batch), -1).copy())
        return np.concatenate(rows)
    return encode


def input_transform(net_param, scale, shape, input="data"):
    """(transform, output C×H×W, description): raw images -> the array to feed the net's
    `input`. An Input layer with a transform_param transforms what it is fed itself, so the
    images go in raw. Otherwise they are transformed as the model's first layer with a
    transform_param (its Data layer) does in TEST (crop centred, mean, scale; no mirror or
    augmentation); without one, pixels are multiplied by `scale`."""
    from layerforge.data.transform import DataTransformer

    feeder = next((layer for layer in net_param.layer if layer.type == "Input" and layer.top
                   and layer.top[0] == input and layer.HasField("transform_param")), None)
    layer = feeder or next((layer for layer in net_param.layer if layer.HasField("transform_param")), None)
    param = layer.transform_param if layer else pb.TransformationParameter(scale=scale)
    transform = DataTransformer(param, pb.TEST, shape)
    source = (f"by the net's Input layer '{layer.name}'" if feeder else
              f"as layer '{layer.name}' does" if layer else "with --scale")
    how = (f"{source} (scale {transform.scale:g}{', mean subtracted' if transform.mean is not None else ''}"
           f"{f', centre crop {transform.crop_size}' if transform.crop_size else ''})")
    if feeder:
        return (lambda images: images), transform.output_shape, how
    return (lambda images: transform(images, None)), transform.output_shape, how


def load_lmdb_images(source, classes=None):
    """(images N×C×H×W, int labels) of an LMDB; only the records of `classes` when given."""
    from layerforge.data import read_lmdb

    images, labels = read_lmdb(source)
    if classes is not None:
        try:
            classes = [int(c) for c in classes]
        except ValueError:
            raise OneShotError(f"{source}: the classes of an LMDB are integer labels, "
                               f"got {', '.join(classes)}") from None
    return _only(images, labels, classes, source)


def load_folder_images(root, classes=None, size=None, gray=False):
    """(images N×C×H×W, class-folder names) from ROOT/<class>/<image>, read by the images
    LMDB builder (resized to size=(H, W), grayscale when asked); only the folders in `classes`."""
    from layerforge.data import read_lmdb
    from layerforge.data.store import build_image_lmdb

    with tempfile.TemporaryDirectory(prefix="layerforge-oneshot-") as temp:
        images, labels = read_lmdb(build_image_lmdb(root, temp, size, gray))
        names = np.array(open(f"{temp}/labels.txt").read().splitlines())
    return _only(images, names[labels], classes, root)


def _only(images, labels, classes, source):
    if classes is None:
        return images, labels
    present = set(np.unique(labels).tolist())
    missing = [str(c) for c in classes if c not in present]
    if missing:
        raise OneShotError(f"{source}: no images of class {', '.join(missing)} "
                           f"(classes there: {', '.join(map(str, sorted(present)))})")
    keep = np.isin(labels, classes)
    return images[keep], labels[keep]
