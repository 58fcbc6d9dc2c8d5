"""Version discovery, loading and hot reload of SavedModels under a base path.

Layout (as TF Serving): ``<base_path>/<integer version>/saved_model.pb``.  All
versions found are served; requests without a version get the newest.  A
background poller rescans the base path every ``poll_seconds``: new versions
are loaded (and warmed up from ``assets.extra/tf_serving_warmup_requests``)
*before* they become visible, removed versions are dropped.  The version map
is replaced, never mutated, so in-flight requests keep the ``Servable`` object
they started with.  Request strings never become paths: a requested version
is an ``int`` looked up in that map.
"""

import collections
import gc
import logging
import os
import re
import threading

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfseq2seq.export.warmup import read_warmup_requests
from tfseq2seq.serving.status import invalid_argument, not_found

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"


def check_shape(name, dims, shape):
    """Refuses input ``name`` of shape ``dims`` (a list) unless the signature's ``shape``
    (a ``tf.TensorShape``) allows it; the gRPC handler calls it before materializing."""
    if not shape.is_compatible_with(dims):
        raise invalid_argument(f"Input {name} has shape {dims}, incompatible with the "
                               f"signature's {shape}")


_VERSION_DIR = re.compile(r"[0-9]{1,18}")


def _read_signature_defs(path):
    """The SignatureDefMap of the 'serve' MetaGraph, exactly as saved."""
    model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        model.ParseFromString(f.read())
    for meta_graph in model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"no MetaGraph tagged 'serve' in {path}")


class Servable:
    """One loaded version: signature functions plus their SignatureDefs."""

    def __init__(self, version, path, loaded, signature_defs):
        self.version = version
        self.path = path
        self._loaded = loaded  # keeps the restored objects (and variables) alive
        self.signature_defs = signature_defs
        self._stats_lock = threading.Lock()
        self.batch_sizes = collections.Counter()  # rows per model call -> count
        self._inputs = {}  # signature -> inputs(signature), built on first use

    def inputs(self, signature):
        """{input name: (tf.DType, TensorShape)} of a signature (the same dict each call:
        don't modify it)."""
        result = self._inputs.get(signature)
        if result is None:
            result = {}
            for name, info in self.signature_defs[signature].inputs.items():
                dtype = tf.dtypes.as_dtype(info.dtype)
                result[name] = (dtype, tf.TensorShape(info.tensor_shape))
            self._inputs[signature] = result
        return result

    def validate(self, signature, arrays, max_rows=None):
        """Check input names, dtypes, shapes and row count; return the row count."""
        expected = self.inputs(signature)
        if set(arrays) != set(expected):
            sent, want = sorted(arrays), sorted(expected)
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(want)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(want)}}}). "
                f"Sent extra: {{{','.join(sorted(set(sent) - set(want)))}}}. "
                f"Missing but required: {{{','.join(sorted(set(want) - set(sent)))}}}.")
        rows = None
        for index, name in enumerate(sorted(expected)):
            dtype, shape = expected[name]
            array = arrays[name]
            got = _tf_dtype_of(array)
            if got != dtype:
                raise invalid_argument(f"Expects arg[{index}] ({name}) to be {dtype.name} "
                                       f"but {got.name if got else array.dtype} is provided")
            check_shape(name, list(array.shape), shape)
            n = array.shape[0] if array.ndim else 1
            if rows is not None and n != rows:
                raise invalid_argument(f"Inputs have inconsistent batch sizes: {n} vs {rows}")
            rows = n
        if max_rows is not None and rows is not None and rows > max_rows:
            raise invalid_argument(f"Request has {rows} rows, more than the server's "
                                   f"max_batch_rows={max_rows}")
        return rows or 0

    def run(self, signature, arrays):
        """Run a signature on validated numpy inputs; TF errors -> INVALID_ARGUMENT."""
        fn = self._loaded.signatures[signature]
        expected = self.inputs(signature)
        try:
            kwargs = {k: tf.constant(v, dtype=expected[k][0]) for k, v in arrays.items()}
            outputs = fn(**kwargs)
            result = {k: v.numpy() for k, v in outputs.items()}
        except (tf.errors.OpError, ValueError, TypeError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise invalid_argument(message) from None
        first = next(iter(arrays.values()), None)
        rows = first.shape[0] if first is not None and first.ndim else 1
        with self._stats_lock:
            self.batch_sizes[rows] += 1
        return result


def _tf_dtype_of(array):
    if array.dtype.kind in "OSU":
        return tf.string
    try:
        return tf.dtypes.as_dtype(array.dtype)
    except TypeError:
        return None


def warm_up(servable, path):
    """Replay PredictLog records from the warmup file (up to 1000), like TF Serving."""
    count = 0
    for request in read_warmup_requests(path):
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature not in servable.signature_defs:
            raise ValueError(f'warmup: serving signature key "{signature}" not found')
        arrays = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        servable.validate(signature, arrays)
        servable.run(signature, arrays)
        count += 1
    return count


def load_servable(path, version):
    """Load (and warm up) one SavedModel version."""
    signature_defs = _read_signature_defs(path)
    loaded = tf.saved_model.load(path)
    servable = Servable(version, path, loaded, signature_defs)
    warmed = warm_up(servable, path)
    log.info("loaded version %d from %s (%d warmup requests)", version, path, warmed)
    return servable


def _fingerprint(path):
    """Cheap change detector for a version dir, used to retry failed loads."""
    stamp = []
    for root, _dirs, files in os.walk(path):
        for name in sorted(files):
            st = os.stat(os.path.join(root, name))
            stamp.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(stamp))


