"""TensorProto <-> numpy conversion for the request hot path.

``fill_tensor_proto(proto, array)`` writes the same fields as
``tf.make_tensor_proto(array)`` (so the serialized bytes are identical), and
``to_ndarray(proto)`` returns what ``tf.make_ndarray(proto)`` returns, both for
the dtypes below, without TensorFlow's per-call Python overhead (type
inference, shape objects, dtype lookups).  Other dtypes (complex, bfloat16,
quantized, float8, ...) are handed to TensorFlow's own functions.

TensorFlow's rules (tensor_util), reimplemented: numeric arrays with more than
one element go into ``tensor_content`` (native byte order, C order) unless
their dtype is bool or uint16; scalars, one-element and empty arrays, bools,
uint16 and strings go into the typed ``*_val`` field.  When decoding, a
``*_val`` field shorter than the shape repeats its last value, and an empty
one means zeros.
"""

import numpy as np
from tensorflow.core.framework import types_pb2

_STRING = types_pb2.DT_STRING

# numpy dtype -> (DataType, *_val field, may use tensor_content)
_BY_NUMPY = {
    np.dtype(np.float16): (types_pb2.DT_HALF, "half_val", True),
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val", True),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val", True),
    np.dtype(np.int8): (types_pb2.DT_INT8, "int_val", True),
    np.dtype(np.int16): (types_pb2.DT_INT16, "int_val", True),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val", True),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val", True),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val", True),
    np.dtype(np.uint16): (types_pb2.DT_UINT16, "int_val", False),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, "uint32_val", True),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, "uint64_val", True),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val", False),
}
# DataType -> (numpy dtype, *_val field)
_BY_ENUM = {enum: (dtype, field) for dtype, (enum, field, _) in _BY_NUMPY.items()}


def _as_bytes(value):
    """``tf.compat.as_bytes``: bytes as is, str as UTF-8, anything else a TypeError."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"Expected binary or unicode string, got {value!r}")


def _make_tensor_proto(proto, value):
    import tensorflow as tf  # the rare cases only

    proto.CopyFrom(tf.make_tensor_proto(value))
    return proto


def fill_tensor_proto(proto, array):
    """Fill an empty ``TensorProto`` (e.g. ``response.outputs[name]``) from an ndarray,
    exactly as ``proto.CopyFrom(tf.make_tensor_proto(array))`` would."""
    if not isinstance(array, np.ndarray) or not array.dtype.isnative:
        # Python / numpy scalars (a scalar string tensor's .numpy() is bytes) and
        # non-native byte orders: TensorFlow's own conversion.
        return _make_tensor_proto(proto, array)
    is_string = array.dtype.kind in "OSU"
    entry = None if is_string else _BY_NUMPY.get(array.dtype)
    if entry is None and not is_string:  # complex, bfloat16, ...
        return _make_tensor_proto(proto, array)
    shape = proto.tensor_shape
    shape.SetInParent()  # present even for a scalar, as in make_tensor_proto
    for size in array.shape:
        shape.dim.add(size=size)
    if is_string:
        proto.dtype = _STRING
        values = array.ravel().tolist()
        try:
            proto.string_val.extend(values)
        except TypeError:  # str (or invalid) elements
            proto.string_val.extend([_as_bytes(v) for v in values])
        return proto
    enum, field, content = entry
    proto.dtype = enum
    if content and array.size > 1:
        proto.tensor_content = array.tobytes()
    elif enum == types_pb2.DT_HALF:
        proto.half_val.extend(array.ravel().view(np.uint16).tolist())
    else:
        getattr(proto, field).extend(array.ravel().tolist())
    return proto


def to_ndarray(proto):
    """``tf.make_ndarray(proto)`` for the dtypes above (others go to TensorFlow)."""
    if proto.dtype != _STRING and proto.dtype not in _BY_ENUM:
        import tensorflow as tf  # complex, bfloat16, ...

        return tf.make_ndarray(proto)
    shape = [d.size for d in proto.tensor_shape.dim]
    count = 1
    for size in shape:
        count *= size
    if proto.dtype == _STRING:
        if proto.tensor_content:  # TensorFlow fails here too (no object arrays from bytes)
            raise ValueError("a DT_STRING tensor cannot be read from tensor_content")
        values = list(proto.string_val)
        if count > len(values):
            values.extend([values[-1] if values else ""] * (count - len(values)))
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype, field = _BY_ENUM[proto.dtype]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).copy().reshape(shape)
    if proto.dtype == types_pb2.DT_HALF:
        values = np.fromiter(proto.half_val, dtype=np.uint16).view(np.float16)
    else:
        values = np.fromiter(getattr(proto, field), dtype=dtype)
    if values.size == 0:
        return np.zeros(shape, dtype)
    if values.size != count:
        values = np.pad(values, (0, count - values.size), "edge")
    return values.reshape(shape)
