"""serving/ configs: they parse with TF Serving's own proto schemas, and the text
protos, docker-compose.yml, the k8s manifests and the export layout agree.

What this proves: every field name/value is valid for tensorflow_model_server's
parsers (text_format is as strict as ParseProtoTextFile), both deployments run
the same flags against the same mounted files, probes use the served model's
name, and ``export_model`` writes what ``models.config``'s base_path points at.
What it cannot prove: that a container starts (no docker engine here).
"""

import os
import re
import types

import pytest
import yaml
from google.protobuf import text_format

SERVING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "serving")
K8S = os.path.join(SERVING, "k8s")
CONFIG_FILES = ("models.config", "batching_parameters.txt", "monitoring.config")
FILE_FLAGS = {"--model_config_file": "models.config",
              "--batching_parameters_file": "batching_parameters.txt",
              "--monitoring_config_file": "monitoring.config"}
IMAGE = "tensorflow/serving:2.21.0"


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


@pytest.fixture(scope="module")
def protos():
    from tensorflow_serving.config import model_server_config_pb2

    monitoring_cls, batching_cls = _wrapper_schema()
    return types.SimpleNamespace(
        models=text_format.Parse(_read(SERVING, "models.config"),
                                 model_server_config_pb2.ModelServerConfig()),
        batching=text_format.Parse(_read(SERVING, "batching_parameters.txt"), batching_cls()),
        monitoring=text_format.Parse(_read(SERVING, "monitoring.config"), monitoring_cls()))


@pytest.fixture(scope="module")
def model(protos):
    configs = protos.models.model_config_list.config
    assert len(configs) == 1
    return configs[0]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(_read(SERVING, "docker-compose.yml"))["services"]["tfserving"]


