"""Data-parallel training on MPI through mpi4py: one model, N processes, one update.

`mpiexec -n N layerforge train ...` (or `srun`, or any MPI launcher) starts N ranks. Each
builds the same net; rank 0's weights (and restored solver state) are broadcast so all start
identical. `batch_size` is per rank: rank r's batch is the r-th of N equal slices of the batch
one process with N x batch_size would draw with the same seed (`shard`). After backward the
parameter gradients are summed with Allreduce on contiguous buckets and divided by N, so every
rank applies the same update. Rank 0 alone writes logs and snapshots.

mpi4py is imported only when the launcher says there is more than one process, so a plain
`layerforge train` never loads MPI. `active()` is the world in use (None outside MPI).
"""
import math
import os

import numpy as np

from layerforge.io import ConfigError

# Process counts that MPI launchers put in the environment (MPICH/Hydra, Open MPI, PMIx, Slurm).
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")
BUCKET_BYTES = 4 << 20     # gradients travel in Allreduce calls of at most this many bytes

_active = None


def launched_size():
    """How many processes the launcher started (1 when not started by one)."""
    for name in _SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def active():
    """The World of this data-parallel run, or None when training in one process."""
    return _active


def shard():
    """(rank, size) of this process: (0, 1) outside a data-parallel run."""
    return (0, 1) if _active is None else (_active.rank, _active.size)


def start():
    """Join the MPI world when launched with several processes; None otherwise.

    Idempotent. Sets Numba's thread count to the cores of this machine divided by the ranks on
    it (unless NUMBA_NUM_THREADS is set), so ranks do not oversubscribe the cores.
    """
    global _active
    if _active is not None or launched_size() == 1:
        return _active
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError("started by an MPI launcher with several processes, but mpi4py is not "
                          "installed: pip install 'layerforge[mpi]'") from None
    if MPI.COMM_WORLD.size == 1:   # N copies each alone would overwrite each other's snapshots
        raise ConfigError(f"the launcher started {launched_size()} processes, but MPI sees only this one: "
                          "the MPI runtime does not know this launcher (e.g. srun without PMI support); "
                          "start with this MPI's own mpiexec")
    _active = World(MPI.COMM_WORLD)
    if "NUMBA_NUM_THREADS" not in os.environ:
        import numba
        numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS,
                                         (os.cpu_count() or 1) // _active.local_size)))
    return _active


class World:
    """The ranks of one run and the collective operations training needs."""

    def __init__(self, comm):
        from mpi4py import MPI
        self._mpi = MPI
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        self.local_size = comm.Split_type(MPI.COMM_TYPE_SHARED).size
        self._buckets = None

    def broadcast(self, arrays):
        """Overwrite every array with rank 0's values."""
        for array in arrays:
            self.comm.Bcast(array, root=0)

    def broadcast_object(self, value):
        return self.comm.bcast(value, root=0)

    @staticmethod
    def _plan_buckets(arrays, extra):
        """Groups of consecutive arrays of at most BUCKET_BYTES, each with its send buffer;
        the last buffer has `extra` more values for flags."""
        groups, current, size = [], [], 0
        for array in arrays:
            if current and size + array.nbytes > BUCKET_BYTES:
                groups.append(current)
                current, size = [], 0
            current.append(array)
            size += array.nbytes
        groups.append(current)
        dtype = np.float64 if any(a.dtype == np.float64 for a in arrays) else np.float32
        return [(group, np.empty(sum(a.size for a in group) + (extra if i == len(groups) - 1 else 0), dtype))
                for i, group in enumerate(groups)]

    def average_gradients(self, diffs, flags=()):
        """Sum each gradient array over the ranks and divide by N, in place. `flags` (this
        rank's booleans, e.g. "wants to stop") ride along in the last bucket; returns, for
        each flag, whether any rank raised it."""
        key = [(id(d), d.shape, d.dtype) for d in diffs] + [len(flags)]
        if self._buckets is None or self._buckets[0] != key:
            self._buckets = (key, self._plan_buckets(diffs, len(flags)))
        scale = 1.0 / self.size
        buckets = self._buckets[1]
        raised = [False] * len(flags)
        for index, (group, buffer) in enumerate(buckets):
            offset = 0
            for diff in group:
                buffer[offset:offset + diff.size] = diff.reshape(-1)
                offset += diff.size
            last = index == len(buckets) - 1
            if last and flags:
                buffer[-len(flags):] = flags
            self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
            offset = 0
            for diff in group:
                np.multiply(buffer[offset:offset + diff.size], scale, out=diff.reshape(-1),
                            casting="unsafe")
                offset += diff.size
            if last and flags:
                raised = [bool(v > 0) for v in buffer[-len(flags):]]
        return raised

    def max(self, value):
        """The largest of the ranks' values (every rank gets it)."""
        return self.comm.allreduce(value, op=self._mpi.MAX)

    def mean(self, values):
        """Mean over the ranks of a dict of float arrays/scalars (every rank has the same keys)."""
        names = sorted(values)
        flat = [np.asarray(values[n], np.float64).ravel() for n in names]
        buffer = np.concatenate(flat) if flat else np.zeros(0)
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        buffer /= self.size
        out, offset = {}, 0
        for name, part in zip(names, flat):
            value = buffer[offset:offset + part.size].reshape(np.shape(values[name]))
            out[name] = value.item() if value.size == 1 and np.ndim(values[name]) == 0 else value
            offset += part.size
        return out

    def gather_rows(self, *arrays):
        """Each array's rows from every rank, concatenated in rank order (same on all ranks)."""
        return tuple(np.concatenate(self.comm.allgather(np.ascontiguousarray(a))) for a in arrays)

    def abort(self, status):
        """End every rank at once (a rank failed)."""
        self.comm.Abort(status)


def ring_allreduce_seconds(parameters, nodes, bandwidth_gbit, latency_s=5e-6, bytes_per_value=4):
    """Time of one ring Allreduce of `parameters` values over `nodes` nodes: 2(n-1) steps, each
    moving 1/n of the data and paying one latency (the standard cost model)."""
    if nodes <= 1:
        return 0.0
    volume = parameters * bytes_per_value * 2 * (nodes - 1) / nodes
    return 2 * (nodes - 1) * latency_s + volume * 8 / (bandwidth_gbit * 1e9)


def scaling_efficiency(step_seconds, parameters, nodes, bandwidth_gbit):
    """Weak-scaling efficiency when the Allreduce does not overlap compute."""
    comm = ring_allreduce_seconds(parameters, nodes, bandwidth_gbit)
    return step_seconds / (step_seconds + comm) if step_seconds > 0 else math.nan
