"""JSON <-> tensor conversion of TF Serving's REST API (predict requests and responses).

Follows TF Serving's util/json_tensor.cc: the row ("instances") and columnar
("inputs") request formats, ``{"b64": ...}`` binary strings, and the
``predictions`` / ``outputs`` response formats, with TF Serving's error
messages.  Output strings that are not valid UTF-8 are written as
``{"b64": ...}`` (TF Serving does that only for outputs named ``*_bytes``,
which we honour too, and writes other strings raw).
"""

import base64
import binascii
import json

import numpy as np
import tensorflow as tf

from tfseq2seq.serving.float_text import shortest_float32
from tfseq2seq.serving.models import DEFAULT_SIGNATURE
from tfseq2seq.serving.status import invalid_argument

MAX_RANK = 32  # deeper JSON lists are rejected (TF allows 254, numpy 64)

def _debug(value):
    return json.dumps(value, ensure_ascii=False)[:256]


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
            except UnicodeEncodeError:
                raise invalid_argument("JSON Value: string is not valid Unicode") from None
        if isinstance(value, dict):
            if not _is_b64(value):
                raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument("Unable to base64 decode") from None
    elif dtype.is_bool:
        if isinstance(value, bool):
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if dtype.is_floating:
            return float(value)
        if isinstance(value, int) and dtype.min <= value <= dtype.max:
            return value
    raise invalid_argument(f"JSON Value: {_debug(value)} Type: {_json_type(value)} "
                           f"is not of expected type: {dtype.name}")


def json_to_array(value, dtype):
    """A dense JSON (nested lists of leaves) -> numpy array, checking ragged/type errors."""
    shape, probe = [], value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    if len(shape) > MAX_RANK:  # before the recursive walk below, and numpy's 64-dim limit
        raise invalid_argument(f"JSON Value: nested {len(shape)} levels deep; tensors of rank "
                               f"over {MAX_RANK} are not accepted")
    flat = []

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
    np_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    array = np.empty(len(flat), dtype=np_dtype)
    array[:] = flat
    return array.reshape(shape)


def _from_instances(doc, instances, infos):
    """Row format: "instances" list (json_tensor.cc FillTensorMapFromInstancesList)."""
    if not isinstance(instances, list):
        raise invalid_argument(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument(f"JSON Value: {_debug(doc)} No values in 'instances' array")
    as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not as_objects and len(infos) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as "
                               "multiple input tensors required as per tensorinfo_map")
    columns = {name: [] for name in infos}
    for i, elem in enumerate(instances):
        is_object = isinstance(elem, dict) and not _is_b64(elem)
        if as_objects != is_object:
            got = "list" if as_objects else "object"
            want = "object" if as_objects else "value/list"
            raise invalid_argument(f"Expecting {want} but got {got} at item {i} of input list")
        if not as_objects:
            columns[next(iter(infos))].append(elem)
            continue
        for name, value in elem.items():
            if name not in infos:
                raise invalid_argument(f"Failed to process element: {i} key: {name} of 'instances' "
                                       f"list. Error: JSON object: does not have named input: {name}")
            columns[name].append(value)
        if set(elem) != set(infos):
            raise invalid_argument(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                   f"{_debug(elem)} keys must be equal to: {','.join(sorted(infos))}")
    return {name: json_to_array(col, infos[name][0]) for name, col in columns.items()}


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
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise invalid_argument(f"JSON Parse error: {exc}") from None
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
    return array.tolist()


def format_outputs(outputs, fmt):
    names = sorted(outputs)
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
