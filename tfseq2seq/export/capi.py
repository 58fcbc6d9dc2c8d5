"""Runs a SavedModel through TensorFlow's C API instead of Python's ``tf.saved_model.load``.

``TF_LoadSessionFromSavedModel`` is a thin wrapper over the C++ ``LoadSavedModel`` that
``tensorflow_model_server`` uses (session-based ``SavedModelBundle``): it restores the
variables, runs the init op (lookup tables read their vocabulary files from
``assets/``) and returns the MetaGraphDef whose SignatureDefs name the tensors to feed
and fetch, exactly what TF Serving's Predict handler does. This is a verification tool
(tests, ``export`` self-checks), not a serving path.

TensorFlow Text's ops are registered in this process by importing ``tensorflow_text``
(``tensorflow_model_server`` has them built in). String tensors are ``TF_TString``
arrays filled with ``TF_StringInit``/``TF_StringCopy`` and read back with
``TF_StringGetDataPointer``/``TF_StringGetSize``.
"""

import ctypes
import os

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers TF Text ops in the process-wide registry)
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.framework import errors_impl
from tensorflow_serving.apis import predict_pb2

TF_STRING = 7
TSTRING_SIZE = 24  # sizeof(TF_TString) on 64-bit platforms
_LIBRARIES = ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2",
              os.path.join("python", "_pywrap_tensorflow_internal.so"))
_lib = None


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t),
                ("data_deallocator", ctypes.c_void_p)]


_P, _I, _I64, _SIZE = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_size_t
_SIGNATURES = {  # name: (restype, argtypes)
    "TF_NewStatus": (_P, []), "TF_DeleteStatus": (None, [_P]),
    "TF_GetCode": (_I, [_P]), "TF_Message": (ctypes.c_char_p, [_P]),
    "TF_NewGraph": (_P, []), "TF_DeleteGraph": (None, [_P]),
    "TF_NewSessionOptions": (_P, []), "TF_DeleteSessionOptions": (None, [_P]),
    "TF_NewBuffer": (ctypes.POINTER(_Buffer), []),
    "TF_DeleteBuffer": (None, [ctypes.POINTER(_Buffer)]),
    "TF_LoadSessionFromSavedModel": (
        _P, [_P, _P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), _I, _P,
             ctypes.POINTER(_Buffer), _P]),
    "TF_CloseSession": (None, [_P, _P]), "TF_DeleteSession": (None, [_P, _P]),
    "TF_GraphOperationByName": (_P, [_P, ctypes.c_char_p]),
    "TF_SessionRun": (None, [_P, _P, ctypes.POINTER(_Output), ctypes.POINTER(_P), _I,
                             ctypes.POINTER(_Output), ctypes.POINTER(_P), _I, _P, _I, _P, _P]),
    "TF_AllocateTensor": (_P, [_I, ctypes.POINTER(_I64), _I, _SIZE]),
    "TF_DeleteTensor": (None, [_P]), "TF_TensorData": (_P, [_P]),
    "TF_TensorByteSize": (_SIZE, [_P]), "TF_TensorType": (_I, [_P]),
    "TF_NumDims": (_I, [_P]), "TF_Dim": (_I64, [_P, _I]),
    "TF_StringInit": (None, [_P]), "TF_StringCopy": (None, [_P, ctypes.c_char_p, _SIZE]),
    "TF_StringGetDataPointer": (_P, [_P]), "TF_StringGetSize": (_SIZE, [_P]),
    "TF_StringDealloc": (None, [_P]),
}


def library():
    """The already-loaded TensorFlow shared library exporting the C API (typed)."""
    global _lib
    if _lib is None:
        root = os.path.dirname(tf.__file__)
        for name in _LIBRARIES:
            path = os.path.join(root, name)
            if os.path.exists(path):
                lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                if hasattr(lib, "TF_LoadSessionFromSavedModel"):
                    break
        else:
            raise RuntimeError(f"no library in {root} exports TF_LoadSessionFromSavedModel")
        for fn_name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, fn_name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = lib
    return _lib


def _raise_for(status):
    lib = library()
    code = lib.TF_GetCode(status)
    if code != 0:
        message = lib.TF_Message(status).decode("utf-8", "replace")
        raise errors_impl.exception_type_from_error_code(code)(None, None, message)


