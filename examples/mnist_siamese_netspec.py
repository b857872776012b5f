"""The MNIST Siamese net of the MyCaffe tutorial written with NetSpec: the net of
prototxt/mnist_siamese_train_test.prototxt.

    python examples/mnist_siamese_netspec.py [OUT.prototxt]   # prints the prototxt, or writes OUT

`branch()` builds one twin; the second call names its layers with a "_p" suffix and, through
the same ParamSpec names, shares every weight with the first. Layers that make blobs of the
same names in other phases (the TEST data layer, the RUN Input) name them with `top=`.
"""
import sys

from layerforge import RUN, TEST, TRAIN, L, NetSpec, P
from layerforge.io import write_text

XAVIER = dict(weight_filler=dict(type="xavier"), bias_filler=dict(type="constant"))


def shared(name):
    """ParamSpecs of a learned layer whose weight and bias are shared by name between the twins."""
    return [dict(name=f"{name}_w", lr_mult=1), dict(name=f"{name}_b", lr_mult=2)]


def pair_data(phase, source, **more):
    return dict(name="pair_data", include=dict(phase=phase), transform_param=dict(scale=0.00390625),
                data_param=dict(source=source, backend=P.Data.LMDB, batch_size=64, images_per_blob=2,
                                balance_matches=True, output_all_labels=True, **more),
                ntop=2)


def branch(n, bottom, suffix=""):
    """conv - pool - conv - pool - ip - relu - ip - feat; returns the feat top. The "_p" twin is
    left out of RUN (deployment runs one branch)."""
    rules = dict(exclude=dict(phase=RUN)) if suffix else {}
    conv1 = n[f"conv1{suffix}"] = L.Convolution(bottom, param=shared("conv1"), num_output=20,
                                               kernel_size=5, stride=1, **XAVIER, **rules)
    pool1 = n[f"pool1{suffix}"] = L.Pooling(conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2, **rules)
    conv2 = n[f"conv2{suffix}"] = L.Convolution(pool1, param=shared("conv2"), num_output=50,
                                               kernel_size=5, stride=1, **XAVIER, **rules)
    pool2 = n[f"pool2{suffix}"] = L.Pooling(conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2, **rules)
    ip1 = n[f"ip1{suffix}"] = L.InnerProduct(pool2, param=shared("ip1"), num_output=500, **XAVIER, **rules)
    relu1 = n[f"relu1{suffix}"] = L.ReLU(ip1, in_place=True, **rules)
    ip2 = n[f"ip2{suffix}"] = L.InnerProduct(relu1, param=shared("ip2"), num_output=10, **XAVIER, **rules)
    feat = n[f"feat{suffix}"] = L.InnerProduct(ip2, param=shared("feat"), num_output=2, **XAVIER, **rules)
    return feat


def mnist_siamese(train_source="data/mnist/mnist_train_lmdb", test_source="data/mnist/mnist_test_lmdb"):
    n = NetSpec()
    n.pair_data, n.sim = L.Data(**pair_data(TRAIN, train_source, shuffle=True))
    n.test_pair_data = L.Data(top=["pair_data", "sim"], **pair_data(TEST, test_source))
    n.run_input = L.Input(top=["data"], include=dict(phase=RUN), shape=dict(dim=[1, 1, 28, 28]),
                          transform_param=dict(scale=0.00390625))
    n.data, n.data_p = L.Slice(n.pair_data, name="slice_pair", exclude=dict(phase=RUN), axis=1,
                               slice_point=1, ntop=2)
    feat = branch(n, n.data)
    n.decode1 = L.Decode(feat, n.sim, target=P.Decode.CENTROID, cache_size=2)
    n.silence_decode = L.Silence(n.decode1, include=dict(phase=TRAIN), ntop=0)
    feat_p = branch(n, n.data_p, "_p")
    n.loss, n.match = L.ContrastiveLoss(feat, feat_p, n.sim, loss_weight=[1, 0], exclude=dict(phase=RUN),
                                        margin=2, output_matches=True, ntop=2)
    n.silence_match = L.Silence(n.match, exclude=dict(phase=RUN), ntop=0)
    n.accuracy = L.AccuracyDecode(n.decode1, n.sim, include=dict(phase=TEST))
    n.accuracy_encoding = L.AccuracyEncoding(feat, n.sim, exclude=dict(phase=RUN),
                                             decode_param=dict(cache_size=2))
    net = n.to_proto()
    net.name = "mnist_siamese"
    return net


if __name__ == "__main__":
    if len(sys.argv) > 1:
        write_text(mnist_siamese(), sys.argv[1])
    else:
        print(mnist_siamese(), end="")
