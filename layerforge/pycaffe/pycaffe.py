"""pycaffe's Net and solvers as thin adapters over layerforge.Net and layerforge's solvers.

The adapter keeps pycaffe's spellings (a list of layers, ordered dicts of blobs and params,
forward/backward between named layers, HDF5 weights) and hands the work to the core. The
Blobs and layers are the core's own objects; `Net.layerforge_net` is the core Net.
"""
import os
import time
from collections import OrderedDict
from itertools import zip_longest

import numpy as np

import layerforge
from layerforge.kernels.threads import blas_on_one_thread
from layerforge.net import Net as _CoreNet
from layerforge.proto import layerforge_pb2 as pb

_random_seed = 0


def set_random_seed(seed):
    """Seed the Nets built afterwards (fillers, dropout, data order); solvers use the
    solver file's random_seed."""
    global _random_seed
    _random_seed = int(seed)


class Net:
    """pycaffe's Net: `Net(model, phase, level=0, stages=None, weights=None)` or the legacy
    `Net(model, weights, phase)`. `model` is a prototxt path (or a NetParameter)."""

    def __init__(self, network_file, *args, phase=None, level=0, stages=None, weights=None):
        if len(args) == 2:
            weights, phase = args
        elif len(args) == 1:
            phase = args[0]
        elif args:
            raise TypeError(f"Net() takes (model, phase) or (model, weights, phase), got "
                            f"{len(args) + 1} positional arguments")
        if phase is None:
            raise TypeError("Net() needs a phase: Net(model, caffe.TRAIN) or Net(model, caffe.TEST)")
        self._attach(_CoreNet(network_file, phase, level=level, stages=stages or (),
                              weights=weights, seed=_random_seed, merge_twins=False))

    @classmethod
    def _wrap(cls, core):
        net = cls.__new__(cls)
        net._attach(core)
        return net

    def _attach(self, core):
        self.layerforge_net = core
        self._blobs = OrderedDict(core.blobs)

    # ------------------------------------------------------------ structure

    @property
    def blobs(self):
        """Blob name -> Blob, input to output (split copies included, as in Caffe)."""
        return self._blobs

    @property
    def layers(self):
        return list(self.layerforge_net.layers.values())

    @property
    def _layer_names(self):
        return list(self.layerforge_net.layers)

    @property
    def layer_dict(self):
        return OrderedDict(self.layerforge_net.layers)

    @property
    def params(self):
        """Layer name -> its blobs (weights, biases, saved state), for layers that have any."""
        return OrderedDict((name, layer.blobs) for name, layer in self.layerforge_net.layers.items()
                           if len(layer.blobs))

    @property
    def inputs(self):
        return list(self.layerforge_net.inputs)

    @property
    def outputs(self):
        """Blobs no layer reads, sorted by name as Caffe lists them."""
        return sorted(self.layerforge_net.outputs)

    @property
    def top_names(self):
        return OrderedDict((name, list(tops)) for name, tops in self.layerforge_net.top_names.items())

    @property
    def bottom_names(self):
        return OrderedDict((name, list(bottoms)) for name, bottoms in self.layerforge_net.bottom_names.items())

    @property
    def blob_loss_weights(self):
        weights = self.layerforge_net.loss_weights
        return OrderedDict((name, weights.get(name, 0.0)) for name in self._blobs)

    def _index(self, layer_name):
        try:
            return self._layer_names.index(layer_name)
        except ValueError:
            raise ValueError(f"net '{self.layerforge_net.name}' has no layer '{layer_name}'; its layers: "
                             f"{', '.join(self._layer_names)}") from None

    def _blobs_of(self, names):
        return [self._blobs[name] for name in names]

    # ------------------------------------------------------------ running

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """Run layers `start` to `end` (names, inclusive; default all) with inputs given by name;
        returns {name: data array} for the outputs (or `end`'s tops) and `blobs`."""
        blobs = list(blobs or [])
        first = self._index(start) if start is not None else 0
        last = self._index(end) if end is not None else len(self._layer_names) - 1
        wanted = set((self.top_names[end] if end is not None else self.outputs) + blobs)
        if kwargs:
            if set(kwargs) != set(self.inputs):
                raise ValueError(f"Input blob arguments {sorted(kwargs)} do not match the net inputs "
                                 f"{self.inputs}")
            for name, value in kwargs.items():
                if np.shape(value)[0] != self._blobs[name].shape[0]:
                    raise ValueError(f"Input '{name}' has {np.shape(value)[0]} items; the blob's batch "
                                     f"size is {self._blobs[name].shape[0]} (reshape the blob first)")
                self._blobs[name].data[...] = value
        with blas_on_one_thread():     # as Net.forward: Numba's workers own the cores
            for index in range(first, last + 1):
                self.layerforge_net.forward_layer(index)
        return {name: self._blobs[name].data for name in wanted}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """Run layers `start` down to `end` (default all) backward; keyword arrays set the diffs
        of the outputs, loss tops not given are seeded with their loss_weight. Returns
        {name: diff array} for the inputs (or `end`'s bottoms) and `diffs`."""
        diffs = list(diffs or [])
        names = self._layer_names
        first = self._index(start) if start is not None else len(names) - 1
        last = self._index(end) if end is not None else 0
        wanted = set((self.bottom_names[end] if end is not None else self.inputs) + diffs)
        if kwargs and set(kwargs) != set(self.outputs):
            raise ValueError(f"Top diff arguments {sorted(kwargs)} do not match the net outputs "
                             f"{self.outputs}")
        weights = self.layerforge_net.loss_weights
        for layer_name in names[last:first + 1]:
            for name in self.layerforge_net.top_names[layer_name]:
                if name in weights and name not in kwargs:
                    self._blobs[name].diff[...] = weights[name]
        for name, value in kwargs.items():
            if np.shape(value)[0] != self._blobs[name].shape[0]:
                raise ValueError(f"Diff '{name}' has {np.shape(value)[0]} items; the blob's batch size "
                                 f"is {self._blobs[name].shape[0]}")
            self._blobs[name].diff[...] = value
        with blas_on_one_thread():
            for index in range(first, last - 1, -1):
                self.layerforge_net.backward_layer(index)
        return {name: self._blobs[name].diff for name in wanted}

    def _batch(self, arrays):
        """Split {name: array} into batches of the net's batch size; the last one zero-padded."""
        count = len(next(iter(arrays.values())))
        size = next(iter(self._blobs.values())).shape[0]
        for begin in range(0, count - count % size, size):
            yield {name: value[begin:begin + size] for name, value in arrays.items()}
        rest = count % size
        if rest:
            yield {name: np.concatenate([value[-rest:], np.zeros((size - rest,) + value.shape[1:],
                                                                 value.dtype)])
                   for name, value in arrays.items()}

    @staticmethod
    def _unpad(outs, count):
        return {name: np.asarray(values)[:count] for name, values in outs.items()}

    def forward_all(self, blobs=None, **kwargs):
        """forward() over inputs of any length, batch by batch; {name: array of all items}."""
        outs = {name: [] for name in set(self.outputs + list(blobs or []))}
        for batch in self._batch(kwargs):
            for name, value in self.forward(blobs=blobs, **batch).items():
                outs[name].extend(value.copy())
        return self._unpad(outs, len(next(iter(kwargs.values()))))

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """forward() and backward() batch by batch; returns (outputs, diffs) of all items."""
        outs = {name: [] for name in set(self.outputs + list(blobs or []))}
        grads = {name: [] for name in set(self.inputs + list(diffs or []))}
        forward_batches = self._batch({n: kwargs[n] for n in self.inputs if n in kwargs})
        backward_batches = self._batch({n: kwargs[n] for n in self.outputs if n in kwargs})
        for forward_batch, backward_batch in zip_longest(forward_batches, backward_batches,
                                                        fillvalue={}):
            for name, value in self.forward(blobs=blobs, **forward_batch).items():
                outs[name].extend(value.copy())
            for name, value in self.backward(diffs=diffs, **backward_batch).items():
                grads[name].extend(value.copy())
        count = len(next(iter(kwargs.values())))
        return self._unpad(outs, count), self._unpad(grads, count)

    def set_input_arrays(self, data, labels):
        """Feed a MemoryData first layer (data N×C×H×W, labels N)."""
        first = self.layers[0]
        if first.type != "MemoryData":
            raise RuntimeError("set_input_arrays may only be called if the first layer is a "
                               f"MemoryData layer (it is '{self._layer_names[0]}', {first.type})")
        return first.set_input_arrays(data, labels)

    def reshape(self):
        """Reshape every layer for the current input shapes (Caffe's Net::Reshape)."""
        core = self.layerforge_net
        for name, layer in core.layers.items():
            layer.reshape(self._blobs_of(core.bottom_names[name]), self._blobs_of(core.top_names[name]))

    def clear_param_diffs(self):
        self.layerforge_net.clear_param_diffs()

    # ------------------------------------------------------------ weights

    def save(self, filename):
        self.layerforge_net.save(filename)

    def copy_from(self, filename):
        self.layerforge_net.copy_from(filename)

    def share_with(self, other):
        self.layerforge_net.share_with(getattr(other, "layerforge_net", other))

    def save_hdf5(self, filename):
        """Weights as Caffe's HDF5 snapshot: dataset data/<layer>/<i> per blob."""
        import h5py

        with h5py.File(os.fspath(filename), "w") as out:
            group = out.create_group("data")
            for name, blobs in self.params.items():
                layer_group = group.create_group(name)
                for i, blob in enumerate(blobs):
                    layer_group.create_dataset(str(i), data=blob.data)

    def load_hdf5(self, filename):
        """Load weights written by save_hdf5 (or Caffe's HDF5 snapshots) into same-named layers."""
        import h5py

        layers = self.layerforge_net.layers
        with h5py.File(os.fspath(filename), "r") as source:
            for name, layer_group in source["data"].items():
                if name in layers:
                    arrays = [np.asarray(layer_group[str(i)]) for i in range(len(layer_group))]
                    layers[name].load_blobs(arrays)


