"""TF Serving's gRPC API: ``PredictionService.{Predict,GetModelMetadata}`` and
``ModelService.GetModelStatus`` (other methods answer UNIMPLEMENTED).

Messages and status codes follow tensorflow_serving/servables/tensorflow/
predict_util.cc, get_model_metadata_impl.cc, model_servers/
get_model_status_impl.cc, server_core.cc and core/basic_manager.cc: unknown
model/version -> NOT_FOUND ("Servable not found for request: ..."), unknown
signature -> FAILED_PRECONDITION ('Serving signature key "X" not found.'),
bad inputs -> INVALID_ARGUMENT.  Messages over ``max_request_bytes`` are
refused by gRPC itself with RESOURCE_EXHAUSTED.
"""

import logging
from concurrent import futures

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfseq2seq.serving.models import DEFAULT_SIGNATURE, check_shape
from tfseq2seq.serving.status import StatusError, invalid_argument, not_found
from tfseq2seq.serving.tensor_proto import fill_tensor_proto, to_ndarray

log = logging.getLogger(__name__)

SIGNATURE_DEF = "signature_def"
MAX_TENSOR_ELEMENTS = 1 << 24  # per input tensor, checked before it is materialized


def model_spec_proto(name, version, signature_name=None, spec=None):
    """A ModelSpec, or ``spec`` (e.g. ``response.model_spec``) filled in place."""
    spec = model_pb2.ModelSpec() if spec is None else spec
    spec.name = name
    spec.version.value = version
    if signature_name is not None:
        spec.signature_name = signature_name
    return spec


def status_proto(manager, name, version=None):
    """GetModelStatusResponse for ``name`` (all versions, newest first, or one)."""
    if name != manager.name:
        if version is not None:
            raise not_found(f"Could not find version {version} of model {name}")
        raise not_found(f"Could not find any versions of model {name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    for ver, state, code, message in manager.status(version):
        entry = response.model_version_status.add(version=ver)
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
        entry.status.error_code = grpc.StatusCode[code].value[0]  # same numbering
        entry.status.error_message = message
    return response


def _spec_version(spec):
    """(name, int version or None) of a request's ModelSpec."""
    if not spec.name:
        raise invalid_argument("ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    if choice == "version_label":
        raise invalid_argument("ModelSpec has 'version_label' set, but it is not currently "
                               "allowed by the server.")
    return spec.name, (spec.version.value if choice == "version" else None)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager, runner):
        self.manager = manager
        self.runner = runner

    def _servable(self, spec):
        return self.manager.lookup(*_spec_version(spec))

    def Predict(self, request, context):
        return _guard(context, self._predict, request)

    def _predict(self, request):
        servable = self._servable(request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature not in servable.signature_defs:
            raise StatusError("FAILED_PRECONDITION", f'Serving signature key "{signature}" not found.')
        expected = servable.inputs(signature)  # {name: (dtype, shape)}; unknown names: validate
        arrays = {k: _to_array(k, v, self.runner.max_batch_rows, expected.get(k, (None, None))[1])
                  for k, v in request.inputs.items()}
        outputs = self.runner(servable, signature, arrays)
        wanted = list(request.output_filter) or sorted(outputs)
        response = predict_pb2.PredictResponse()
        for alias in wanted:
            if alias not in outputs:
                raise invalid_argument(f"output tensor alias not found in signature: {alias} "
                                       f"Outputs expected to be in the set {{{','.join(sorted(outputs))}}}.")
            if alias in response.outputs:
                raise invalid_argument(f"duplicate output tensor alias: {alias}")
            fill_tensor_proto(response.outputs[alias], outputs[alias])
        model_spec_proto(self.manager.name, servable.version, signature, response.model_spec)
        return response

    def GetModelMetadata(self, request, context):
        return _guard(context, self._metadata, request)

    def _metadata(self, request):
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable = self._servable(request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.CopyFrom(model_spec_proto(self.manager.name, servable.version))
        sig_map = get_model_metadata_pb2.SignatureDefMap(signature_def=servable.signature_defs)
        response.metadata[SIGNATURE_DEF].Pack(sig_map)
        return response


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        def status(req):
            if not req.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            name, version = _spec_version(req.model_spec)
            return status_proto(self.manager, name, version)

        return _guard(context, status, request)


def _to_array(name, proto, max_rows=None, shape=None):
    """TensorProto -> ndarray, refusing shapes too big to materialize, or incompatible
    with the signature's ``shape`` (a ``tf.TensorShape``), *before* doing so.

    A TensorProto may hold fewer values than its shape (the last one repeats), so a
    few bytes could otherwise make ``to_ndarray`` allocate gigabytes.
    """
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(size < 0 for size in dims):
        raise invalid_argument(f"Cannot parse input tensor {name}: negative dimension in {dims}")
    if shape is not None and not proto.tensor_shape.unknown_rank:
        check_shape(name, dims, shape)
    if max_rows is not None and dims and dims[0] > max_rows:
        raise invalid_argument(f"Request has {dims[0]} rows, more than the server's "
                               f"max_batch_rows={max_rows}")
    elements = 1
    for size in dims:
        elements *= size
    if elements > MAX_TENSOR_ELEMENTS:
        raise invalid_argument(f"Input tensor {name} has {elements} elements, more than "
                               f"the server's limit of {MAX_TENSOR_ELEMENTS}")
    try:
        return to_ndarray(proto)
    except Exception as exc:  # malformed TensorProto, unsupported dtype
        raise invalid_argument(f"Cannot parse input tensor {name}: "
                               f"{type(exc).__name__}: {exc}") from None


def _guard(context, fn, request):
    """Run a handler; StatusError -> that gRPC status, anything else -> INTERNAL."""
    try:
        return fn(request)
    except StatusError as exc:
        context.abort(grpc.StatusCode[exc.code], exc.message)
    except Exception as exc:
        log.exception("gRPC request failed")
        context.abort(grpc.StatusCode.INTERNAL, f"Internal: {exc}")


def make_grpc_server(manager, runner, host, port, max_request_bytes=None, max_workers=16):
    """Create and start a gRPC server; returns (server, bound port)."""
    options = [("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)]
    if max_request_bytes is not None:
        options.append(("grpc.max_receive_message_length", int(max_request_bytes)))
    else:
        options.append(("grpc.max_receive_message_length", -1))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers, thread_name_prefix="grpc"),
                         options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, runner), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not bind gRPC to {host}:{port}")
    server.start()
    return server, bound