class CApiSavedModel:
    """A SavedModel loaded by the C++ loader; ``run`` / ``predict`` feed its signatures."""

    def __init__(self, export_dir, tags=("serve",)):
        lib = library()
        self._status, self._graph = lib.TF_NewStatus(), lib.TF_NewGraph()
        options, meta_buffer = lib.TF_NewSessionOptions(), lib.TF_NewBuffer()
        tag_array = (ctypes.c_char_p * len(tags))(*[t.encode() for t in tags])
        self._session = None
        try:
            self._session = lib.TF_LoadSessionFromSavedModel(
                options, None, os.fspath(export_dir).encode(), tag_array, len(tags),
                self._graph, meta_buffer, self._status)
            _raise_for(self._status)
            data = ctypes.string_at(meta_buffer.contents.data, meta_buffer.contents.length)
            self.meta_graph = meta_graph_pb2.MetaGraphDef.FromString(data)
        except BaseException:
            self.close()
            raise
        finally:
            lib.TF_DeleteSessionOptions(options)
            lib.TF_DeleteBuffer(meta_buffer)

    @property
    def signatures(self):
        """SignatureDefs of the MetaGraphDef the C++ loader returned."""
        return self.meta_graph.signature_def

    def run(self, signature_name, inputs):
        """Feeds ``{input key: array}`` by the signature's tensor names; returns
        ``{output key: numpy array}`` (strings as object arrays of bytes)."""
        if signature_name not in self.signatures:  # (indexing a proto map would insert it)
            raise KeyError(f"no signature {signature_name!r}; have {sorted(self.signatures)}")
        signature = self.signatures[signature_name]
        if set(inputs) != set(signature.inputs):
            raise ValueError(f"signature {signature_name!r} takes inputs "
                             f"{sorted(signature.inputs)}, got {sorted(inputs)}")
        in_keys, out_keys = sorted(inputs), sorted(signature.outputs)
        feeds = [self._output(signature.inputs[k].name) for k in in_keys]
        fetches = [self._output(signature.outputs[k].name) for k in out_keys]
        tensors = [_to_tensor(np.asarray(inputs[k])) for k in in_keys]
        results = (_P * len(fetches))()
        lib = library()
        try:
            lib.TF_SessionRun(self._session, None, (_Output * len(feeds))(*feeds),
                              (_P * len(tensors))(*[t for t, _ in tensors]), len(tensors),
                              (_Output * len(fetches))(*fetches), results, len(fetches),
                              None, 0, None, self._status)
            _raise_for(self._status)
            return {k: _to_numpy(results[i]) for i, k in enumerate(out_keys)}
        finally:
            for result in results:
                if result:
                    lib.TF_DeleteTensor(result)
            for tensor, string_count in tensors:
                _delete_tensor(tensor, string_count)

    def predict(self, request):
        """Runs a ``PredictRequest`` (or its serialized bytes) as TF Serving's Predict does:
        the request's signature (default ``serving_default``), inputs via
        ``tf.make_ndarray``, and the outputs listed in ``output_filter`` (default all)."""
        if isinstance(request, bytes):
            request = predict_pb2.PredictRequest.FromString(request)
        name = request.model_spec.signature_name or "serving_default"
        outputs = self.run(name, {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        wanted = list(request.output_filter) or list(outputs)
        return {k: outputs[k] for k in wanted}

    def _output(self, tensor_name):
        op_name, _, index = tensor_name.partition(":")
        oper = library().TF_GraphOperationByName(self._graph, op_name.encode())
        if not oper:
            raise KeyError(f"no operation {op_name!r} in the loaded graph")
        return _Output(oper, int(index or 0))

    def close(self):
        """Frees the session, graph and status (idempotent)."""
        lib = library()
        if self._session:
            lib.TF_CloseSession(self._session, self._status)
            lib.TF_DeleteSession(self._session, self._status)
            self._session = None
        if self._graph:
            lib.TF_DeleteGraph(self._graph)
            lib.TF_DeleteStatus(self._status)
            self._graph = self._status = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _to_tensor(array):
    """numpy -> (TF_Tensor*, number of TF_TStrings to free); strings are copied into
    ``TF_TString`` elements, which the caller must ``TF_StringDealloc`` (see
    ``_delete_tensor``) because ``TF_AllocateTensor`` memory is freed without them."""
    lib = library()
    is_string = array.dtype.kind in "OSU"
    dtype = TF_STRING if is_string else tf.as_dtype(array.dtype).as_datatype_enum
    dims = (_I64 * array.ndim)(*array.shape)
    nbytes = array.size * TSTRING_SIZE if is_string else array.nbytes
    tensor = lib.TF_AllocateTensor(dtype, dims, array.ndim, nbytes)
    data = lib.TF_TensorData(tensor)
    if not is_string:
        ctypes.memmove(data, np.ascontiguousarray(array).ctypes.data, nbytes)
        return tensor, 0
    for i, value in enumerate(array.reshape(-1)):
        value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        lib.TF_StringInit(data + i * TSTRING_SIZE)
        lib.TF_StringCopy(data + i * TSTRING_SIZE, value, len(value))
    return tensor, array.size


def _delete_tensor(tensor, string_count):
    lib = library()
    data = lib.TF_TensorData(tensor)
    for i in range(string_count):
        lib.TF_StringDealloc(data + i * TSTRING_SIZE)
    lib.TF_DeleteTensor(tensor)


def _to_numpy(tensor):
    lib = library()
    shape = [lib.TF_Dim(tensor, i) for i in range(lib.TF_NumDims(tensor))]
    data = lib.TF_TensorData(tensor)
    if lib.TF_TensorType(tensor) == TF_STRING:
        count = int(np.prod(shape, dtype=np.int64))
        values = [ctypes.string_at(lib.TF_StringGetDataPointer(data + i * TSTRING_SIZE),
                                   lib.TF_StringGetSize(data + i * TSTRING_SIZE))
                  for i in range(count)]
        array = np.empty(count, object)
        array[:] = values
        return array.reshape(shape)
    dtype = tf.dtypes.as_dtype(lib.TF_TensorType(tensor)).as_numpy_dtype
    raw = ctypes.string_at(data, lib.TF_TensorByteSize(tensor)) if data else b""
    return np.frombuffer(raw, dtype).reshape(shape).copy()
