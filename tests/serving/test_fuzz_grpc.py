"""Bad gRPC requests always get an answer: property-based fuzzing of the server process.

Hypothesis drives the gRPC methods (random PredictRequests, TensorProtos of any dtype and
shape, metadata and status requests, raw and mutated bytes) against one ``python -m
tfseq2seq.serving.app`` process (conftest.py's ``fuzz_server``, shared with
test_fuzz_rest.py).  Every call must end OK, or INVALID_ARGUMENT / NOT_FOUND /
FAILED_PRECONDITION (TF Serving's code for an unknown signature key); bytes that are not
a protobuf of the method's request at all get gRPC's own INTERNAL "Exception
deserializing request!" (the handler never sees them; C++ gRPC, hence TF Serving,
answers INTERNAL too); and the process must be alive and answering afterwards.  The run
is deterministic (``derandomize``) and bounded: a fixed number of examples, and a time
budget after which the remaining examples are skipped.
"""

import grpc
import pytest
from fuzz_helpers import MAX_ROWS, SETTINGS, Budget, assert_alive, mutated
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

GRPC_SECONDS = 15.0


@pytest.fixture(scope="module")
def proc(fuzz_server):  # session-scoped in conftest.py: one process for both fuzz files
    return fuzz_server


# ---------------------------------------------------------------- gRPC
@st.composite
def tensor_protos(draw):
    from tensorflow.core.framework import tensor_pb2, types_pb2

    dtype = draw(st.one_of(st.sampled_from(sorted(types_pb2.DataType.values())),
                           st.integers(-5, 400)))
    proto = tensor_pb2.TensorProto(dtype=dtype)
    kind = draw(st.sampled_from(["small", "small", "deep", "huge"]))
    if kind == "small":
        dims = draw(st.lists(st.integers(0, 4), max_size=4))
    elif kind == "deep":
        dims = [1] * draw(st.sampled_from([31, 32, 33, 40, 64, 70]))
    else:
        dims = draw(st.lists(st.sampled_from([1, 2, 10 ** 7, 2 ** 40, 2 ** 63 - 1, -1, -2 ** 63]),
                             min_size=1, max_size=3))
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_shape.unknown_rank = draw(st.booleans()) and draw(st.booleans())
    values = draw(st.sampled_from(["string", "int", "float", "content", "none", "bool", "half"]))
    count = draw(st.integers(0, 6))
    if values == "string":
        proto.string_val.extend(draw(st.lists(st.binary(max_size=20), max_size=count)))
    elif values == "int":
        proto.int_val.extend(draw(st.lists(st.integers(-2 ** 31, 2 ** 31 - 1), max_size=count)))
    elif values == "float":
        proto.float_val.extend(draw(st.lists(st.floats(width=32), max_size=count)))
    elif values == "bool":
        proto.bool_val.extend(draw(st.lists(st.booleans(), max_size=count)))
    elif values == "half":
        proto.half_val.extend(draw(st.lists(st.integers(0, 2 ** 16 - 1), max_size=count)))
    elif values == "content":
        proto.tensor_content = draw(st.binary(max_size=64))
    return proto


@st.composite
def predict_requests(draw):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = draw(st.sampled_from(["stub", "stub", "nope", "", "../stub"]))
    version = draw(st.sampled_from([None, None, 1, 2, 0, -1, 2 ** 63 - 1]))
    if version is not None:
        request.model_spec.version.value = version
    elif draw(st.booleans()) and draw(st.booleans()):
        request.model_spec.version_label = "stable"
    request.model_spec.signature_name = draw(st.sampled_from(
        ["", "", "serving_default", "beam_search", "nope"]))
    for name in draw(st.lists(st.sampled_from(["text", "text", "other", ""]), max_size=2, unique=True)):
        request.inputs[name].CopyFrom(draw(tensor_protos()))
    request.output_filter.extend(draw(st.lists(st.sampled_from(["text", "scores", "nope", "text"]),
                                               max_size=2)))
    return request


def _well_formed_text_tensor(draw_texts):
    from tensorflow.core.framework import tensor_pb2, types_pb2

    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=draw_texts)
    proto.tensor_shape.dim.add(size=len(draw_texts))
    return proto


def _parses(request_class, data):
    try:
        request_class.FromString(data)
    except Exception:  # DecodeError, invalid UTF-8 in a string field, ...
        return False
    return True


GRPC_OK = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
           grpc.StatusCode.FAILED_PRECONDITION}


def test_grpc_requests_always_get_an_answer(proc):
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    budget, seen = Budget(GRPC_SECONDS), {}
    channel = grpc.insecure_channel(proc.grpc_target)
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    raw = {name: (channel.unary_unary(f"/tensorflow.serving.{name}"), request_class)
           for name, request_class in [
               ("PredictionService/Predict", predict_pb2.PredictRequest),
               ("PredictionService/GetModelMetadata", get_model_metadata_pb2.GetModelMetadataRequest),
               ("ModelService/GetModelStatus", get_model_status_pb2.GetModelStatusRequest)]}

    @st.composite
    def calls(draw):
        kind = draw(st.sampled_from(["predict"] * 5 + ["good", "metadata", "status", "raw", "mutated"]))
        if kind == "predict":  # drawn here, not in the lambda: a call the budget skips
            request = draw(predict_requests())  # must draw what the replay draws
            return lambda: predict.Predict(request, timeout=60)
        if kind == "good":
            request = draw(predict_requests())
            request.model_spec.name = "stub"
            request.inputs.clear()
            texts = draw(st.lists(st.binary(max_size=30), max_size=MAX_ROWS + 2))
            request.inputs["text"].CopyFrom(_well_formed_text_tensor(texts))
            return lambda: predict.Predict(request, timeout=60)
        if kind == "metadata":
            request = get_model_metadata_pb2.GetModelMetadataRequest()
            if draw(st.booleans()):
                request.model_spec.CopyFrom(draw(predict_requests()).model_spec)
            request.metadata_field.extend(draw(st.lists(st.sampled_from(["signature_def", "x", ""]),
                                                        max_size=2)))
            return lambda: predict.GetModelMetadata(request, timeout=60)
        if kind == "status":
            request = get_model_status_pb2.GetModelStatusRequest()
            if draw(st.booleans()):
                request.model_spec.CopyFrom(draw(predict_requests()).model_spec)
            return lambda: models.GetModelStatus(request, timeout=60)
        method, request_class = raw[draw(st.sampled_from(sorted(raw)))]
        data = draw(st.binary(max_size=100)) if kind == "raw" else \
            draw(mutated(draw(predict_requests()).SerializeToString() or b"\x0a\x00"))
        call = lambda: method(data, timeout=60)  # noqa: E731
        call.unparsable = not _parses(request_class, data)
        return call

    @settings(max_examples=1500, **SETTINGS)
    @given(calls())
    def run(call):
        if budget.spent():
            return
        try:
            call()
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()
            deserializing = code == grpc.StatusCode.INTERNAL and getattr(call, "unparsable", False) \
                and "deserializing" in err.details()
            assert code in GRPC_OK or deserializing, (code, err.details())
        seen[code] = seen.get(code, 0) + 1

    try:
        run()
    finally:
        channel.close()
    assert_alive(proc)
    assert {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND} <= \
        set(seen), seen
