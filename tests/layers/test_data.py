"""Data layer on a synthetic LMDB: plain batches, MyCaffe pairing, determinism, prefetch, resume."""
import gc
import json

import numpy as np
import pytest

from layerforge.data.prefetch import Prefetcher
from layerforge.data.store import datums, write_leveldb, write_lmdb
from layerforge.layer import LayerError
from layerforge.testing import make_layer

NUM, SHAPE, CLASSES = 23, (1, 5, 4), 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """23 distinct random images, labels 0..3 (class 3 has a single record)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (NUM,) + SHAPE, dtype=np.uint8)
    labels = np.array([0, 1, 2] * 7 + [3, 0])
    path = write_lmdb(tmp_path_factory.mktemp("data") / "db", datums(images, labels))
    return str(path), images, labels


def data_layer(source, options="", transform="", phase="TRAIN", seed=0, tops=2):
    text = (f'name: "pair_data" type: "Data" top: "data" top: "label" transform_param {{ {transform} }} '
            f'data_param {{ source: "{source}" {"" if "backend" in options else "backend: LMDB"} {options} }}')
    layer, bottom, top = make_layer(text, [], phase, seed, np.float32, tops)
    return layer, top


def run(layer, top, count):
    out = []
    for _ in range(count):
        layer.forward([], top)
        out.append([t.data.copy() for t in top])
    return out


def same_runs(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q))


def record_of(dataset, image):
    """Index of the stored record whose pixels equal `image` (C×H×W)."""
    matches = np.flatnonzero(np.all(dataset[1] == image, axis=(1, 2, 3)))
    assert len(matches) == 1
    return matches[0]


@pytest.mark.parametrize("batch_size", [1, 7, 23])
@pytest.mark.parametrize("prefetch", [0, 2])
def test_plain_batches_are_sequential(dataset, batch_size, prefetch):
    source, images, labels = dataset
    layer, top = data_layer(source, f"batch_size: {batch_size} prefetch: {prefetch} images_per_blob: 1",
                            "scale: 0.5")
    assert top[0].shape == (batch_size,) + SHAPE and top[1].shape == (batch_size,)
    order = np.arange(5 * batch_size) % NUM
    for i, (data, label) in enumerate(run(layer, top, 5)):
        rows = order[i * batch_size:(i + 1) * batch_size]
        np.testing.assert_array_equal(data, images[rows] * np.float32(0.5))
        np.testing.assert_array_equal(label, labels[rows])
    layer.close()


@pytest.mark.parametrize("batch_size", [1, 5, 8])
def test_balanced_similarity_alternates_across_batches(dataset, batch_size):
    source, images, labels = dataset
    layer, top = data_layer(source, f"batch_size: {batch_size} images_per_blob: 2")
    assert top[0].shape == (batch_size, 2) + SHAPE[1:] and top[1].shape == (batch_size,)
    similarity = []
    for data, sim in run(layer, top, 6):
        for item, s in zip(data, sim):
            a, b = (record_of(dataset, item[k:k + 1]) for k in (0, 1))
            assert s == float(labels[a] == labels[b])
        similarity.extend(sim)
    np.testing.assert_array_equal(similarity, np.arange(len(similarity)) % 2 == 0)
    layer.close()


def test_output_all_labels_match_the_stacked_images(dataset):
    source, images, labels = dataset
    layer, top = data_layer(source, "batch_size: 6 images_per_blob: 2 output_all_labels: true shuffle: true",
                            "scale: 0.00390625")
    assert top[1].shape == (6, 2)
    for data, label in run(layer, top, 5):
        for item, pair in zip(data, label):
            stored = [labels[record_of(dataset, np.round(item[k:k + 1] * 256))] for k in (0, 1)]
            np.testing.assert_array_equal(pair, stored)
        np.testing.assert_array_equal(label[0::2, 0] == label[0::2, 1], True)
        np.testing.assert_array_equal(label[1::2, 0] != label[1::2, 1], True)
    layer.close()


def test_every_class_appears(dataset):
    layer, top = data_layer(dataset[0], "batch_size: 8 images_per_blob: 2 output_all_labels: true shuffle: true")
    seen = np.concatenate([label for _, label in run(layer, top, 10)])
    assert set(seen[:, 0]) == set(range(CLASSES)) and set(seen[1::2, 1]) == set(range(CLASSES))
    layer.close()


OPTIONS = "batch_size: 5 images_per_blob: 2 shuffle: true rand_skip: 9 prefetch: 3"
TRANSFORM = "scale: 0.1 mirror: true crop_size: 3 augmentation { crop_pad: 1 rotation: 10 contrast: 0.1 }"


def test_seeded_runs_repeat_exactly(dataset):
    runs = [run(*data_layer(dataset[0], OPTIONS, TRANSFORM, seed=seed), 8) for seed in (3, 3, 4)]
    assert same_runs(runs[0], runs[1])
    assert not same_runs(runs[0], runs[2])
    synchronous = run(*data_layer(dataset[0], OPTIONS.replace("prefetch: 3", "prefetch: 0"), TRANSFORM, seed=3), 8)
    assert same_runs(synchronous, runs[0])


def test_state_reflects_consumed_batches(dataset):
    layer, top = data_layer(dataset[0], OPTIONS, TRANSFORM, seed=1)
    run(layer, top, 4)
    state = json.loads(json.dumps(layer.get_state()))
    expected = run(layer, top, 6)  # meanwhile the thread has produced batches beyond these
    resumed, resumed_top = data_layer(dataset[0], OPTIONS, TRANSFORM, seed=42)
    resumed.set_state(state)
    assert same_runs(run(resumed, resumed_top, 6), expected)
    layer.set_state(state)  # rewinding the same layer discards its prefetched batches
    assert same_runs(run(layer, top, 6), expected)
    layer.close()
    resumed.close()


def test_prefetch_thread_stops_on_close_and_on_collection(dataset):
    layer, top = data_layer(dataset[0], "batch_size: 2 prefetch: 2")
    run(layer, top, 1)
    thread = layer._prefetcher.thread
    assert thread.daemon and thread.is_alive()
    layer.close()
    assert not thread.is_alive()
    run(layer, top, 1)  # a later forward starts a new thread
    thread = layer._prefetcher.thread
    assert thread.is_alive()
    del layer
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_prefetch_error_reaches_the_consumer():
    def broken():
        raise RuntimeError("bad record")

    prefetcher = Prefetcher(broken, 2)
    with pytest.raises(RuntimeError, match="bad record"):
        prefetcher.get()
    assert prefetcher.thread is None


def test_enable_random_selection_shuffles_and_mycaffe_spellings_parse(dataset):
    source, images, _ = dataset
    options = ("batch_size: 23 enable_random_selection: True images_per_blob: 2 output_all_labels: True "
               "balance_matches: True")
    layer, top = data_layer(source, options, "scale: 0.00390625 color_order: RGB")
    first = [record_of(dataset, np.round(item[:1] * 256)) for item in run(layer, top, 1)[0][0]]
    assert sorted(first) == list(range(NUM)) and first != list(range(NUM))
    layer.close()
    layer, top = data_layer(source, options.replace("True images_per_blob", "False images_per_blob"))
    np.testing.assert_array_equal(run(layer, top, 1)[0][0][:, :1], images)  # explicit false: sequential
    layer.close()


def test_deprecated_data_param_transform_fields(dataset):
    layer, top = data_layer(dataset[0], "batch_size: 2 scale: 0.25 crop_size: 3", phase="TEST")
    data = run(layer, top, 1)[0][0]
    np.testing.assert_array_equal(data, dataset[1][:2, :, 1:4, 0:3] * np.float32(0.25))
    layer.close()


def test_label_top_is_optional(dataset):
    layer, top = data_layer(dataset[0], "batch_size: 3", tops=1)
    np.testing.assert_array_equal(run(layer, top, 1)[0][0], dataset[1][:3])
    layer.close()


@pytest.mark.parametrize("options, message", [
    ("batch_size: 2 backend: IMAGEDB", r"backend IMAGEDB: MyCaffe's IMAGEDB is not available.*"
                                       r"layerforge data mnist --out DIR.*backend: LMDB"),
    ("batch_size: 0", "batch_size must be at least 1, got 0"),
    ("batch_size: 2 images_per_blob: 0", "images_per_blob must be at least 1, got 0"),
])
def test_config_errors(dataset, options, message):
    with pytest.raises(LayerError, match=f"layer 'pair_data' \\(Data\\): data_param\\.{message}"):
        data_layer(dataset[0], options)


def test_source_errors(tmp_path):
    with pytest.raises(LayerError, match=r"'pair_data'.*source .*missing.*no LMDB there.*layerforge data mnist"):
        data_layer(str(tmp_path / "missing"), "batch_size: 2")
    records = list(datums(np.zeros((2, 1, 4, 4), np.uint8), [0, 1]))
    records += list(datums(np.zeros((1, 1, 5, 4), np.uint8), [1]))[:1]
    records[2] = (b"00000002", records[2][1])
    path = write_lmdb(tmp_path / "mixed", records)
    with pytest.raises(LayerError, match=r"source .*mixed.*record 00000002 is a 1x5x4 uint8 image but record "
                                         r"00000000 is 1x4x4"):
        data_layer(str(path), "batch_size: 2")
    with pytest.raises(LayerError, match="crop_size 6 is larger than the 4x4 images"):
        data_layer(str(write_lmdb(tmp_path / "ok", records[:2])), "batch_size: 2", "crop_size: 6")


@pytest.mark.parametrize("backend", ["backend: LEVELDB", ""])
def test_leveldb_backend_and_caffes_default(dataset, tmp_path, backend):
    """A missing backend is LEVELDB, Caffe's default."""
    _, images, labels = dataset
    path = write_leveldb(tmp_path / "db", datums(images, labels))
    text = f'name: "d" type: "Data" top: "data" top: "label" data_param {{ source: "{path}" batch_size: 5 {backend} }}'
    layer, _, top = make_layer(text, [], "TRAIN", 0, np.float32, 2)
    (data, label), = run(layer, top, 1)
    np.testing.assert_array_equal(data, images[:5])
    np.testing.assert_array_equal(label, labels[:5])
    layer.close()


