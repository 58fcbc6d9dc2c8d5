"""JSON <-> tensor conversion of TF Serving's REST API (predict requests and responses).

Follows TF Serving's util/json_tensor.cc: the row ("instances") and columnar ("inputs")
request formats, ``{"b64": ...}`` binary strings (absl's base64: padding optional,
whitespace skipped), the ``predictions`` / ``outputs`` response formats and TF Serving's
error messages; each "instances" element is converted alone and must match the first
one's size, then shape (errors wrapped in "Failed to process element: N ...").  The
document itself is read by :mod:`tfseq2seq.serving.json_parse`.  Output strings that are
not valid UTF-8 are written as ``{"b64": ...}`` (TF Serving does that only for outputs
named ``*_bytes``, which we honour too, and writes other strings raw).
"""

import base64
import binascii
import json

import numpy as np
import tensorflow as tf

from tfseq2seq.serving.float_text import shortest_float32
from tfseq2seq.serving.json_parse import b64_decode, parse_document
from tfseq2seq.serving.models import DEFAULT_SIGNATURE
from tfseq2seq.serving.status import StatusError, invalid_argument

MAX_RANK = 32  # deeper JSON lists are rejected (TF allows 254, numpy 64)


def _debug(value):
    try:
        return json.dumps(value, ensure_ascii=False)[:256]
    except (ValueError, RecursionError):  # too deep to write out again
        return f"<{_json_type(value)}>"


