"""LeNet on MNIST written with NetSpec: the net of prototxt/lenet_train_test.prototxt.

    python examples/lenet_netspec.py [OUT.prototxt]     # prints the prototxt, or writes OUT

One NetSpec attribute per blob; `name=` and `include=` set layer fields, every other keyword
goes to the layer type's own parameter message (num_output -> convolution_param, ...).
The TEST data layer makes blobs of the same names as the TRAIN one, so it names them with
`top=` and is assigned to an attribute of its own.
"""
import sys

from layerforge import TEST, TRAIN, L, NetSpec, P
from layerforge.io import write_text

LEARNED = [dict(lr_mult=1), dict(lr_mult=2)]          # weights at the base rate, biases at twice
XAVIER = dict(weight_filler=dict(type="xavier"), bias_filler=dict(type="constant"))


def mnist_data(phase, source, batch_size, **more):
    return dict(name="mnist", include=dict(phase=phase), transform_param=dict(scale=0.00390625),
                data_param=dict(source=source, backend=P.Data.LMDB, batch_size=batch_size, **more),
                ntop=2)


def lenet(train_source="data/mnist/mnist_train_lmdb", test_source="data/mnist/mnist_test_lmdb"):
    n = NetSpec()
    n.data, n.label = L.Data(**mnist_data(TRAIN, train_source, 64, shuffle=True))
    n.test_data = L.Data(top=["data", "label"], **mnist_data(TEST, test_source, 100))
    n.conv1 = L.Convolution(n.data, param=LEARNED, num_output=20, kernel_size=5, stride=1, **XAVIER)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.conv2 = L.Convolution(n.pool1, param=LEARNED, num_output=50, kernel_size=5, stride=1, **XAVIER)
    n.pool2 = L.Pooling(n.conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.ip1 = L.InnerProduct(n.pool2, param=LEARNED, num_output=500, **XAVIER)
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.relu1, param=LEARNED, num_output=10, **XAVIER)
    n.accuracy = L.Accuracy(n.ip2, n.label, include=dict(phase=TEST))
    n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    net = n.to_proto()
    net.name = "LeNet"
    return net


if __name__ == "__main__":
    if len(sys.argv) > 1:
        write_text(lenet(), sys.argv[1])
    else:
        print(lenet(), end="")