def test_lmdb_source_without_backend_says_to_set_it(dataset):
    text = f'name: "d" type: "Data" top: "data" data_param {{ source: "{dataset[0]}" batch_size: 5 }}'
    with pytest.raises(LayerError, match=r"no LevelDB there .*it is an LMDB: set backend: LMDB"):
        make_layer(text, [], "TRAIN", 0, np.float32, 1)


def test_different_within_group_reads_labels_txt(tmp_path):
    """12 classes in 3 groups (labels.txt beside the LMDB): with different_within_group 1 every
    different pair stays inside the first image's group; without labels.txt it is an error."""
    labels = np.repeat(np.arange(12), 3)
    path = write_lmdb(tmp_path / "db", datums(np.zeros((36, 1, 2, 2), np.uint8), labels))
    options = ("batch_size: 8 images_per_blob: 2 output_all_labels: true shuffle: true "
               "different_within_group: 1")
    with pytest.raises(LayerError, match=r"different_within_group needs labels.txt .*in or beside the source"):
        data_layer(str(path), options)
    group = {c: "ABC"[c % 3] for c in range(12)}
    (tmp_path / "labels.txt").write_text("".join(f"{c} {group[c]}/char{c}\n" for c in range(12)))
    layer, top = data_layer(str(path), options)
    pairs = np.concatenate([labels for _, labels in run(layer, top, 20)]).astype(int)
    different = pairs[1::2]
    assert np.all(different[:, 0] != different[:, 1])
    assert all(group[a] == group[b] for a, b in different)
    with pytest.raises(LayerError, match=r"different_within_group must be in \[0, 1\], got 1.5"):
        data_layer(str(path), options.replace("group: 1", "group: 1.5"))
