"""tfseq2seq.serving.tensor_proto against TensorFlow's make_tensor_proto / make_ndarray:
same serialized bytes when encoding, same arrays when decoding, for every dtype the
server handles (and a fallback for the others)."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfseq2seq.serving.tensor_proto import fill_tensor_proto, to_ndarray

NUMERIC = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
           np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]
SHAPES = [(), (0,), (1,), (5,), (1, 1), (2, 3), (2, 0, 3), (3, 2, 4)]


def _numeric(dtype, shape, rng):
    values = rng.integers(-100, 100, size=shape) if np.dtype(dtype).kind in "iu" else \
        rng.normal(size=shape) * 50
    if np.dtype(dtype).kind == "u":
        values = np.abs(values)
    if dtype is np.bool_:
        values = rng.integers(0, 2, size=shape)
    return np.asarray(values).astype(dtype)


def _strings(shape, rng, kind):
    pool = [b"", b"a", b"hello", "héllo".encode(), b"\xff\xfe", b"x\x00y", b"tail\x00",
            "日本".encode()]
    flat = [pool[i] for i in rng.integers(0, len(pool), size=int(np.prod(shape, dtype=int)))]
    if kind == "O":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    elif kind == "S":
        array = np.array(flat, dtype="S8") if flat else np.array([], dtype="S1")
    else:
        array = np.array([f.decode("utf-8", "replace") for f in flat], dtype=str) if flat \
            else np.array([], dtype="U1")
    return array.reshape(shape)


def _same_array(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got, want)


def _encode(array):
    proto = fill_tensor_proto(tensor_pb2.TensorProto(), array)
    expected = tf.make_tensor_proto(array)
    assert proto == expected
    assert proto.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    return proto


@pytest.mark.parametrize("dtype", NUMERIC, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_numeric_matches_tensorflow(dtype, shape, rng):
    array = _numeric(dtype, shape, rng)
    proto = _encode(array)
    _same_array(to_ndarray(proto), tf.make_ndarray(proto))
    _same_array(to_ndarray(proto), array)


@pytest.mark.parametrize("kind", ["O", "S", "U"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_strings_match_tensorflow(kind, shape, rng):
    array = _strings(shape, rng, kind)
    proto = _encode(array)
    decoded = to_ndarray(proto)
    _same_array(decoded, tf.make_ndarray(proto))
    assert decoded.dtype == object and decoded.shape == shape
    if kind == "O":
        _same_array(decoded, array)


def test_slices_of_a_batch_match_tensorflow(rng):
    """The batcher hands out row slices (views) of merged outputs."""
    merged = {"attention": rng.normal(size=(6, 4, 5)).astype(np.float32),
              "tokens": _strings((6, 4), rng, "O"), "lengths": np.arange(6, dtype=np.int32)}
    for start, stop in ((0, 1), (1, 4), (5, 6)):
        for value in merged.values():
            _encode(value[start:stop])
    _encode(merged["attention"][:, 1])  # not C-contiguous


def test_into_a_response_map_entry():
    from tensorflow_serving.apis import predict_pb2

    fast, slow = predict_pb2.PredictResponse(), predict_pb2.PredictResponse()
    outputs = {"text": np.array([b"ab"], dtype=object), "scores": np.array([-1.5], np.float32),
               "attention": np.zeros((1, 2, 3), np.float32)}
    for name, value in outputs.items():
        fill_tensor_proto(fast.outputs[name], value)
        slow.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    assert fast.SerializeToString(deterministic=True) == slow.SerializeToString(deterministic=True)


def _proto(dtype, dims, **fields):
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    proto.tensor_shape.SetInParent()
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    return proto


HAND_MADE = [  # what clients may send: short *_val fields repeat, empty ones are zeros
    _proto(types_pb2.DT_STRING, [3], string_val=[b"a"]),
    _proto(types_pb2.DT_STRING, [2, 2], string_val=[b"a", b"b", b"c"]),
    _proto(types_pb2.DT_STRING, [2], string_val=[]),
    _proto(types_pb2.DT_STRING, [0], string_val=[]),
    _proto(types_pb2.DT_STRING, [], string_val=[b"scalar"]),
    _proto(types_pb2.DT_FLOAT, [4], float_val=[1.5, 2.5]),
    _proto(types_pb2.DT_FLOAT, [2, 3], float_val=[]),
    _proto(types_pb2.DT_INT32, [3], int_val=[7]),
    _proto(types_pb2.DT_INT64, [2], int64_val=[1 << 40, -3]),
    _proto(types_pb2.DT_BOOL, [3], bool_val=[True]),
    _proto(types_pb2.DT_HALF, [2], half_val=[15360]),  # 1.0
    _proto(types_pb2.DT_UINT16, [2], int_val=[65535, 3]),
    _proto(types_pb2.DT_INT32, [2], tensor_content=np.array([5, -6], np.int32).tobytes()),
    _proto(types_pb2.DT_DOUBLE, [1, 2], tensor_content=np.array([[0.25, 8]]).tobytes()),
]


@pytest.mark.parametrize("proto", HAND_MADE, ids=lambda p: f"{types_pb2.DataType.Name(p.dtype)}"
                         f"{[d.size for d in p.tensor_shape.dim]}")
def test_hand_made_protos_decode_as_tensorflow(proto):
    _same_array(to_ndarray(proto), tf.make_ndarray(proto))


@pytest.mark.parametrize("proto", [
    _proto(types_pb2.DT_INT32, [3], tensor_content=b"\x00" * 8),  # 2 values for 3
    _proto(types_pb2.DT_FLOAT, [2], tensor_content=b"\x00" * 7),  # not a whole float
    _proto(types_pb2.DT_STRING, [1], tensor_content=b"abcd"),
    _proto(types_pb2.DT_STRING, [1], string_val=[b"a", b"b"]),  # more values than the shape
], ids=["short_content", "ragged_content", "string_content", "too_many"])
def test_malformed_protos_fail_like_tensorflow(proto):
    with pytest.raises(Exception) as theirs:
        tf.make_ndarray(proto)
    with pytest.raises(type(theirs.value)):
        to_ndarray(proto)


@pytest.mark.parametrize("value", [b"a\x00", "é", np.float32(1.5), np.int64(-3), True],
                         ids=["bytes", "str", "float32", "int64", "bool"])
def test_scalars_that_are_not_arrays(value):
    """A scalar string tensor's .numpy() is bytes, a scalar number's a numpy scalar."""
    assert fill_tensor_proto(tensor_pb2.TensorProto(), value) == tf.make_tensor_proto(value)


def test_other_dtypes_fall_back_to_tensorflow():
    array = np.array([1 + 2j, 3 - 1j], dtype=np.complex64)
    proto = _encode(array)
    _same_array(to_ndarray(proto), tf.make_ndarray(proto))
    swapped = np.array([1.0, 2.0], dtype=">f4")  # non-native byte order
    assert fill_tensor_proto(tensor_pb2.TensorProto(), swapped) == tf.make_tensor_proto(swapped)
