"""The example nets and solvers shipped with the package, copied out for a user to run."""
from importlib import resources
from pathlib import Path

from layerforge.io import ConfigError

FOLDERS = ("prototxt", "solvers")


def example_files():
    """{relative path: Traversable} of every shipped example (prototxt/*.prototxt, solvers/*.prototxt)."""
    root = resources.files("layerforge.examples")
    return {f"{folder}/{item.name}": item for folder in FOLDERS
            for item in sorted(root.joinpath(folder).iterdir(), key=lambda item: item.name)
            if item.name.endswith(".prototxt")}


def copy_examples(dest, overwrite=False):
    """Copy the examples to dest/prototxt and dest/solvers (created); returns the paths written.
    Existing files are an error naming them, unless `overwrite`."""
    dest = Path(dest)
    files = example_files()
    clashes = [name for name in files if (dest / name).exists()]
    if clashes and not overwrite:
        raise ConfigError(f"{dest}: {', '.join(clashes)} already exist; pass --force to overwrite them")
    written = []
    for name, item in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(item.read_bytes())
        written.append(dest / name)
    return written
