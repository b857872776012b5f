"""Bad records: a NaN pixel is found when the Data layer loads the database, before iteration
1; a label the loss cannot take (a negative one that is not its ignore_label, too), met mid-run,
stops training with a snapshot and a message naming the iteration, the LMDB and the record key."""
import numpy as np
import pytest

from layerforge import io
from layerforge.data.store import datums, write_lmdb
from layerforge.io import ConfigError
from layerforge.netparam import NetError
from layerforge.proto import layerforge_pb2 as pb
from layerforge.solvers import get_solver

NET = """name: "c"
layer {{ name: "data" type: "Data" top: "data" top: "label"
        transform_param {{ scale: 0.00390625 }} data_param {{ source: "{source}" backend: LMDB batch_size: 4 }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param {{ num_output: 10 weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }}
"""


def _solver(tmp_path, source):
    (tmp_path / "net.prototxt").write_text(NET.format(source=source))
    (tmp_path / "solver.prototxt").write_text(f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 max_iter: 10 '
                                              f'snapshot_prefix: "{tmp_path / "snap"}"')
    return get_solver(tmp_path / "solver.prototxt")


def _lmdb(tmp_path, labels):
    images = np.random.default_rng(0).integers(0, 255, (len(labels), 1, 4, 4)).astype(np.uint8)
    return write_lmdb(tmp_path / "db_lmdb", datums(images, labels))


def test_a_negative_label_trains_as_the_loss_ignore_label_as_in_caffe(tmp_path):
    source = _lmdb(tmp_path, [1, 2, 3, -1] * 5)
    net = NET.format(source=source).replace('top: "loss" }', 'top: "loss" loss_param { ignore_label: -1 } }')
    (tmp_path / "net.prototxt").write_text(net)
    (tmp_path / "solver.prototxt").write_text(f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 max_iter: 5 '
                                              f'snapshot_prefix: "{tmp_path / "snap"}"')
    solver = get_solver(tmp_path / "solver.prototxt")
    losses = []
    solver.callbacks.append(lambda event: event["event"] == "iteration" and losses.append(event["loss"]))
    solver.solve()
    assert len(losses) == 5 and np.all(np.isfinite(losses)) and solver.net.blobs["label"].data.min() == -1


def test_a_negative_label_the_loss_cannot_take_names_the_record(tmp_path):
    source = _lmdb(tmp_path, [1, 2, 3, -1, 4, 5, 6, 7])
    solver = _solver(tmp_path, source)
    with pytest.raises(ConfigError, match=(
            rf"^Iteration 0: layer 'loss' \(SoftmaxWithLoss\): label -1 is outside \[0, 10\) for 10 classes "
            rf"\(batch item 3: {source} record 00000003\)")):
        solver.solve()


def test_a_nan_pixel_is_found_at_load(tmp_path):
    def records():
        for i in range(3):
            datum = pb.Datum(channels=1, height=2, width=2, label=i, float_data=[0.5, np.nan if i == 2 else 1, 0, 0])
            yield b"%08d" % i, datum.SerializeToString()

    source = write_lmdb(tmp_path / "float_lmdb", records())
    with pytest.raises(NetError, match=rf"{source}: record 00000002: 1 pixel\(s\) are NaN or infinite"):
        _solver(tmp_path, source)


def test_a_label_out_of_range_mid_run_snapshots_and_names_the_record(tmp_path):
    labels = [i % 10 for i in range(40)]
    labels[13] = 10                                    # batch 3 (records 12-15), item 1
    source = _lmdb(tmp_path, labels)
    solver = _solver(tmp_path, source)
    saved = f"{tmp_path / 'snap'}_iter_3"
    with pytest.raises(ConfigError, match=(
            rf"^Iteration 3: layer 'loss' \(SoftmaxWithLoss\): label 10 is outside \[0, 10\) for 10 classes "
            rf"\(batch item 1: {source} record 00000013\); the weights before it are saved in "
            rf"{saved}.caffemodel and {saved}.solverstate")):
        solver.solve()
    assert io.read_binary(saved + ".solverstate", pb.SolverState()).iter == 3
