"""A layerforge Net run by PyTorch: the same layers, blobs and weights, for side-by-side benchmarks.

`TorchNet(net)` walks `net.entries` in order and computes each layer's tops with torch
functions, starting from copies of the layerforge parameter blobs (so both frameworks start
from the same weights). Only the layer types the benchmark nets use are supported; anything
else raises. Semantics follow Caffe (and layerforge): pooling rounds its output size up
(`ceil_mode`), BatchNorm uses the batch's statistics in TRAIN and the stored ones otherwise,
ContrastiveLoss compares two label columns when its label blob has two (the Omniglot pair
labels), losses are averaged as Caffe's default normalisation does.
"""
import numpy as np
import torch
import torch.nn.functional as F

from layerforge.proto import layerforge_pb2 as pb


def _first(values, default):
    return values[0] if len(values) else default


def _pair(param, name, default):
    """Caffe's kernel/stride/pad spelling: repeated `name`, or `name_h`/`name_w`."""
    short = "kernel" if name == "kernel_size" else name
    if param.HasField(f"{short}_h"):
        return getattr(param, f"{short}_h"), getattr(param, f"{short}_w")
    value = getattr(param, name)
    value = _first(value, default) if not isinstance(value, int) else (value or default)
    return value, value


class TorchNet:
    def __init__(self, net):
        self.net = net
        self.train = net.phase == pb.TRAIN
        self.tensors = {}                          # id(layerforge Blob) -> torch tensor
        for blob in net.learnable_params:
            self._tensor(blob, requires_grad=True)
        self.groups = {}                           # lr_mult -> torch parameters
        for blob, lr_mult in zip(net.learnable_params, net.lr_mults):
            if lr_mult:
                self.groups.setdefault(lr_mult, []).append(self.tensors[id(blob)])

    def _tensor(self, blob, requires_grad=False):
        key = id(blob)
        if key not in self.tensors:
            self.tensors[key] = torch.tensor(blob.data, requires_grad=requires_grad)
        return self.tensors[key]

    def optimizer(self, base_lr, momentum):
        """SGD as Caffe's solver does it (lr_mult per parameter, no weight decay)."""
        return torch.optim.SGD([{"params": p, "lr": base_lr * m} for m, p in self.groups.items()],
                               lr=base_lr, momentum=momentum)

    def parameter(self, blob):
        return self.tensors[id(blob)]

    def forward(self, inputs):
        """All blobs {name: tensor} from `inputs` {Input top name: tensor}; returns (blobs, loss)."""
        blobs = dict(inputs)
        loss = 0
        for entry in self.net.entries:
            param, kind = entry.param, entry.param.type
            if kind == "Input":
                continue
            bottom = [blobs[name] for name in entry.bottom_names]
            tops = self._layer(kind, param, entry.layer, bottom)
            for name, top, weight in zip(entry.top_names, tops, entry.loss_weights or [0] * len(tops)):
                blobs[name] = top
                if weight:
                    loss = loss + weight * top.sum()
        return blobs, loss

    def _layer(self, kind, param, layer, bottom):
        x = bottom[0] if bottom else None
        blobs = [self._tensor(b) for b in layer.blobs]
        if kind == "Split":
            return [x] * len(param.top)
        if kind == "Convolution":
            cp = param.convolution_param
            stride, pad = _pair(cp, "stride", 1), _pair(cp, "pad", 0)
            bias = blobs[1] if cp.bias_term else None
            return [F.conv2d(x, blobs[0], bias, stride, pad, _first(cp.dilation, 1), cp.group)]
        if kind == "InnerProduct":
            ip = param.inner_product_param
            bias = blobs[1] if ip.bias_term else None
            return [F.linear(x.flatten(ip.axis), blobs[0], bias)]
        if kind == "Pooling":
            pp = param.pooling_param
            if pp.global_pooling:
                kernel, stride, pad = tuple(x.shape[2:]), 1, 0
            else:
                kernel, stride, pad = _pair(pp, "kernel_size", 1), _pair(pp, "stride", 1), _pair(pp, "pad", 0)
            if pp.pool == pb.PoolingParameter.MAX:
                return [F.max_pool2d(x, kernel, stride, pad, ceil_mode=True)]
            return [F.avg_pool2d(x, kernel, stride, pad, ceil_mode=True)]
        if kind == "ReLU":
            slope = param.relu_param.negative_slope
            return [F.leaky_relu(x, slope) if slope else F.relu(x)]
        if kind == "Sigmoid":
            return [torch.sigmoid(x)]
        if kind == "TanH":
            return [torch.tanh(x)]
        if kind == "AbsVal":
            return [x.abs()]
        if kind == "Dropout":
            return [F.dropout(x, param.dropout_param.dropout_ratio, training=self.train)]
        if kind == "LRN":
            lp = param.lrn_param
            return [F.local_response_norm(x, lp.local_size, lp.alpha, lp.beta, lp.k)]
        if kind == "BatchNorm":
            bp = param.batch_norm_param
            use_global = bp.use_global_stats if bp.HasField("use_global_stats") else not self.train
            if use_global:
                factor = blobs[2].item()
                factor = 1 / factor if factor else 0
                return [F.batch_norm(x, blobs[0] * factor, blobs[1] * factor, eps=bp.eps)]
            return [F.batch_norm(x, None, None, training=True, eps=bp.eps)]
        if kind == "Scale":
            sp = param.scale_param
            shape = [1] * x.dim()
            shape[sp.axis] = x.shape[sp.axis]
            y = x * blobs[0].view(shape)
            return [y + blobs[1].view(shape) if sp.bias_term else y]
        if kind == "Reshape":
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(param.reshape_param.shape.dim)]
            return [x.reshape(dims)]
        if kind == "Flatten":
            return [x.flatten(param.flatten_param.axis)]
        if kind == "Slice":
            sp = param.slice_param
            points = [0, *sp.slice_point, x.shape[sp.axis]]
            if not sp.slice_point:
                step = x.shape[sp.axis] // len(param.top)
                points = list(range(0, x.shape[sp.axis] + 1, step))
            return [x.narrow(sp.axis, a, b - a) for a, b in zip(points, points[1:])]
        if kind == "Concat":
            return [torch.cat(bottom, param.concat_param.axis)]
        if kind == "Eltwise":
            ep = param.eltwise_param
            if ep.operation == pb.EltwiseParameter.SUM:
                coeffs = list(ep.coeff) or [1.0] * len(bottom)
                return [sum(c * b for c, b in zip(coeffs, bottom))]
            if ep.operation == pb.EltwiseParameter.PROD:
                return [torch.stack(bottom).prod(0)]
            return [torch.stack(bottom).amax(0)]
        if kind == "Softmax":
            return [F.softmax(x, param.softmax_param.axis)]
        if kind == "SoftmaxWithLoss":
            return [F.cross_entropy(x, bottom[1].reshape(-1).long())]
        if kind == "SigmoidCrossEntropyLoss":
            target = bottom[1].reshape(x.shape)
            return [F.binary_cross_entropy_with_logits(x, target, reduction="sum") / x.numel()]
        if kind == "ContrastiveLoss":
            label = bottom[2]
            similar = label[:, 0] == label[:, 1] if label.dim() == 2 and label.shape[1] == 2 \
                else label.reshape(-1) != 0
            dist_sq = ((x - bottom[1]) ** 2).sum(1)
            hinge = torch.clamp(param.contrastive_loss_param.margin - torch.sqrt(dist_sq), min=0.0)
            return [torch.where(similar, dist_sq, hinge * hinge).sum() / (2 * x.shape[0])]
        if kind == "Accuracy":
            return [(x.argmax(1) == bottom[1].reshape(-1).long()).float().mean()]
        raise NotImplementedError(f"layer {param.name!r}: type {kind} has no torch version here")


def to_torch(array):
    return torch.from_numpy(np.ascontiguousarray(array))
