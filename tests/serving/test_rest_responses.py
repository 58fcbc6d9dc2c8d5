"""Predict response JSON as TF Serving writes it.

The response cases of TF Serving's tensorflow_serving/util/json_tensor_test.cc restated for
``format_outputs`` (no server): one or several output tensors in the row
(``predictions``) and columnar (``outputs``) formats, byte strings as ``{"b64": ...}``,
NaN and infinities, zero-sized batches, and the INVALID_ARGUMENT errors for outputs that
cannot be written (no tensors, unsupported dtype, no batch dimension, inconsistent
batch sizes).
"""

import json

import numpy as np
import pytest

from tfseq2seq.serving.json_tensor import format_outputs
from tfseq2seq.serving.status import StatusError

INTS = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)


def test_response_single_and_multiple_tensors():  # FromJson{Single,SingleScalar,MultipleNamed}Tensor(s)
    assert format_outputs({"int_tensor": INTS}, "row") == {"predictions": INTS.tolist()}
    assert format_outputs({"int_tensor": INTS}, "columnar") == {"outputs": INTS.tolist()}
    assert format_outputs({"t": np.arange(1, 6)}, "row") == {"predictions": [1, 2, 3, 4, 5]}
    outputs = {"int_tensor": INTS, "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], object),
               "float_tensor": np.array([[1.0], [2.0]], np.float32),
               "double_scalar_tensor": np.array([8.0, 9.0]),
               "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], object)}
    rows = format_outputs(outputs, "row")["predictions"]
    assert rows[1] == {"double_scalar_tensor": 9.0, "float_tensor": [2.0], "int_tensor": INTS[1].tolist(),
                       "str_tensor": ["baz", "bat"],
                       "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]}
    columns = format_outputs(outputs, "columnar")["outputs"]
    assert columns["str_tensor_bytes"][0] == [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]
    assert columns["double_scalar_tensor"] == [8.0, 9.0]


def test_response_non_finite_floats_and_zero_batches():  # ...NonFinite, ...ZeroBatchTensor(s)
    values = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert json.dumps(format_outputs({"f": values}, "row")) == \
        '{"predictions": [[NaN, Infinity], [3.0, -Infinity]]}'
    assert format_outputs({"i": np.zeros((0, 2), np.int32)}, "row") == {"predictions": []}
    assert format_outputs({"s": np.zeros((0, 1, 2), object), "f": np.zeros((0, 3, 4), np.float32)},
                          "row") == {"predictions": []}


def test_response_errors():  # FromJsonSingleTensorErrors, FromJsonMultipleNamedTensorsErrors
    cases = [({}, "empty tensor map"), ({"tensor": np.array([1 + 2j, 3j], np.complex64)},
                                         "tensor type: complex64"),
             ({"tensor": np.array(1, np.int32)}, "no shape information"),
             ({"int_tensor": np.zeros((2, 3), np.int32), "str_tensor": np.zeros((1, 3), object)},
              "inconsistent batch size"),
             ({"int_tensor": np.zeros((0, 2), np.int32), "str_tensor": np.zeros((1, 2), object)},
              "inconsistent batch size")]
    for outputs, message in cases:
        with pytest.raises(StatusError) as err:
            format_outputs(outputs, "row")
        assert err.value.code == "INVALID_ARGUMENT" and message in err.value.message
