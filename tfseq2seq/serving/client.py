"""Clients for tfseq2seq models behind TensorFlow Serving (or ``tfseq2seq.serving``).

    with RestClient("http://127.0.0.1:8501", "g2p") as c:
        c.translate(["hello"])   # -> [{"text": ..., "tokens": [...], "token_ids": [...],
                                 #      "lengths": 5, "scores": -1.2, "attention": [[...]]}]
    with GrpcClient("127.0.0.1:8500", "g2p") as c:
        c.translate(["hello"], signature="beam_search", version=2)

``translate`` returns one dict per input keyed by the signature's output names:
``str`` for text, ``list[str]`` tokens, ``list[int]`` token_ids, ``int`` lengths,
``float`` scores, nested lists for attention.  With ``trim=True`` (default)
``tokens``, ``token_ids`` and the rows of ``attention`` are cut to the row's
``lengths`` value (the model pads them to the longest row of the batch);
attention *columns* are left as the server sent them.  Strings that are not
valid UTF-8 are decoded with replacement characters.

This module never imports TensorFlow itself.  ``GrpcClient`` needs the
``tensorflow_serving.apis`` protos, which import ``tensorflow.core`` protobufs
and thereby TensorFlow (several seconds); they are imported lazily, only when a
``GrpcClient`` is created.  ``RestClient`` needs only ``requests``.
"""

import base64
import struct

import requests
from requests.adapters import HTTPAdapter

__all__ = ["RestClient", "GrpcClient", "ServingError"]

_TRIMMED = ("tokens", "token_ids", "attention")


