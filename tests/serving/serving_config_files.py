"""serving/'s config files, parsed the way their readers parse them (TF Serving's proto
schemas, docker compose, Docker, kustomize), for the tests of test_serving_configs.py and
test_k8s_manifests.py (their fixtures, in conftest.py, load them)."""

import os
import re
import types

import yaml
from google.protobuf import text_format

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = os.path.join(REPO, "serving")
K8S = os.path.join(SERVING, "k8s")
OWN_MODELS = os.path.join(K8S, "own-models")
READY_MODEL = os.path.join(REPO, "models", "cmudict-g2p")  # TF Serving base path, committed
MODEL_DIR_VAR = "G2P_MODEL_DIR"  # docker-compose.yml: host directory mounted at base_path
CONFIG_FILES = ("models.config", "batching_parameters.txt", "monitoring.config")
FILE_FLAGS = {"--model_config_file": "models.config",
              "--batching_parameters_file": "batching_parameters.txt",
              "--monitoring_config_file": "monitoring.config"}
IMAGE = "tensorflow/serving:2.21.0"  # the stock image (compose, Dockerfile FROM, own-models)



# ------------------------------------------------------------------ proto schemas
def _wrapper_schema():
    """MonitoringConfig and BatchingParameters classes.

    The tensorflow-serving-api wheel ships model_server_config_pb2 but not
    monitoring_config_pb2 / session_bundle_config_pb2; when they are missing the
    two messages are declared here with the field names, numbers and types of
    tensorflow_serving/config/monitoring_config.proto and
    servables/tensorflow/session_bundle_config.proto (TF Serving 2.21).
    """
    try:
        from tensorflow_serving.config import monitoring_config_pb2
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
        return monitoring_config_pb2.MonitoringConfig, session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tfseq2seq_test/serving_configs.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])

    def message(name, fields):
        msg = fdp.message_type.add(name=name)
        for field_name, number, kind, type_name, label in fields:
            msg.field.add(name=field_name, number=number, type=kind, label=label,
                          type_name=type_name or None)

    opt, rep, msg_t = F.LABEL_OPTIONAL, F.LABEL_REPEATED, F.TYPE_MESSAGE
    i64, s, b = ".google.protobuf.Int64Value", ".google.protobuf.StringValue", ".google.protobuf.BoolValue"
    message("PrometheusConfig", [("enable", 1, F.TYPE_BOOL, "", opt),
                                 ("path", 2, F.TYPE_STRING, "", opt)])
    message("MonitoringConfig", [("prometheus_config", 1, msg_t,
                                  ".tensorflow.serving.PrometheusConfig", opt)])
    message("BatchingParameters", [
        ("max_batch_size", 1, msg_t, i64, opt), ("batch_timeout_micros", 2, msg_t, i64, opt),
        ("max_enqueued_batches", 3, msg_t, i64, opt), ("num_batch_threads", 4, msg_t, i64, opt),
        ("thread_pool_name", 5, msg_t, s, opt), ("allowed_batch_sizes", 6, F.TYPE_INT64, "", rep),
        ("pad_variable_length_inputs", 7, F.TYPE_BOOL, "", opt),
        ("enable_large_batch_splitting", 8, msg_t, b, opt),
        ("max_execution_batch_size", 9, msg_t, i64, opt)])
    pool.Add(fdp)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(n))  # noqa: E731
    return get("tensorflow.serving.MonitoringConfig"), get("tensorflow.serving.BatchingParameters")


def _read(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return f.read()


def load_protos():
    from tensorflow_serving.config import model_server_config_pb2

    monitoring_cls, batching_cls = _wrapper_schema()
    return types.SimpleNamespace(
        models=text_format.Parse(_read(SERVING, "models.config"),
                                 model_server_config_pb2.ModelServerConfig()),
        batching=text_format.Parse(_read(SERVING, "batching_parameters.txt"), batching_cls()),
        monitoring=text_format.Parse(_read(SERVING, "monitoring.config"), monitoring_cls()))


def served_model(protos):
    configs = protos.models.model_config_list.config
    assert len(configs) == 1
    return configs[0]


def load_compose():
    return yaml.safe_load(_read(SERVING, "docker-compose.yml"))["services"]["tfserving"]


def _kustomization_docs(directory):
    """{kind: document} of a kustomization's resources (directories followed), unpatched."""
    docs = {}
    for resource in yaml.safe_load(_read(directory, "kustomization.yaml"))["resources"]:
        path = os.path.normpath(os.path.join(directory, resource))
        found = _kustomization_docs(path) if os.path.isdir(path) else \
            {doc["kind"]: doc for doc in yaml.safe_load_all(_read(path))}
        assert not set(found) & set(docs), (path, set(found) & set(docs))
        docs.update(found)
    return docs


def load_k8s():
    """What ``kubectl apply -k serving/k8s`` applies (the base: the baked-model image)."""
    docs = _kustomization_docs(K8S)
    assert set(docs) == {"ConfigMap", "Deployment", "Service"}  # no PVC: the model is in the image
    return docs


def load_dockerfile():
    """(instructions as [(NAME, arguments)], comment lines) of serving/Dockerfile."""
    text = _read(SERVING, "Dockerfile")
    lines = text.splitlines()
    comments = [line.lstrip()[1:].strip() for line in lines if line.lstrip().startswith("#")]
    # Docker drops comment lines (also inside continuations), then joins "\" lines.
    logical = re.sub(r"\\\n", " ", "\n".join(ln for ln in lines if not ln.lstrip().startswith("#")))
    instructions = [tuple(line.strip().split(None, 1))
                    for line in logical.splitlines() if line.strip()]
    return [(name.upper(), rest) for name, rest in instructions], comments


def _instruction(dockerfile, name):
    args = [rest for instr, rest in dockerfile[0] if instr == name]
    assert len(args) == 1, (name, args)
    return args[0]


def _dockerfile_image_tag(dockerfile):
    """The image the Dockerfile's build command (in its header comment) tags."""
    builds = [m for c in dockerfile[1]
              for m in [re.fullmatch(r"docker build -f serving/Dockerfile -t (\S+) \.", c)] if m]
    assert len(builds) == 1, dockerfile[1]
    return builds[0].group(1)


def _flags(args):
    """['--a=1', ...] -> {'--a': '1'} (every flag in ``--name=value`` form, once)."""
    flags = dict(arg.split("=", 1) for arg in args)
    assert len(flags) == len(args) and all(k.startswith("--") for k in flags), args
    return flags
