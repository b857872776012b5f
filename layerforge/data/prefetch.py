"""Batches from an in-memory dataset, produced ahead of use in a background thread.

In a data-parallel run (`shard` = (rank, size)) the sampler draws the batch of all ranks and a
source keeps its rank's consecutive slice of it.
"""
import queue
import threading

import numpy as np


class BatchSource:
    """Makes (data, label, state) batches: sampler picks records, transformer prepares them.

    `state` is the position and RNG state right after the batch, so a consumer can
    report exactly what it has used, however far the prefetch thread has run ahead.
    """

    def __init__(self, images, labels, sampler, transformer, output_all_labels=False, shard=(0, 1)):
        self.images = images
        self.labels = labels
        self.sampler = sampler
        self.transformer = transformer
        self.output_all_labels = output_all_labels
        channels, height, width = transformer.output_shape
        k = sampler.images_per_blob
        rank, size = shard
        if sampler.batch_size % size:
            raise ValueError(f"the sampler's batch of {sampler.batch_size} does not split into {size} shards")
        batch = sampler.batch_size // size
        self.rows = slice(rank * batch, (rank + 1) * batch)
        self.data_shape = (batch, k * channels, height, width)
        self.label_shape = (batch, k) if k > 1 and output_all_labels else (batch,)

    def get_state(self):
        return {"sampler": self.sampler.get_state(), "transform": self.transformer.get_state()}

    def set_state(self, state):
        self.sampler.set_state(state["sampler"])
        self.transformer.set_state(state["transform"])

    def next(self):
        """The next batch: this shard's rows of the batch the sampler draws. Random transforms
        run on the whole drawn batch, so a shard gets exactly the items one process would.
        Returns (data, labels, state after it, the record indices of its items)."""
        idx = self.sampler.next_indices()
        if self.transformer.draws_random:
            data = self.transformer(self.images[idx.ravel()], self.sampler.rng)
            data = data.reshape((len(idx),) + self.data_shape[1:])[self.rows]
            idx = idx[self.rows]
        else:
            idx = idx[self.rows]
            data = self.transformer(self.images[idx.ravel()], self.sampler.rng).reshape(self.data_shape)
        labels = self.labels[idx]
        if idx.shape[1] == 1:
            labels = labels[:, 0]
        elif not self.output_all_labels:
            labels = np.all(labels == labels[:, :1], axis=1)
        return data, labels.astype(np.float32), self.get_state(), idx


class Prefetcher:
    """Runs produce() in a daemon thread, keeping up to `depth` results in a queue.

    The thread holds no reference to the owner of the Prefetcher, so the owner can be
    garbage collected; its finalizer (or an explicit close()) stops the thread. An
    exception in produce() is re-raised by the next get().
    """

    def __init__(self, produce, depth, name="prefetch"):
        self.produce = produce
        self.depth = depth
        self.name = name
        self.thread = None

    def get(self):
        if self.thread is None:
            self._start()
        ok, item = self.queue.get()
        if not ok:
            self.close()
            raise item
        return item

    def _start(self):
        self.queue = queue.Queue(self.depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=_run, args=(self.produce, self.queue, self.stop),
                                       name=self.name, daemon=True)
        self.thread.start()

    def close(self):
        """Stop the thread and drop what it prefetched; the next get() starts afresh."""
        if self.thread is None:
            return
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self.thread.join()
        self.thread = None


def _run(produce, out, stop):
    while not stop.is_set():
        try:
            item = (True, produce())
        except BaseException as err:  # handed to the consumer, which re-raises it
            item = (False, err)
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                break
            except queue.Full:
                pass
        if not item[0]:
            return