class ServingError(Exception):
    """A failed request: ``code`` is the HTTP status (REST; None when no response
    arrived) or a ``grpc.StatusCode`` (gRPC); ``message`` is the server's text."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _text(value):
    if isinstance(value, dict) and "b64" in value:
        value = base64.b64decode(value["b64"])
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _deep_text(value):
    if isinstance(value, list):
        return [_deep_text(v) for v in value]
    return _text(value)


def _normalize(row, trim):
    """One prediction (dict of output -> JSON-ish value) -> python values, trimmed."""
    out = {name: _deep_text(value) for name, value in row.items()}
    length = out.get("lengths")
    if trim and isinstance(length, int):
        for name in _TRIMMED:
            if isinstance(out.get(name), list):
                out[name] = out[name][:length]
    return out


class _Closing:
    """``with Client(...) as c:`` closes the client's connection on exit."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RestClient(_Closing):
    """TF Serving REST API client (``/v1/models/NAME...``)."""

    def __init__(self, base_url, model_name, timeout=10.0, trim=True, session=None):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout = timeout
        self.trim = trim
        if session is None:  # room for many threads sharing one client
            session = requests.Session()
            session.mount("http://", HTTPAdapter(pool_maxsize=32))
            session.mount("https://", HTTPAdapter(pool_maxsize=32))
        self._session = session

    def _url(self, version, suffix=""):
        from urllib.parse import quote

        url = f"{self.base_url}/v1/models/{quote(self.model_name, safe='')}"
        if version is not None:
            url += f"/versions/{int(version)}"
        return url + suffix

    def _call(self, method, url, body=None):
        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServingError(None, f"{type(exc).__name__}: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise ServingError(response.status_code, message or response.text)
        if payload is None:
            raise ServingError(response.status_code, "response is not JSON")
        return payload

    def translate(self, texts, signature="serving_default", version=None):
        texts = list(texts)
        if not texts:
            return []
        instances = []
        for text in texts:
            if isinstance(text, bytes):
                try:
                    text = text.decode("utf-8")
                except UnicodeDecodeError:
                    text = {"b64": base64.b64encode(text).decode("ascii")}
            instances.append(text)
        body = {"signature_name": signature, "instances": instances}
        predictions = self._call("POST", self._url(version, ":predict"), body)["predictions"]
        return [_normalize(p if isinstance(p, dict) else {"output": p}, self.trim)
                for p in predictions]

    def metadata(self, version=None):
        return self._call("GET", self._url(version, "/metadata"))

    def status(self, version=None):
        return self._call("GET", self._url(version))

    def close(self):
        self._session.close()


_NUMERIC = {  # DataType enum -> (repeated field, struct format of tensor_content)
    1: ("float_val", "f"), 2: ("double_val", "d"), 3: ("int_val", "i"),
    9: ("int64_val", "q"), 10: ("bool_val", "?"),
}
_DT_STRING = 7


def _tensor_rows(proto):
    """TensorProto -> nested python lists (no TensorFlow / numpy needed)."""
    shape = [d.size for d in proto.tensor_shape.dim]
    count = 1
    for size in shape:
        count *= size
    if proto.dtype == _DT_STRING:
        flat = list(proto.string_val)
    elif proto.dtype in _NUMERIC:
        field, fmt = _NUMERIC[proto.dtype]
        if proto.tensor_content:
            flat = list(struct.unpack(f"<{count}{fmt}", proto.tensor_content))
        else:
            flat = list(getattr(proto, field))
    else:
        raise ServingError(None, f"unsupported output dtype {proto.dtype}")
    if len(flat) == 1 and count != 1:  # TensorProto may store one value for a fill
        flat = flat * count
    return _nest(flat, shape)


def _nest(flat, shape):
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


class GrpcClient(_Closing):
    """TF Serving gRPC client (PredictionService + ModelService)."""

    def __init__(self, target, model_name, timeout=10.0, trim=True):
        # Lazy imports: grpc, and the tensorflow_serving protos (which pull in TensorFlow).
        import grpc
        from tensorflow_serving.apis import (
            get_model_metadata_pb2,
            get_model_status_pb2,
            model_service_pb2_grpc,
            predict_pb2,
            prediction_service_pb2_grpc,
        )

        self._grpc = grpc
        self._pb = {"predict": predict_pb2, "metadata": get_model_metadata_pb2,
                    "status": get_model_status_pb2}
        self.model_name = model_name
        self.timeout = timeout
        self.trim = trim
        self._channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", -1),
                             ("grpc.max_send_message_length", -1)])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _spec(self, spec, version, signature=None):
        spec.name = self.model_name
        if version is not None:
            spec.version.value = int(version)
        if signature is not None:
            spec.signature_name = signature

    def _rpc(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except self._grpc.RpcError as exc:
            raise ServingError(exc.code(), exc.details()) from None

    def translate(self, texts, signature="serving_default", version=None):
        texts = [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts]
        if not texts:
            return []
        request = self._pb["predict"].PredictRequest()
        self._spec(request.model_spec, version, signature)
        tensor = request.inputs["text"]
        tensor.dtype = _DT_STRING
        tensor.tensor_shape.dim.add(size=len(texts))
        tensor.string_val.extend(texts)
        response = self._rpc(self._predict.Predict, request)
        columns = {name: _tensor_rows(proto) for name, proto in response.outputs.items()}
        return [_normalize({name: col[i] for name, col in columns.items()}, self.trim)
                for i in range(len(texts))]

    def metadata(self, version=None):
        """Same shape as the REST metadata: {"model_spec", "metadata": {"signature_def"}}."""
        from google.protobuf import json_format

        pb = self._pb["metadata"]
        request = pb.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, version)
        response = self._rpc(self._predict.GetModelMetadata, request)
        sig_map = pb.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)
        opts = dict(always_print_fields_with_no_presence=True, preserving_proto_field_name=True)
        return {"model_spec": json_format.MessageToDict(response.model_spec, **opts),
                "metadata": {"signature_def": json_format.MessageToDict(sig_map, **opts)}}

    def status(self, version=None):
        """Same shape as the REST status: {"model_version_status": [...]}."""
        from google.protobuf import json_format

        request = self._pb["status"].GetModelStatusRequest()
        self._spec(request.model_spec, version)
        response = self._rpc(self._models.GetModelStatus, request)
        return json_format.MessageToDict(response, always_print_fields_with_no_presence=True,
                                         preserving_proto_field_name=True)

    def close(self):
        self._channel.close()
