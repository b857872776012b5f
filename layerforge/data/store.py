"""LMDB and LevelDB stores of Caffe Datum records (key = zero-padded index), written atomically.

Both backends are Caffe's `db::DB` choices (data_param.backend); records are read in key
order, which is the order they were written in.
"""
import io
import os
import shutil
from pathlib import Path

import lmdb
import numpy as np
from tqdm import tqdm

from layerforge.data.errors import DatasetError
from layerforge.io import process_alive
from layerforge.proto import layerforge_pb2 as pb

MAP_SIZE = 1 << 40  # address space only: the file grows with the data (Caffe uses the same)


def datums(images, labels, on_record=None):
    """(key, serialized Datum) per image of a uint8 N×C×H×W array, keys "%08d" as in Caffe."""
    datum = pb.Datum()
    datum.channels, datum.height, datum.width = images.shape[1:]
    for i, (image, label) in enumerate(zip(images, labels)):
        datum.data = np.ascontiguousarray(image, np.uint8).tobytes()
        datum.label = int(label)
        yield b"%08d" % i, datum.SerializeToString()
        if on_record is not None:
            on_record(1)


BACKENDS = ("lmdb", "leveldb")


def _remove_stale_folders(path):
    """Remove `.<name>.tmp-<pid>` / `.<name>.old-<pid>` folders that killed builds of `path` left."""
    for stale in path.parent.glob(f".{path.name}.*-*"):
        kind, _, pid = stale.name[len(path.name) + 2:].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _write_folder(path, fill):
    """Fill a temporary folder with fill(temp) and rename it to `path`, all or nothing:
    on any error it is removed and an existing `path` is left untouched. Temporary folders
    of killed builds of `path` are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_folders(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        fill(temp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(temp, path)
            shutil.rmtree(old)
        else:
            os.replace(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return path


def write_lmdb(path, records):
    """Write (key, value) records to a new LMDB at `path`, all or nothing."""
    def fill(temp):
        env = lmdb.open(str(temp), map_size=MAP_SIZE, subdir=True, lock=False)
        try:
            txn = env.begin(write=True)
            for n, (key, value) in enumerate(records, 1):
                txn.put(key, value)
                if n % 1000 == 0:
                    txn.commit()
                    txn = env.begin(write=True)
            txn.commit()
            env.sync()
        finally:
            env.close()
    return _write_folder(path, fill)


def write_leveldb(path, records):
    """Write (key, value) records to a new LevelDB at `path`, all or nothing."""
    import plyvel

    def fill(temp):
        db = plyvel.DB(str(temp), create_if_missing=True, error_if_exists=True)
        try:
            batch = db.write_batch()
            for n, (key, value) in enumerate(records, 1):
                batch.put(key, value)
                if n % 1000 == 0:
                    batch.write()
                    batch = db.write_batch()
            batch.write()
        finally:
            db.close()
    return _write_folder(path, fill)


def write_db(path, records, backend="lmdb"):
    """Write records with the named backend ("lmdb" or "leveldb")."""
    return (write_leveldb if backend == "leveldb" else write_lmdb)(path, records)


def _is_lmdb(path):
    return (Path(path) / "data.mdb").is_file()


def _is_leveldb(path):
    return (Path(path) / "CURRENT").is_file()


def _open_lmdb(source):
    """A read-only lmdb Environment of `source`, checked to be whole: a data.mdb shorter than
    the pages its header counts would crash the process (SIGBUS) when read."""
    try:
        env = lmdb.open(str(source), readonly=True, lock=False)
    except lmdb.Error as err:
        raise DatasetError(f"{source}: not a readable LMDB (corrupt or truncated: {err}); rebuild it") from None
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = os.path.getsize(Path(source) / "data.mdb")
    if size < needed:
        env.close()
        raise DatasetError(f"{source}: the LMDB is truncated (data.mdb has {size:,} of its {needed:,} bytes: "
                           f"an interrupted copy or a full disk?); rebuild it")
    return env


def count_records(path, backend="lmdb"):
    """Number of records in the database at `path`, or None when there is none."""
    if backend == "leveldb":
        if not _is_leveldb(path):
            return None
        import plyvel
        try:
            with plyvel.DB(str(path), create_if_missing=False) as db:
                return sum(1 for _ in db.iterator(include_value=False))
        except plyvel.Error:
            return None
    if not _is_lmdb(path):
        return None
    try:
        with _open_lmdb(path) as env:
            return env.stat()["entries"]
    except DatasetError:
        return None


def _decode(datum, source, key):
    if datum.encoded:
        from PIL import Image
        try:
            image = np.asarray(Image.open(io.BytesIO(datum.data)))
        except OSError as err:
            raise DatasetError(f"{source}: record {key}: cannot decode the encoded image: {err}") from err
        return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    shape = (datum.channels, datum.height, datum.width)
    if 0 in shape:
        raise DatasetError(f"{source}: record {key!r} holds no image ({shape[0]}x{shape[1]}x{shape[2]}): "
                           f"the database is damaged; rebuild it")
    if datum.data:
        pixels = np.frombuffer(datum.data, np.uint8)
    else:
        pixels = np.asarray(datum.float_data, np.float32)
    if pixels.size != np.prod(shape):
        raise DatasetError(f"{source}: record {key} holds {pixels.size} values but says it is "
                           f"{shape[0]}x{shape[1]}x{shape[2]}")
    return pixels.reshape(shape)


def _read_datums(source, count, items, keys=None):
    """(images, labels) of `count` (key, serialized Datum) items, all of the first one's size and
    kind; float pixels must be finite. Labels are any int32, as in Caffe: a layer that reads
    them checks them (a loss's ignore_label may be -1). `keys`, a list, gets every record's key."""
    if count == 0:
        raise DatasetError(f"{source}: the database holds no records")
    datum = pb.Datum()
    images = labels = first_key = None
    for i, (key, value) in enumerate(items):
        key = key.decode(errors="replace")
        try:
            datum.ParseFromString(value)
        except Exception as err:
            raise DatasetError(f"{source}: record {key} is not a Datum: {err}") from err
        image = _decode(datum, source, key)
        if images is None:
            images = np.empty((count,) + image.shape, image.dtype)
            labels = np.empty(count, np.int64)
            first_key = key
        elif image.shape != images.shape[1:] or image.dtype != images.dtype:
            raise DatasetError(
                f"{source}: record {key} is a {'x'.join(map(str, image.shape))} {image.dtype} image "
                f"but record {first_key} is {'x'.join(map(str, images.shape[1:]))} {images.dtype}; "
                f"all records must have one size (for images of several sizes, rebuild with --resize HxW)")
        if image.dtype.kind == "f" and not np.all(np.isfinite(image)):
            raise DatasetError(f"{source}: record {key}: {int(np.sum(~np.isfinite(image)))} pixel(s) are "
                               f"NaN or infinite")
        images[i] = image
        labels[i] = datum.label
        if keys is not None:
            keys.append(key)
    return images, labels


def read_lmdb(path, keys=None):
    """All records of an LMDB: (images N×C×H×W uint8 or float32, labels int64 N).

    Every record must have the first record's size and kind (uint8 or float). A list passed
    as `keys` gets the records' keys, in order.
    """
    source = Path(path)
    if not _is_lmdb(source):
        hint = " (it is a LevelDB: set backend: LEVELDB)" if _is_leveldb(source) else ""
        raise DatasetError(f"{source}: no LMDB there (expected a directory holding data.mdb){hint}; "
                           f"build one with `layerforge data mnist --out DIR` or "
                           f"`layerforge data images --out DIR ROOT`")
    try:
        with _open_lmdb(source) as env, env.begin() as txn:
            return _read_datums(source, env.stat()["entries"], txn.cursor(), keys)
    except lmdb.Error as err:
        raise DatasetError(f"{source}: the LMDB is corrupt ({type(err).__name__}: {err}); rebuild it") from None


def read_leveldb(path, keys=None):
    """All records of a LevelDB, as read_lmdb reads an LMDB."""
    import plyvel
    source = Path(path)
    if not _is_leveldb(source):
        hint = " (it is an LMDB: set backend: LMDB)" if _is_lmdb(source) else ""
        raise DatasetError(f"{source}: no LevelDB there (expected a directory holding CURRENT){hint}; "
                           f"build one with `layerforge data mnist --backend leveldb --out DIR`")
    try:
        with plyvel.DB(str(source), create_if_missing=False) as db:
            count = sum(1 for _ in db.iterator(include_value=False))
            return _read_datums(source, count, db.iterator(), keys)
    except plyvel.Error as err:
        raise DatasetError(f"{source}: cannot open the LevelDB: {err}") from err


def read_db(path, backend="lmdb", keys=None):
    """All records of the database at `path` with the named backend ("lmdb" or "leveldb");
    a list passed as `keys` gets the records' keys."""
    return (read_leveldb if backend == "leveldb" else read_lmdb)(path, keys)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def image_datums(files, resize=None, gray=False, encoded=None, progress=False):
    """(key, serialized Datum) per (image path, label) of `files`: grayscale or RGB, C×H×W,
    resized to (height, width) if asked, else all of the first image's size. `encoded`
    ("png" or "jpg") stores the image compressed (Datum.encoded) instead of raw pixels."""
    from PIL import Image

    datum = pb.Datum()
    first = None
    for i, (path, label) in enumerate(tqdm(files, desc="images", unit="img", disable=not progress)):
        try:
            with Image.open(path) as image:
                image = image.convert("L" if gray else "RGB")
                if resize:
                    image = image.resize((resize[1], resize[0]), Image.BILINEAR)
                image.load()
        except OSError as err:
            raise DatasetError(f"{path}: cannot read the image: {err}") from err
        shape = (1 if gray else 3, image.height, image.width)
        if first is None:
            first = (path, shape)
        elif shape != first[1]:
            raise DatasetError(f"{path} is {shape[1]}x{shape[2]} but {first[0]} is "
                               f"{first[1][1]}x{first[1][2]}; pass --resize HxW")
        datum.channels, datum.height, datum.width = shape
        datum.encoded = bool(encoded)
        if encoded:
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG" if encoded == "jpg" else encoded.upper())
            datum.data = buffer.getvalue()
        else:
            pixels = np.asarray(image)
            datum.data = np.ascontiguousarray(pixels if gray else pixels.transpose(2, 0, 1)).tobytes()
        datum.label = label
        yield b"%08d" % i, datum.SerializeToString()


def build_image_lmdb(root, out_dir, resize=None, gray=False, shuffle=False, progress=False, backend="lmdb"):
    """Database out_dir/images_<backend> from ROOT/<class>/<image>, plus out_dir/labels.txt.

    Labels are the sorted class-folder indices; labels.txt lists one folder name per
    line in label order. Colour images are stored RGB, C×H×W. `resize` is (height, width);
    without it every image must have the first one's size. `shuffle` writes the records
    in a seeded random order instead of class by class.
    """
    root, out_dir = Path(root), Path(out_dir)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    files = [(root / c / f, label) for label, c in enumerate(classes)
             for f in sorted(os.listdir(root / c)) if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"{root}: no PNG or JPEG images in class sub-folders (expected ROOT/<class>/<image>)")
    if shuffle:
        files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
    db_path = write_db(out_dir / f"images_{backend}", image_datums(files, resize, gray, progress=progress),
                       backend)
    (out_dir / "labels.txt").write_text("".join(f"{c}\n" for c in classes))
    return db_path