def _json_type(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    return {str: "String", dict: "Object", list: "Array", type(None): "Null"}.get(type(value), "Number")


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _scalar(value, dtype):
    """One JSON leaf -> python value of ``dtype`` (json_tensor.cc AddValueToTensor)."""
    if dtype == tf.string:
        if isinstance(value, str):
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError:  # a lone low surrogate: its 3 bytes, as rapidjson
                return value.encode("utf-8", "surrogatepass")
        if isinstance(value, dict):
            if not _is_b64(value):
                raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
            try:
                decoded = b64_decode(value["b64"])
            except (binascii.Error, ValueError):
                decoded = None
            if decoded is None:
                raise invalid_argument("Unable to base64 decode")
            return decoded
    elif dtype.is_bool:
        if isinstance(value, bool):
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if dtype.is_floating:
            try:
                return float(value)
            except OverflowError:  # an integer literal beyond the double range
                raise invalid_argument("JSON Parse error: Number too big to be stored in "
                                       "double.") from None
        if isinstance(value, int) and dtype.min <= value <= dtype.max:
            return value
    raise invalid_argument(f"JSON Value: {_debug(value)} Type: {_json_type(value)} "
                           f"is not of expected type: {dtype.name}")


def _dense_shape(value):
    """The shape the first elements of nested lists give (json_tensor.cc GetDenseTensorShape)."""
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        if len(shape) > MAX_RANK:  # before the recursive walk, and numpy's 64-dim limit
            raise invalid_argument(f"JSON Value: nested more than {MAX_RANK} levels deep; "
                                   f"tensors of rank over {MAX_RANK} are not accepted")
        if not probe:
            break
        probe = probe[0]
    return shape


def _fill(value, shape, dtype, flat):
    """Append the leaves of ``value`` to ``flat``, checking it is dense with ``shape``
    (json_tensor.cc FillTensorProto)."""

    def fill(val, level):
        if not isinstance(val, list):
            if level != len(shape):
                raise invalid_argument(f"JSON Value: {_debug(val)} found at incorrect level: "
                                       f"{level + 1} in the JSON DOM. Expected at level: {len(shape)}")
            flat.append(_scalar(val, dtype))
        elif level >= len(shape):
            raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        elif len(val) != shape[level]:
            raise invalid_argument(f"Encountered list at unexpected size: {len(val)} at level: "
                                   f"{level} expected size: {shape[level]}")
        else:
            for item in val:
                fill(item, level + 1)

    fill(value, 0)


def _array(flat, shape, dtype):
    array = np.empty(len(flat), dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    with np.errstate(over="ignore"):  # beyond float32's range: +-inf, as TF Serving's cast
        array[:] = flat
    return array.reshape(shape)


def json_to_array(value, dtype):
    """A dense JSON (nested lists of leaves) -> numpy array, checking ragged/type errors."""
    shape, flat = _dense_shape(value), []
    _fill(value, shape, dtype, flat)
    return _array(flat, shape, dtype)


def _shape_text(shape):
    return "[" + ",".join(str(size) for size in shape) + "]"


class _Rows:
    """The tensors of the "instances" rows, one input at a time (json_tensor.cc
    AddInstanceItem): every row must have the first row's size and shape."""

    def __init__(self, infos):
        self.infos = infos
        self.values = {name: [] for name in infos}
        self.shapes = {}  # name -> (shape, size) of its first row

    def add(self, name, value):
        if name not in self.infos:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        flat = self.values[name]
        if isinstance(value, list):
            shape, before = _dense_shape(value), len(flat)
            _fill(value, shape, self.infos[name][0], flat)
            size = len(flat) - before
        else:  # a scalar: shape [], one value
            shape, size = [], 1
            flat.append(_scalar(value, self.infos[name][0]))
        first = self.shapes.setdefault(name, (shape, size))
        if first[1] != size:
            raise invalid_argument(f"Expecting tensor size: {first[1]} but got: {size}")
        if first[0] != shape:
            raise invalid_argument(f"Expecting shape {_shape_text(first[0])} but got: "
                                   f"{_shape_text(shape)}")

    def arrays(self, rows):
        return {name: _array(self.values[name], [rows] + shape, self.infos[name][0])
                for name, (shape, _size) in self.shapes.items()}


def _element_error(index, exc, name=None):
    key = "" if name is None else f" key: {name}"
    return invalid_argument(f"Failed to process element: {index}{key} of 'instances' list. "
                            f"Error: {exc}")


def _from_instances(doc, instances, infos):
    """Row format: "instances" list (json_tensor.cc FillTensorMapFromInstancesList)."""
    if not isinstance(instances, list):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument(f"JSON Value: {_debug(doc)} No values in 'instances' array")
    if not isinstance(instances[0], dict) and len(infos) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as "
                               "multiple input tensors required as per tensorinfo_map")
    as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    first = next(iter(infos))
    if not as_objects and not any(isinstance(e, (list, dict)) and not _is_b64(e) for e in instances):
        dtype, flat = infos[first][0], []  # the usual case: one scalar per row
        for i, elem in enumerate(instances):
            try:
                flat.append(_scalar(elem, dtype))
            except StatusError as exc:
                raise _element_error(i, exc) from None
        return {first: _array(flat, [len(flat)], dtype)}
    rows = _Rows(infos)
    for i, elem in enumerate(instances):
        is_object = isinstance(elem, dict) and not _is_b64(elem)
        if as_objects != is_object:
            got = "list" if as_objects else "object"
            want = "object" if as_objects else "value/list"
            raise invalid_argument(f"Expecting {want} but got {got} at item {i} of input list")
        if not as_objects:
            try:
                rows.add(first, elem)
            except StatusError as exc:
                raise _element_error(i, exc) from None
            continue
        for name, value in elem.items():
            try:
                rows.add(name, value)
            except StatusError as exc:
                raise _element_error(i, exc, name) from None
        if set(elem) != set(infos):
            raise invalid_argument(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                   f"{_debug(elem)} keys must be equal to: {','.join(sorted(infos))}")
    return rows.arrays(len(instances))


def _from_inputs(inputs, infos):
    """Columnar format: "inputs" value or object (json_tensor.cc FillTensorMapFromInputsMap)."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(infos) > 1:
            raise invalid_argument("inputs is a plain value/list, but expecting an object as "
                                   "multiple input tensors required as per tensorinfo_map")
        name = next(iter(infos))
        return {name: json_to_array(inputs, infos[name][0])}
    arrays = {}
    for name, (dtype, _shape) in infos.items():
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_to_array(inputs[name], dtype)
    return arrays


def parse_predict_body(body, servable):
    """-> (signature name, {input: ndarray}, "row" | "columnar")."""
    doc = parse_document(body)
    if not isinstance(doc, dict):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid_argument(f"JSON Value: {_debug(doc)} not formatted correctly. "
                               "'signature_name' key must be a string value.")
    signature = signature or DEFAULT_SIGNATURE
    if signature not in servable.signature_defs:
        raise invalid_argument(f'Serving signature name: "{signature}" not found in signature def')
    infos = servable.inputs(signature)
    if not infos:
        raise invalid_argument(f"Failed to get input map for signature: {signature}")
    if "instances" in doc and "inputs" in doc:
        raise invalid_argument(f"JSON Value: {_debug(doc)} Not formatted correctly expecting only "
                               "one of 'inputs' or 'instances' keys to exist ")
    if "instances" in doc:
        return signature, _from_instances(doc, doc["instances"], infos), "row"
    if "inputs" in doc:
        return signature, _from_inputs(doc["inputs"], infos), "columnar"
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _to_json_values(name, array):
    """ndarray -> nested python lists as TF Serving writes them."""
    if array.dtype.kind in "OSU":
        as_b64 = name.endswith("_bytes")

        def convert(item):
            data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
            if not as_b64:
                try:
                    return data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(data).decode("ascii")}

        return np.frompyfunc(convert, 1, 1)(array).tolist() if array.ndim else convert(array.item())
    if array.dtype == np.float32:  # shortest float32 repr: 0.2, not 0.20000000298...
        return shortest_float32(array).tolist()
    if array.dtype.kind not in "biuf":  # complex, bfloat16, ...: no JSON numbers for them
        raise invalid_argument(f"Failed to write JSON value for tensor type: {array.dtype}")
    return array.tolist()


def format_outputs(outputs, fmt):
    names = sorted(outputs)
    if not names:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if fmt == "columnar":
        values = {n: _to_json_values(n, outputs[n]) for n in names}
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    batch = None
    for name in names:
        if outputs[name].ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        size = outputs[name].shape[0]
        if batch is not None and size != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: "
                                   f"{size} expecting: {batch}")
        batch = size
    values = {n: _to_json_values(n, outputs[n]) for n in names}
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [{n: values[n][i] for n in names} for i in range(batch or 0)]}