@pytest.fixture(scope="module")
def k8s():
    kustomization = yaml.safe_load(_read(K8S, "kustomization.yaml"))
    docs = {}
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all(_read(K8S, resource)):
            docs[doc["kind"]] = doc
    assert set(docs) == {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"}
    return docs


def _flags(args):
    """['--a=1', ...] -> {'--a': '1'} (every flag in ``--name=value`` form, once)."""
    flags = dict(arg.split("=", 1) for arg in args)
    assert len(flags) == len(args) and all(k.startswith("--") for k in flags), args
    return flags


# ------------------------------------------------------------------ the text protos
def test_models_config(model):
    assert (model.name, model.base_path, model.model_platform) == ("g2p", "/models/g2p", "tensorflow")
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 2
    assert not model.version_labels  # labels are not supported by tfseq2seq serve


def test_batching_parameters(protos, k8s):
    b = protos.batching
    assert b.max_batch_size.value == 32 and 0 < b.batch_timeout_micros.value <= 100_000
    assert b.max_enqueued_batches.value > 0 and b.num_batch_threads.value > 0
    if b.allowed_batch_sizes:  # TF Serving's rules: increasing, last == max_batch_size
        assert list(b.allowed_batch_sizes) == sorted(set(b.allowed_batch_sizes))
        assert b.allowed_batch_sizes[-1] == b.max_batch_size.value
    container = k8s["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert b.num_batch_threads.value == int(container["resources"]["limits"]["cpu"])


def test_monitoring_config(protos):
    assert protos.monitoring.prometheus_config.enable
    assert protos.monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_text_protos_reject_typos():
    """The schema is strict: a misspelt field fails, as it would in the server."""
    _monitoring, batching_cls = _wrapper_schema()
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_sizes { value: 32 }", batching_cls())


# ------------------------------------------------------------------ docker-compose
def _compose_mounts(compose):
    """{container path: host path (absolute)} of the service's volumes."""
    mounts = {}
    for volume in compose["volumes"]:
        source, target, *mode = volume.split(":")
        assert mode == ["ro"], volume  # the server never writes
        mounts[target] = os.path.normpath(os.path.join(SERVING, source))
    return mounts


def _host_path(mounts, container_path):
    for target, source in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
        if container_path == target or container_path.startswith(target + "/"):
            return os.path.normpath(os.path.join(source, os.path.relpath(container_path, target)))
    raise AssertionError(f"{container_path} is not under any mount: {mounts}")


def test_compose_flags_files_and_ports(compose, model, protos):
    import tensorflow as tf

    assert compose["image"] == IMAGE and tf.__version__.startswith(IMAGE.rsplit(":", 1)[1][:4])
    flags = _flags(compose["command"])
    assert flags["--port"] == "8500" and flags["--rest_api_port"] == "8501"
    assert flags["--enable_batching"] == "true" and int(flags["--file_system_poll_wait_seconds"]) > 0
    mounts = _compose_mounts(compose)
    for flag, name in FILE_FLAGS.items():  # each flag names the mounted copy of serving/<name>
        assert _host_path(mounts, flags[flag]) == os.path.join(SERVING, name)
    assert _host_path(mounts, model.base_path) == os.path.join(os.path.dirname(SERVING), "export", "g2p")
    published = {p.rsplit(":", 2)[-2]: p.rsplit(":", 1)[-1] for p in compose["ports"]}
    assert published == {"8500": "8500", "8501": "8501"}
    assert all(p.startswith("127.0.0.1:") for p in compose["ports"])


def test_compose_healthcheck_queries_the_model_status(compose, model):
    script = " ".join(compose["healthcheck"]["test"])
    assert "/dev/tcp/127.0.0.1/8501" in script and f"GET /v1/models/{model.name} " in script
    assert "curl" not in script and "wget" not in script  # not in the image


# ------------------------------------------------------------------ kubernetes
def test_k8s_deployment_matches_compose(k8s, compose, model):
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == compose["image"] and container["command"] == compose["entrypoint"]
    assert _flags(container["args"]) == _flags(compose["command"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 8500, "rest": 8501}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": f"/v1/models/{model.name}", "port": "rest"}
    requests_, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests_) == set(limits) == {"cpu", "memory"}
    assert float(requests_["cpu"]) <= float(limits["cpu"])
    assert int(requests_["memory"].rstrip("Gi")) <= int(limits["memory"].rstrip("Gi"))


def test_k8s_volumes_configmap_and_service(k8s, compose, model):
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/models"]["persistentVolumeClaim"]["claimName"] == \
        k8s["PersistentVolumeClaim"]["metadata"]["name"]
    assert model.base_path.startswith("/models/")
    config_map = k8s["ConfigMap"]
    assert mounts["/config"]["configMap"]["name"] == config_map["metadata"]["name"]
    flags = _flags(pod["containers"][0]["args"])
    for flag, name in FILE_FLAGS.items():  # the flag's file is a key of the mounted ConfigMap ...
        assert flags[flag] == f"/config/{name}"
        assert config_map["data"][name] == _read(SERVING, name)  # ... holding the same text
    assert set(config_map["data"]) == set(CONFIG_FILES)
    service = k8s["Service"]["spec"]
    assert service["selector"] == k8s["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["selector"].items() <= \
        k8s["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["ports"]} == \
        {("grpc", 8500, "grpc"), ("rest", 8501, "rest")}


# ------------------------------------------------------------------ export layout
def test_export_layout_is_what_base_path_expects(tmp_path, monkeypatch, compose, model):
    """``export_model`` into <mounted export dir>/g2p gives <base_path>/<int>/saved_model.pb,
    which TF's C++ loader (what TF Serving runs) loads and our discovery rule finds."""
    import tensorflow as tf

    from tfseq2seq import export, text
    from tfseq2seq.export import exporters
    from tfseq2seq.export.capi import CApiSavedModel
    from tfseq2seq.serving.models import ModelManager

    class Tiny(tf.Module):  # stands in for ServingModule: only the layout is under test
        def __init__(self, *args, **kwargs):
            super().__init__()

        @tf.function(input_signature=[export.TEXT_SPEC])
        def echo(self, text):
            return {"text": tf.strings.upper(text)}

        def signatures(self):
            return {name: self.echo.get_concrete_function() for name in export.SIGNATURES}

    monkeypatch.setattr(exporters, "ServingModule", Tiny)
    vocab = text.Vocabulary(text.RESERVED_TOKENS + ("a",)).save(tmp_path / "vocab.txt")
    fake_model = types.SimpleNamespace(source_vocab_size=len(text.RESERVED_TOKENS) + 1,
                                       target_vocab_size=len(text.RESERVED_TOKENS) + 1)
    # Replay the compose mount: host <tmp>/export is the container's /models.
    mounts = {"/models": str(tmp_path / "export")}
    host_base = _host_path(mounts, model.base_path)
    assert host_base == str(tmp_path / "export" / model.name)
    paths = [export.export_model(fake_model, None, None, vocab, vocab, host_base) for _ in range(2)]
    assert paths == [os.path.join(host_base, "1"), os.path.join(host_base, "2")]
    assert sorted(os.listdir(host_base)) == ["1", "2"]  # no temporary directory left
    for path in paths:
        assert re.fullmatch(r"[0-9]+", os.path.basename(path))
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert sorted(ModelManager(host_base, model.name)._discover()) == [1, 2]
    with CApiSavedModel(paths[1]) as loaded:
        assert set(loaded.signatures) >= set(export.SIGNATURES)
