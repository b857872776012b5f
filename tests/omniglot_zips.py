"""Synthetic Omniglot zips and one-shot run folders in Lake's layouts, for tests.

Each character is a fixed random pattern of black blocks on white; each drawer's image
of it moves a few blocks, so images of one character are closer to each other than to
any other character's.
"""
import io
import zipfile

import numpy as np
from PIL import Image


def character_image(char_seed, drawer, size=105):
    """A 1-bit PNG-able H×W bool array (True = white background) for one drawing."""
    rng = np.random.default_rng(char_seed)
    cells = rng.random((7, 7)) < 0.35
    jitter = np.random.default_rng(char_seed * 100 + drawer).random((7, 7)) < 0.04
    ink = np.kron(cells ^ jitter, np.ones((15, 15), bool))
    image = np.ones((size, size), bool)
    image[:ink.shape[0], :ink.shape[1]] = ~ink[:size, :size]
    return image


def png_bytes(white):
    out = io.BytesIO()
    Image.fromarray(white).convert("1").save(out, format="PNG")
    return out.getvalue()


def make_zip(path, root, alphabets, drawers=4, first_seed=0):
    """Write `path` holding root/<alphabet>/characterNN/<id>_<drawer>.png for
    alphabets = {name: number of characters}; returns {(alphabet, character): seed}."""
    seeds = {}
    with zipfile.ZipFile(path, "w") as archive:
        for a, (alphabet, count) in enumerate(sorted(alphabets.items())):
            for c in range(1, count + 1):
                seed = first_seed + 1000 * a + c
                seeds[(alphabet, f"character{c:02d}")] = seed
                for d in range(1, drawers + 1):
                    name = f"{root}/{alphabet}/character{c:02d}/{900 + c:04d}_{d:02d}.png"
                    archive.writestr(name, png_bytes(character_image(seed, d)))
    return seeds


def make_runs(folder, runs=2, ways=5, size=105):
    """Lake's one-shot run folders: runNN/{training,test}/, class_labels.txt."""
    for r in range(1, runs + 1):
        run = folder / f"run{r:02d}"
        (run / "training").mkdir(parents=True)
        (run / "test").mkdir()
        lines = []
        order = np.random.default_rng(r).permutation(ways)
        for i in range(ways):
            seed = 5000 + 100 * r + i
            Image.fromarray(character_image(seed, 1, size)).convert("1").save(
                run / "training" / f"class{i + 1:02d}.png")
            Image.fromarray(character_image(seed, 2, size)).convert("1").save(
                run / "test" / f"item{order[i] + 1:02d}.png")
            lines.append(f"run{r:02d}/test/item{order[i] + 1:02d}.png run{r:02d}/training/class{i + 1:02d}.png")
        (run / "class_labels.txt").write_text("\n".join(sorted(lines)) + "\n")
    return folder
