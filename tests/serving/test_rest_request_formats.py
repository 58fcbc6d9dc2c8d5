"""Predict request bodies TF Serving accepts, read as TF Serving reads them.

The accepting cases of TF Serving's tensorflow_serving/util/json_tensor_test.cc restated
for ``parse_predict_body`` (no server: a fake servable supplies input names and dtypes):
the row (``instances``) and columnar (``inputs``) formats, one or several named tensors,
integers and decimals for float/double inputs (precision loss, overflow, underflow, NaN
and Infinity), base64 ``{"b64": ...}`` values (with or without padding), and rapidjson's
leniencies: bytes after the document ignored, the first of repeated keys kept, a lone
low surrogate kept as its three bytes.
"""

import json

import numpy as np
import tensorflow as tf
from rest_helpers import parse, parse_error


# ---------------------------------------------------------------- json_tensor_test.cc: requests
def test_row_format_int_matrix_and_signature_name():  # SingleUnnamedTensor(WithSignature)
    signature, arrays, fmt = parse('{"instances": [[1,2],[3,4],[5,6]]}')
    assert (signature, fmt) == ("serving_default", "row")
    assert arrays["default"].dtype == np.int32 and arrays["default"].tolist() == [[1, 2], [3, 4], [5, 6]]
    signature, arrays, _ = parse('{"signature_name": "predict_images", "instances": [[1,2]]}')
    assert signature == "predict_images" and arrays["default"].shape == (1, 2)


def test_mixed_ints_and_decimals_for_float_and_double():  # MixedInputFor{Float,Double}Tensor
    _, arrays, _ = parse('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', x=tf.float32)
    assert arrays["x"].dtype == np.float32
    assert arrays["x"].tolist() == np.array([1, 2, 3, 4, 5.003, 0.007, 0], np.float32).tolist()
    _, arrays, _ = parse('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', x=tf.float64)
    assert arrays["x"].dtype == np.float64 and arrays["x"].tolist() == [1, 2, 3, 4, 0.662, 0, 0]


def test_float_precision_loss_overflow_and_underflow():  # FloatTensor{WithPrecisionLoss,...}
    a = parse('{"instances": [1435774380]}', x=tf.float32)[1]["x"]
    b = parse('{"instances": [1435774380.0]}', x=tf.float32)[1]["x"]
    assert a.tolist() == b.tolist() == [np.float32(1435774380).item()]
    big, tiny = float(np.finfo(np.float64).max), float(np.finfo(np.float64).tiny)
    values = parse(f'{{"instances": [{big!r}, {-big!r}, {tiny!r}, {-tiny!r}]}}', x=tf.float32)[1]["x"]
    assert values[0] == np.inf and values[1] == -np.inf
    assert values[2] == 0 and values[3] == 0 and np.signbit(values[3])


def test_bytes_after_the_document_are_ignored():  # TensorFromNonNullTerminatedBuffer
    _, arrays, _ = parse('{"instances": [[1,2],[3,4],[5,6]]}X')
    assert arrays["default"].shape == (3, 2)
    for tail in ("}", " trailing words", "\n{\"instances\": [[9]]}", "\x00"):
        assert parse('{"instances": [[7]]}' + tail)[1]["default"].tolist() == [[7]]


def test_base64_scalars_lists_and_named():  # SingleUnnamedTensorBase64*, SingleNamedTensorBase64
    hello, world = '{"b64": "aGVsbG8="}', '{ "b64": "d29ybGQ=" }'
    cases = {f'{{"instances": [{hello}, {world}]}}': (2,),
             f'{{"instances": [[{hello}], [{world}]]}}': (2, 1),
             f'{{"instances": [{{"default": [[{hello}], [{world}]]}}]}}': (1, 2, 1)}
    for body, shape in cases.items():
        array = parse(body, default=tf.string)[1]["default"]
        assert array.shape == shape and array.ravel().tolist() == [b"hello", b"world"]


def test_base64_without_padding_or_with_whitespace_is_accepted():  # absl::Base64Unescape
    for text, want in [("aGk", b"hi"), ("aGk=", b"hi"), ("aA", b"h"), ("aA==", b"h"),
                       ("aGVs bG8\n", b"hello"), ("aGk.", b"hi"), ("", b"")]:
        body = json.dumps({"instances": [{"b64": text}]})
        assert parse(body, t=tf.string)[1]["t"].tolist() == [want], text
    for text in ["aGk==", "aA=", "a", "aGk=x", "a=Gk", "aGk!", "aGVsbG8=aGk="]:
        body = json.dumps({"instances": [{"b64": text}]})
        assert parse_error(body, t=tf.string).endswith("Error: INVALID_ARGUMENT: Unable to base64 "
                                                      "decode"), text


def test_multiple_named_tensors_with_nan_and_infinity():  # MultipleNamedTensor
    body = '''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"],
         "float_tensor": [1.0, NaN], "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"],
         "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}]}'''
    _, arrays, fmt = parse(body, int_tensor=tf.int32, str_tensor=tf.string,
                           float_tensor=tf.float32, dbl_tensor=tf.float64)
    assert fmt == "row" and arrays["int_tensor"].shape == (2, 3, 2)
    assert arrays["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]
    floats = arrays["float_tensor"]
    assert floats.shape == (2, 2) and np.isnan(floats[0, 1]) and floats[1, 1] == np.inf
    assert arrays["dbl_tensor"].shape == (2, 1) and np.isnan(arrays["dbl_tensor"][0, 0])


def test_columnar_format():  # SingleUnnamedTensorColumnarFormat, MultipleNamed...
    for body in ('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', '{"inputs": [[[1,2],[3,4],[5,6]]]}'):
        _, arrays, fmt = parse(body, int_tensor=tf.int32)
        assert fmt == "columnar" and arrays["int_tensor"].shape == (1, 3, 2)
    body = '''{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"],
                          "bin_tensor": {"b64": "aGVsbG8="}, "ignored": 1}}'''
    _, arrays, _ = parse(body, int_tensor=tf.int32, str_tensor=tf.string, bin_tensor=tf.string)
    assert arrays["str_tensor"].tolist() == [b"foo", b"bar"]
    assert arrays["bin_tensor"].shape == () and arrays["bin_tensor"].item() == b"hello"


def test_repeated_keys_keep_the_first_value():  # rapidjson FindMember
    body = '{"instances": [[1]], "signature_name": "predict_images", "instances": "oops", ' \
           '"signature_name": 7}'
    signature, arrays, _ = parse(body)
    assert signature == "predict_images" and arrays["default"].tolist() == [[1]]
    _, arrays, _ = parse('{"inputs": {"t": ["a"], "t": ["b", "c"]}}', t=tf.string)
    assert arrays["t"].tolist() == [b"a"]


def test_lone_low_surrogate_is_kept_as_its_three_bytes():  # rapidjson 1.1.0 writes it so
    _, arrays, _ = parse('{"instances": ["a\\udc00", "\\ud83d\\ude00", "\\\\ud800"]}', t=tf.string)
    assert arrays["t"].tolist() == [b"a\xed\xb0\x80", "\U0001f600".encode(), b"\\ud800"]