class Solver:
    """pycaffe's solver surface over one of layerforge's solvers (`layerforge_solver`)."""

    _core = None

    def __init__(self, solver_file):
        self._attach(self._core(solver_file))

    @classmethod
    def _wrap(cls, core):
        solver = cls.__new__(cls)
        solver._attach(core)
        return solver

    def _attach(self, core):
        self.layerforge_solver = core
        self.net = Net._wrap(core.net)
        self.test_nets = [Net._wrap(net) for net in core.test_nets]

    @property
    def iter(self):
        return self.layerforge_solver.iter

    @property
    def param(self):
        return self.layerforge_solver.param

    @property
    def lr(self):
        """The learning rate of the current iteration."""
        return self.layerforge_solver.learning_rate()

    def step(self, iters):
        self.layerforge_solver.step(iters)

    def solve(self, resume_file=None):
        self.layerforge_solver.solve(resume=resume_file)

    def snapshot(self):
        self.layerforge_solver.snapshot()

    def restore(self, state_file):
        self.layerforge_solver.restore(state_file)

    def apply_update(self):
        """Update the weights from the diffs the net holds, at the current learning rate."""
        self.layerforge_solver.apply_update()

    def share_weights(self, net):
        net.share_with(self.net)

    def add_callback(self, on_start, on_gradients_ready):
        """on_start() before each iteration's forward/backward, on_gradients_ready() before its update."""
        hooks = {"iteration_start": on_start, "gradients_ready": on_gradients_ready}

        def dispatch(event):
            hook = hooks.get(event["event"])
            if hook is not None:
                hook()

        self.layerforge_solver.callbacks.append(dispatch)