TRIPLETS = "batch_size: 6 triplets: true output_all_labels: true shuffle: true prefetch: 2"


def test_triplets_stack_anchor_positive_negative(dataset):
    source, images, labels = dataset
    layer, top = data_layer(source, TRIPLETS, "scale: 0.00390625")
    assert top[0].shape == (6, 3) + SHAPE[1:] and top[1].shape == (6, 3)
    for data, label in run(layer, top, 5):
        for item, triple in zip(data, label):
            stored = [labels[record_of(dataset, np.round(item[k:k + 1] * 256))] for k in range(3)]
            np.testing.assert_array_equal(triple, stored)
        np.testing.assert_array_equal(label[:, 0], label[:, 1])
        assert np.all(label[:, 0] != label[:, 2])
    layer.close()


def test_triplets_resume_from_state(dataset):
    layer, top = data_layer(dataset[0], TRIPLETS + " images_per_blob: 3", TRANSFORM, seed=2)
    run(layer, top, 3)
    state = json.loads(json.dumps(layer.get_state()))
    expected = run(layer, top, 5)
    resumed, resumed_top = data_layer(dataset[0], TRIPLETS, TRANSFORM, seed=7)
    resumed.set_state(state)
    assert same_runs(run(resumed, resumed_top, 5), expected)
    layer.close()
    resumed.close()


def test_triplet_negatives_from_the_anchors_group(tmp_path, dataset):
    _, images, labels = dataset
    path = write_lmdb(tmp_path / "db", datums(images, labels))
    (tmp_path / "labels.txt").write_text("0 A/a\n1 A/b\n2 B/c\n3 B/d\n")
    layer, top = data_layer(str(path), TRIPLETS + " triplet_negative_same_group: true")
    label = np.concatenate([label for _, label in run(layer, top, 20)])
    np.testing.assert_array_equal(label[:, 2], [1, 0, 3, 2] @ (label[:, 0] == np.arange(4)[:, None]))
    layer.close()


@pytest.mark.parametrize("options, message", [
    (TRIPLETS + " images_per_blob: 2", "triplets packs 3 images per item, but images_per_blob is 2"),
    (TRIPLETS.replace("output_all_labels: true", ""), "triplets needs output_all_labels: true"),
    ("batch_size: 2 triplet_negative_same_group: true", "triplet_negative_same_group applies only with triplets"),
    (TRIPLETS + " triplet_negative_same_group: true", r"source .*data_param.triplet_negative_same_group needs labels.txt"),
])
def test_triplet_config_errors(dataset, options, message):
    with pytest.raises(LayerError, match=f"layer 'pair_data' \\(Data\\): data_param\\.{message}"):
        data_layer(dataset[0], options)
