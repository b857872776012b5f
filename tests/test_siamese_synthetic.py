"""End to end: a Siamese net (twin InnerProduct branches with tied weights + ContrastiveLoss)
learns a 2-D encoding of 4 Gaussian clusters in 8-D; Decode + AccuracyDecode then classify
held-out points by nearest centroid, also after a save / load of the weights and state."""
import numpy as np
from google.protobuf import text_format

from layerforge.net import Net
from layerforge.proto import layerforge_pb2 as pb

BATCH, INPUT_DIM, CLASSES = 32, 8, 4


def branch(suffix, bottom):
    params = lambda name: f'param {{ name: "{name}_w" lr_mult: 1 }} param {{ name: "{name}_b" lr_mult: 2 }}'
    filler = 'weight_filler { type: "xavier" } bias_filler { type: "constant" }'
    return f"""
layer {{ name: "ip1{suffix}" type: "InnerProduct" bottom: "{bottom}" top: "ip1{suffix}" {params("ip1")}
        inner_product_param {{ num_output: 16 {filler} }} }}
layer {{ name: "relu1{suffix}" type: "ReLU" bottom: "ip1{suffix}" top: "ip1{suffix}" }}
layer {{ name: "feat{suffix}" type: "InnerProduct" bottom: "ip1{suffix}" top: "feat{suffix}" {params("feat")}
        inner_product_param {{ num_output: 2 {filler} }} }}"""


NET = f"""
name: "SyntheticSiamese"
layer {{ name: "pairs" type: "Input" top: "data" top: "data_p" top: "sim"
        input_param {{ shape {{ dim: {BATCH} dim: {INPUT_DIM} }} shape {{ dim: {BATCH} dim: {INPUT_DIM} }}
                      shape {{ dim: {BATCH} dim: 2 }} }} }}
{branch("", "data")}
layer {{ name: "decode1" type: "Decode" bottom: "feat" bottom: "sim" top: "decode1"
        decode_param {{ cache_size: 2 }} }}
{branch("_p", "data_p")}
layer {{ name: "loss" type: "ContrastiveLoss" bottom: "feat" bottom: "feat_p" bottom: "sim"
        top: "loss" top: "match" loss_weight: 1 loss_weight: 0
        contrastive_loss_param {{ margin: 2 output_matches: true }} }}
layer {{ name: "accuracy1" type: "AccuracyDecode" bottom: "decode1" bottom: "sim" top: "accuracy1"
        include {{ phase: TEST }} }}
"""


def sample(rng, centres, labels):
    return centres[labels] + 1.0 * rng.standard_normal((len(labels), INPUT_DIM))


def pair_batch(rng, centres):
    """Half similar, half dissimilar pairs; sim holds both labels (N x 2), as MyCaffe's Data gives."""
    first = rng.integers(0, CLASSES, BATCH)
    other = (first + rng.integers(1, CLASSES, BATCH)) % CLASSES
    second = np.where(np.arange(BATCH) % 2 == 0, first, other)
    return dict(data=sample(rng, centres, first), data_p=sample(rng, centres, second),
                sim=np.stack([first, second], axis=1))


def accuracy_on(net, rng, centres, batches):
    scores = []
    for _ in range(batches):
        labels = rng.integers(0, CLASSES, BATCH)
        x = sample(rng, centres, labels)
        scores.append(net.forward(data=x, data_p=x, sim=np.stack([labels, labels], axis=1))["accuracy1"])
    return float(np.mean(scores))


def test_siamese_learns_separable_encoding(tmp_path):
    param = text_format.Parse(NET, pb.NetParameter())
    rng = np.random.default_rng(0)
    centres = 2.0 * rng.standard_normal((CLASSES, INPUT_DIM))
    train = Net(param, phase=pb.TRAIN, seed=0)
    assert train.params["ip1"][0] is train.params["ip1_p"][0]  # tied weights
    test = Net(param, phase=pb.TEST, seed=0)
    test.share_with(train)  # before training, as a solver does: Decode's state grows in place
    velocity = [np.zeros_like(b.data) for b in train.learnable_params]
    losses = []
    for it in range(400):
        train.clear_param_diffs()
        train.forward(**pair_batch(rng, centres))
        train.backward()
        losses.append(train.loss)
        lr = 0.01 * (1 + 1e-4 * it) ** -0.75  # MyCaffe's solver: inv policy, momentum 0.9
        for blob, v, mult in zip(train.learnable_params, velocity, train.lr_mults):
            v *= 0.9
            v -= lr * mult * blob.diff
            blob.data += v
    assert np.mean(losses[-20:]) < 0.25 * np.mean(losses[:20])
    assert train.layers["decode1"].blobs[2].data.all()  # every class ready

    state_before = [b.data.copy() for b in train.layers["decode1"].blobs]
    held_out = np.random.default_rng(1)
    accuracy = accuracy_on(test, held_out, centres, 8)
    assert accuracy >= 0.95
    for blob, before in zip(train.layers["decode1"].blobs, state_before):
        np.testing.assert_array_equal(blob.data, before)  # testing never moves the centroids

    weights = tmp_path / "siamese.caffemodel"
    train.save(weights)
    restored = Net(param, phase=pb.TEST, seed=5)
    restored.copy_from(weights)
    assert accuracy_on(restored, np.random.default_rng(1), centres, 8) == accuracy