class SGDSolver(Solver):
    _core = layerforge.SGDSolver


class NesterovSolver(SGDSolver):
    _core = layerforge.NesterovSolver


class AdaGradSolver(SGDSolver):
    _core = layerforge.AdaGradSolver


class RMSPropSolver(SGDSolver):
    _core = layerforge.RMSPropSolver


class AdaDeltaSolver(SGDSolver):
    _core = layerforge.AdaDeltaSolver


class AdamSolver(SGDSolver):
    _core = layerforge.AdamSolver


_SOLVERS = {cls._core.type_name: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver,
                                                RMSPropSolver, AdaDeltaSolver, AdamSolver)}


def get_solver(solver_file):
    """The solver the file's `type` names."""
    core = layerforge.get_solver(solver_file)
    return _SOLVERS[core.type_name]._wrap(core)


class Timer:
    """Wall-clock timer: start(), stop(), ms (milliseconds between them, or so far)."""

    def __init__(self):
        self._start = self._stop = None

    def start(self):
        self._start, self._stop = time.perf_counter(), None

    def stop(self):
        self._stop = time.perf_counter()

    @property
    def ms(self):
        if self._start is None:
            return 0.0
        end = self._stop if self._stop is not None else time.perf_counter()
        return (end - self._start) * 1000.0


def layer_type_list():
    """Every layer type a prototxt may name, "Python" included."""
    from layerforge.registry import registered_types
    return registered_types()


def set_mode_cpu():
    """layerforge always runs on the CPU."""


def set_mode_gpu():
    raise RuntimeError("layerforge runs on the CPU only: remove set_mode_gpu() (set_mode_cpu() is "
                       "accepted)")


def set_device(device_id):
    raise RuntimeError(f"layerforge runs on the CPU only: there is no device {device_id} to select")


TRAIN, TEST = pb.TRAIN, pb.TEST
__all__ = ["Net", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "get_solver", "Timer", "layer_type_list",
           "set_mode_cpu", "set_mode_gpu", "set_device", "set_random_seed", "TRAIN", "TEST"]