def _settle_garbage_collector():
    """After versions change: collect what the old ones left, then freeze what is left.

    A loaded model is hundreds of thousands of Python objects; left to the cyclic
    garbage collector, each full collection walks them all with the GIL held (~330 ms
    here, every few thousand REST requests: a latency spike for every request in
    flight). Frozen objects are skipped by collections; unfreezing first lets the
    collection here reclaim unloaded versions' reference cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelManager:
    """Serves every integer version under ``base_path``; newest is the default."""

    def __init__(self, base_path, name, poll_seconds=1.0, loader=load_servable):
        self.name = name
        self.base_path = os.path.abspath(base_path)
        self.poll_seconds = poll_seconds
        self._loader = loader
        self._lock = threading.Lock()
        self._servables = {}  # int -> Servable; replaced wholesale, never mutated
        self._states = {}  # int -> (state, error code, error message)
        self._failed = {}  # int -> fingerprint of the dir when its load failed
        self._stop = threading.Event()
        self._thread = None

    # -- lookups ---------------------------------------------------------
    def get(self, version=None):
        servables = self._servables
        if version is None:
            if servables:
                return servables[max(servables)]
            raise not_found(f"Servable not found for request: Latest({self.name})")
        servable = servables.get(int(version))
        if servable is None:
            raise not_found(f"Servable not found for request: Specific({self.name}, {version})")
        return servable

    def lookup(self, name, version=None):
        """``get`` for a request naming a model (only ``self.name`` is served)."""
        if name != self.name:
            request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise not_found(f"Servable not found for request: {request}")
        return self.get(version)

    def versions(self):
        return sorted(self._servables)

    def status(self, version=None):
        """[(version, state, error_code, error_message)], newest first (TF Serving order)."""
        with self._lock:
            states = dict(self._states)
        if version is not None:
            if int(version) not in states:
                raise not_found(f"Could not find version {version} of model {self.name}")
            return [(int(version),) + states[int(version)]]
        if not states:
            raise not_found(f"Could not find any versions of model {self.name}")
        return [(v,) + states[v] for v in sorted(states, reverse=True)]

    # -- discovery / reload ----------------------------------------------
    def _discover(self):
        try:
            entries = list(os.scandir(self.base_path))
        except OSError as exc:
            log.warning("cannot list model base path %s: %s", self.base_path, exc)
            return {}
        found = {}
        for entry in entries:
            if _VERSION_DIR.fullmatch(entry.name) and entry.is_dir() and \
                    os.path.isfile(os.path.join(entry.path, "saved_model.pb")):
                found[int(entry.name)] = entry.path
        return found

    def poll_once(self):
        """Load new versions, drop removed ones.  Returns the served versions."""
        found = self._discover()
        added = sorted(set(found) - set(self._servables))
        for version in added:
            self._load(version, found[version])
        removed = set(self._servables) - set(found)
        if removed:
            with self._lock:
                self._servables = {v: s for v, s in self._servables.items() if v not in removed}
                for v in removed:
                    self._states[v] = ("END", "OK", "")
            log.info("unloaded versions %s of %s", sorted(removed), self.name)
        if added or removed:
            _settle_garbage_collector()
        return self.versions()

    def _load(self, version, path):
        if version in self._failed and self._failed[version] == _fingerprint(path):
            return  # failed before and unchanged since: don't retry every poll
        stamp = _fingerprint(path)  # taken first: files changing during the load mean retry
        with self._lock:
            self._states[version] = ("LOADING", "OK", "")
        try:
            servable = self._loader(path, version)
        except Exception as exc:  # a bad export must not take the server down
            log.error("failed to load version %d of %s: %s", version, self.name, exc)
            self._failed[version] = stamp
            with self._lock:
                self._states[version] = ("END", "UNKNOWN", f"Failed to load: {exc}")
            return
        self._failed.pop(version, None)
        with self._lock:
            self._servables = {**self._servables, version: servable}
            self._states[version] = ("AVAILABLE", "OK", "")

    def start(self):
        """Load what is there now, then keep polling in a daemon thread."""
        self.poll_once()
        if not self._servables:
            log.warning("no servable versions of %s found under %s yet", self.name, self.base_path)
        if self.poll_seconds and self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poller", daemon=True)
            self._thread.start()
        return self

    def _poll_loop(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # keep polling whatever happens
                log.exception("model poll failed")

    def stop(self, timeout=5.0):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
