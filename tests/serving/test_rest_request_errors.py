"""The error messages of bad predict request bodies, word for word as TF Serving's.

The error cases of TF Serving's tensorflow_serving/util/json_tensor_test.cc
(SingleUnnamedTensorErrors, MultipleNamedTensorErrors) restated for
``parse_predict_body`` (no server: a fake servable supplies input names and dtypes): which
element or key failed and why (size, shape, type, missing named input, list vs object),
JSON syntax errors reported as rapidjson reports them (with the offset), and numbers too
big for a double.  Each is an INVALID_ARGUMENT.
"""

import tensorflow as tf
from rest_helpers import parse_error


def test_numbers_too_big_for_a_double():  # rapidjson: "Number too big to be stored in double."
    for digits in (400, 5000):
        message = parse_error('{"instances": [' + "9" * digits + "]}", x=tf.float32)
        assert "Number too big to be stored in double." in message, digits


def test_single_input_errors():  # SingleUnnamedTensorErrors
    assert "document is empty" in parse_error("")
    assert "must be a string value" in parse_error(
        '{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}')
    assert "Not formatted correctly" in parse_error(
        '{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}')
    assert parse_error('{"instances": [[1,2],[3,4],[5,6,7]]}') == (
        "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 2 but got: 3")
    assert parse_error('{"instances": [[1,2],[3,4],[[5,6]]]}') == (
        "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting shape [2] but got: [1,2]")
    assert parse_error('{"instances": [1, [1]]}') == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting shape [] but got: [1]")
    assert parse_error('{"instances": [[1,2],["a", "b"]]}') == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "a" Type: String is not of expected type: int32')
    # Within one element the dense checks apply, wrapped the same way.
    assert parse_error('{"instances": [[[1,2],[3]]]}') == (
        "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2")


def test_multiple_input_errors():  # MultipleNamedTensorErrors
    dtypes = dict(int_tensor=tf.int32, str_tensor=tf.string)
    first = '{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}'
    message = parse_error(f'{{"instances": [{first}, {{"int_tensor": [[[7,8],[9,0],[1,2]]], '
                          '"str_tensor": ["baz", "bat"]}]}', **dtypes)
    assert message == ("Failed to process element: 1 key: int_tensor of 'instances' list. Error: "
                       "INVALID_ARGUMENT: Expecting shape [3,2] but got: [1,3,2]")
    message = parse_error('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": '
                          f'["foo", "bar"]}}, {first}]}}', **dtypes)
    assert message.endswith("INVALID_ARGUMENT: Expecting tensor size: 8 but got: 6")
    message = parse_error(f'{{"instances": [{first}, [1, 20, 30], {first}]}}', **dtypes)
    assert message == "Expecting object but got list at item 1 of input list"
    message = parse_error('{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}',
                          str_tensor=tf.string)
    assert message == "Expecting value/list but got object at item 1 of input list"
    message = parse_error('{"instances": [{"nope": 1}]}', **dtypes)
    assert message == ("Failed to process element: 0 key: nope of 'instances' list. Error: "
                       "INVALID_ARGUMENT: JSON object: does not have named input: nope")


def test_parse_errors_read_as_rapidjson_reports_them():
    cases = {"instances = [1, 2]": "Invalid value. at offset: 0",
             "   ": "The document is empty. at offset: 3",
             '{"instances": [1, 2': "Missing a comma or ']' after an array element.",
             '{"instances": [1] "x": 1}': "Missing a comma or '}' after an object member.",
             '{instances: [1]}': "Missing a name for object member.",
             '{"instances" [1]}': "Missing a colon after a name of object member.",
             '{"instances": ["abc': "Missing a closing quotation mark in string.",
             '{"instances": ["\\q"]}': "Invalid escape character in string.",
             '{"instances": ["\\u12G4"]}': "Incorrect hex digit after \\u escape in string.",
             '{"instances": ["\\ud800"]}': "The surrogate pair in string is invalid. at offset: 16",
             '{"instances": ["\\ud800\\u0041"]}': "The surrogate pair in string is invalid."}
    for body, want in cases.items():
        message = parse_error(body)
        assert message.startswith("JSON Parse error: ") and want in message, (body, message)
