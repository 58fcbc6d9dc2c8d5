"""Server-side request batching, in the spirit of TF Serving's ``--enable_batching``.

Concurrent requests for the same servable (model version), signature and
input layout are concatenated along axis 0 into one model call of at most
``max_batch_size`` rows.  A batch is run when it is full or when its first
request has waited ``batch_timeout_micros``, and at most ``num_batch_threads``
batches run at once (default: the number of CPUs): while they are busy, a
timed-out batch stays open and keeps filling, which is what makes batching pay
under load (TF Serving's batch threads behave the same way).  There is no
scheduler thread: the request that opens a batch (its "leader") waits for the
batch to close, runs it on its own thread and hands every other request its
slice of the outputs.  Requests of ``max_batch_size`` rows or more run alone.
When a batch finishes while another one waits for a thread, its leader lets
that one start before waking its own followers (for at most
``HANDOFF_SECONDS``): otherwise the next leader queues behind all of them for
the GIL while the model sits idle.

If a merged batch fails (e.g. one request trips a model assertion), its
requests are rerun one by one so that only the offending one gets the error.
Outputs are split back by row; dimensions beyond the batch one (e.g. the
decoded length) are those of the merged batch, so a request may see extra
padding that it would not see unbatched -- exactly as with TF Serving.
"""

import os
import threading
import time

import numpy as np

from tfseq2seq.serving.status import StatusError

HANDOFF_SECONDS = 0.005  # longest a finished batch's followers wait for the next batch to start


class _Batch:
    def __init__(self):
        self.items = []  # (inputs dict, rows)
        self.rows = 0
        self.closed = False
        self.done = threading.Event()
        self.results = None  # list of per-item output dicts
        self.error = None

    def add(self, inputs, rows):
        self.items.append((inputs, rows))
        self.rows += rows
        return len(self.items) - 1


class Batcher:
    """Merges concurrent ``run`` calls; thread-safe."""

    def __init__(self, max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=None):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if num_batch_threads is not None and num_batch_threads < 1:
            raise ValueError(f"num_batch_threads must be >= 1, got {num_batch_threads}")
        self.max_batch_size = int(max_batch_size)
        self.timeout = max(0, batch_timeout_micros) / 1e6
        self.num_batch_threads = int(num_batch_threads or os.cpu_count() or 1)
        self._running = 0  # batches executing now (guarded by _cv)
        self._started = 0  # batches started so far (guarded by _cv)
        self._ready_waiting = 0  # leaders of full / timed-out batches waiting for a thread
        self._cv = threading.Condition()
        self._open = {}  # key -> open _Batch

    @staticmethod
    def _key(servable, signature, inputs):
        layout = tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))
        return (id(servable), signature, layout)

    def run(self, servable, signature, inputs):
        """Same contract as ``servable.run``; ``inputs`` must already be validated."""
        rows = min((v.shape[0] if v.ndim else 0) for v in inputs.values()) if inputs else 0
        if rows <= 0 or rows >= self.max_batch_size or any(v.ndim == 0 for v in inputs.values()):
            return servable.run(signature, inputs)
        key = self._key(servable, signature, inputs)
        with self._cv:
            batch, index, leader = self._join(key, inputs, rows)
            if leader:
                self._wait_until_closed(key, batch)
        if leader:
            try:
                self._execute(servable, signature, batch)
            finally:
                self._release_thread()
                batch.done.set()  # never leave followers waiting, whatever happened
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        result = batch.results[index]
        if isinstance(result, StatusError):
            raise result
        return result

    def _join(self, key, inputs, rows):
        """Add a request to the open batch for ``key`` (caller holds the lock)."""
        batch = self._open.get(key)
        leader = False
        if batch is None or batch.rows + rows > self.max_batch_size:
            if batch is not None:
                self._close(key, batch)
            batch = self._open[key] = _Batch()
            leader = True
        index = batch.add(inputs, rows)
        if batch.rows >= self.max_batch_size:
            self._close(key, batch)
        return batch, index, leader

    def _close(self, key, batch):
        batch.closed = True
        if self._open.get(key) is batch:
            del self._open[key]
        self._cv.notify_all()

    def _wait_until_closed(self, key, batch):
        """Wait until the batch is full or timed out and a batch thread is free; then
        close it and take the thread (caller holds the lock)."""
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if batch.closed or remaining <= 0:
                if self._running < self.num_batch_threads:
                    break
                self._ready_waiting += 1
                try:
                    self._cv.wait(1.0)  # a finishing batch notifies; meanwhile this one fills
                finally:
                    self._ready_waiting -= 1
            else:
                self._cv.wait(remaining)
        if not batch.closed:
            self._close(key, batch)
        self._running += 1
        self._started += 1
        self._cv.notify_all()  # a leader handing over its thread waits for this

    def _release_thread(self):
        """Give the batch thread back.  If a ready batch waits for one, let it start
        before this batch's followers wake up: otherwise its leader competes with all
        of them for the GIL and the model sits idle for milliseconds (bounded wait)."""
        with self._cv:
            self._running -= 1
            self._cv.notify_all()
            if self._ready_waiting:
                started = self._started
                self._cv.wait_for(lambda: self._started != started, HANDOFF_SECONDS)

    @staticmethod
    def _execute(servable, signature, batch):
        try:
            if len(batch.items) == 1:
                batch.results = [servable.run(signature, batch.items[0][0])]
            else:
                names = batch.items[0][0].keys()
                merged = {k: np.concatenate([inp[k] for inp, _ in batch.items]) for k in names}
                try:
                    outputs = servable.run(signature, merged)
                    batch.results = _split(outputs, [rows for _, rows in batch.items])
                except StatusError:
                    # One bad request must not fail its batch-mates: rerun them one by one.
                    batch.results = [_run_one(servable, signature, inp) for inp, _ in batch.items]
        except StatusError as exc:
            batch.error = exc
        except Exception as exc:  # reported to every request of the batch
            batch.error = StatusError("INTERNAL", f"batched run failed: {exc}")


def _run_one(servable, signature, inputs):
    try:
        return servable.run(signature, inputs)
    except StatusError as exc:
        return exc


def _split(outputs, row_counts):
    total = sum(row_counts)
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != total:
            raise StatusError("INTERNAL", f"output {name} has shape {value.shape}; "
                              f"cannot split a batch of {total} rows")
    offsets = np.cumsum([0] + row_counts)
    return [{k: v[offsets[i]:offsets[i + 1]] for k, v in outputs.items()}
            for i in range(len(row_counts))]


class RequestRunner:
    """Validates a request against its signature, then runs it (batched or not)."""

    def __init__(self, batcher=None, max_batch_rows=None):
        self.batcher = batcher
        self.max_batch_rows = max_batch_rows

    def __call__(self, servable, signature, inputs):
        servable.validate(signature, inputs, self.max_batch_rows)
        if self.batcher is not None:
            return self.batcher.run(servable, signature, inputs)
        return servable.run(signature, inputs)
