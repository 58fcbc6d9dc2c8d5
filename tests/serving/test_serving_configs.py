"""serving/ configs: they parse with TF Serving's own proto schemas, and the text
protos, docker-compose.yml, the Dockerfile, the k8s manifests (base and the
own-models overlay) and the export layout agree.

What this proves: every field name/value is valid for tensorflow_model_server's
parsers (text_format is as strict as ParseProtoTextFile); compose, the image and
both k8s setups run the same flags against the same files; by default compose
mounts and the image bakes the ready model (models/cmudict-g2p) at models.config's
base_path, and the k8s base runs that image without a volume; the own-models
setups (G2P_MODEL_DIR, the overlay's PVC) put ``tfseq2seq export --base-path
export/g2p``'s layout at base_path; probes use the served model's name; once the
ready model is in the tree, it is a base path TF Serving can load (an integer
version with saved_model.pb, readable by the k8s uid). With kubectl on PATH the
kustomizations are also rendered by kustomize itself.
What it cannot prove: that a container starts or the image builds (no docker
engine here).
"""

import json
import os
import re
import shutil
import stat
import subprocess
import types

import pytest
import yaml
from google.protobuf import text_format
from serving_config_files import (  # noqa: I001  (a helper module beside the tests)
    CONFIG_FILES,
    FILE_FLAGS,
    IMAGE,
    MODEL_DIR_VAR,
    OWN_MODELS,
    READY_MODEL,
    REPO,
    SERVING,
    _dockerfile_image_tag,
    _flags,
    _instruction,
    _read,
    _wrapper_schema,
)


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
_COMPOSE_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                          r"(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
                          r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$\$)")


def _interpolate(value, env):
    """Compose's variable substitution: ${VAR}, $VAR, ${VAR:-default} (unset or empty),
    ${VAR-default} (unset only), $$; anything else with a "$" is rejected."""
    def substitute(m):
        if m["dollar"]:
            return "\0"
        name = m["name"] or m["bare"]
        if m["op"] == ":-":
            return env.get(name) or m["default"]
        if m["op"] == "-":
            return env.get(name, m["default"])
        return env.get(name, "")

    out = _COMPOSE_VAR.sub(substitute, value)
    assert "$" not in out, f"unsupported substitution in {value!r}"
    return out.replace("\0", "$")


def _compose_mounts(compose, env=None):
    """{container path: host path (absolute)} of the service's volumes, with the
    variables substituted from ``env`` (default: none set)."""
    mounts = {}
    for volume in compose["volumes"]:
        source, target, *mode = _interpolate(volume, env or {}).split(":")
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
    assert _host_path(mounts, model.base_path) == READY_MODEL  # the ready model by default
    published = {p.rsplit(":", 2)[-2]: p.rsplit(":", 1)[-1] for p in compose["ports"]}
    assert published == {"8500": "8500", "8501": "8501"}
    assert all(p.startswith("127.0.0.1:") for p in compose["ports"])


def test_compose_model_dir_is_overridable(compose, model):
    """``${G2P_MODEL_DIR:-../models/cmudict-g2p}:/models/g2p``: the variable, when set and
    not empty, replaces the ready model at base_path, and nothing else moves."""
    model_volumes = [v for v in compose["volumes"] if MODEL_DIR_VAR in v]
    assert model_volumes == [f"${{{MODEL_DIR_VAR}:-../models/cmudict-g2p}}:{model.base_path}:ro"]
    default = _compose_mounts(compose)
    assert _compose_mounts(compose, {MODEL_DIR_VAR: ""}) == default  # ":-": empty = unset
    # The header's recipe for serving your own export ...
    header = [line for line in _read(SERVING, "docker-compose.yml").splitlines()
              if line.startswith("#")]
    recipe = re.compile(rf"#\s+{MODEL_DIR_VAR}=(\S+) docker compose up -d")
    recipes = [m for m in map(recipe.fullmatch, header) if m]
    assert [m.group(1) for m in recipes] == ["../export/g2p"]
    own = _compose_mounts(compose, {MODEL_DIR_VAR: recipes[0].group(1)})
    # ... mounts what `tfseq2seq export --base-path export/g2p` (run at the repo root) writes.
    assert _host_path(own, model.base_path) == os.path.join(REPO, "export", "g2p")
    assert {t: h for t, h in own.items() if t != model.base_path} == \
        {t: h for t, h in default.items() if t != model.base_path}
    assert _compose_mounts(compose, {MODEL_DIR_VAR: "/srv/g2p"})[model.base_path] == "/srv/g2p"
    assert _interpolate("$$HOME-${A-x}-${B:-y}-$C", {"A": "", "C": "c"}) == "$HOME--y-c"
    with pytest.raises(AssertionError, match="unsupported"):
        _interpolate("${A:?required}", {})


def test_compose_healthcheck_queries_the_model_status(compose, model):
    script = " ".join(compose["healthcheck"]["test"])
    assert "/dev/tcp/127.0.0.1/8501" in script and f"GET /v1/models/{model.name} " in script
    assert "curl" not in script and "wget" not in script  # not in the image


# ------------------------------------------------------------------ Dockerfile
def _copies(dockerfile):
    """[(sources, destination)] of the COPY instructions (no flags, no JSON form)."""
    copies = []
    for name, rest in dockerfile[0]:
        if name == "COPY":
            *sources, destination = rest.split()
            assert not any(a.startswith("--") for a in sources), rest
            copies.append((sources, destination))
    return copies


def test_dockerfile_bakes_the_ready_model(dockerfile, compose, model):
    assert _instruction(dockerfile, "FROM") == compose["image"] == IMAGE
    copies = _copies(dockerfile)
    model_copy = [(src, dst) for src, dst in copies if dst.rstrip("/") == model.base_path]
    assert len(model_copy) == 1, copies
    (source,), _ = model_copy[0]  # a directory COPY puts its contents at the destination
    # Sources are relative to the build context, the repo root; the same host directory
    # compose mounts by default.
    assert os.path.join(REPO, source) == READY_MODEL == \
        _host_path(_compose_mounts(compose), model.base_path)
    config_copy = [(src, dst) for src, dst in copies if dst == "/config/"]
    assert len(config_copy) == 1 and len(copies) == 2, copies
    for flag, name in FILE_FLAGS.items():  # each flag's file is serving/<name>, copied
        assert _flags(compose["command"])[flag] == f"/config/{name}"
    assert sorted(config_copy[0][0]) == sorted(f"serving/{name}" for name in CONFIG_FILES)
    assert _instruction(dockerfile, "EXPOSE").split() == ["8500", "8501"]


def test_dockerfile_runs_what_compose_runs(dockerfile, compose):
    assert json.loads(_instruction(dockerfile, "ENTRYPOINT")) == compose["entrypoint"]
    cmd = json.loads(_instruction(dockerfile, "CMD"))
    assert cmd == compose["command"]  # same flags, same order
    assert _flags(cmd) == _flags(compose["command"])
    assert _dockerfile_image_tag(dockerfile) == "tfseq2seq/cmudict-g2p-serving:1"


def _docker_ignored(path, patterns):
    """Whether .dockerignore ``patterns`` keep ``path`` (relative, "/"-separated) out of
    the build context: the last pattern matching the path or one of its parents decides
    ("!" re-includes), "*" and "?" stop at "/", "**" crosses it (moby's patternmatcher)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        exclude = not pattern.startswith("!")
        pattern = os.path.normpath(pattern.lstrip("!")).lstrip("/")
        regex = "".join(".*" if tok == "**" else "[^/]*" if tok == "*" else "[^/]" if tok == "?"
                        else re.escape(tok) for tok in re.split(r"(\*\*|\*|\?)", pattern) if tok)
        if any(re.fullmatch(regex, c) for c in candidates):
            ignored = exclude
    return ignored


def test_dockerignore_keeps_the_build_context_to_the_copied_files(dockerfile):
    patterns = [line.strip() for line in _read(REPO, ".dockerignore").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    sources = [src for srcs, _ in _copies(dockerfile) for src in srcs]
    for source in sources:
        assert not _docker_ignored(source, patterns), source
    for path in ("variables/variables.index", "assets.extra/tf_serving_warmup_requests"):
        assert not _docker_ignored(f"models/cmudict-g2p/1/{path}", patterns), path
    for path in (".git", ".git/HEAD", ".venv/bin/python", "runs/g2p/weights.keras",
                 "export/g2p/1/saved_model.pb", "models/other/1/saved_model.pb",
                 "serving/docker-compose.yml", "tfseq2seq/__init__.py"):
        assert _docker_ignored(path, patterns), path


def test_ready_model_is_not_gitignored():
    """The ready model is committed: nothing in .gitignore may drop a file of it."""
    if shutil.which("git") is None or not os.path.exists(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout")
    paths = [f"models/cmudict-g2p/1/{p}" for p in (
        "saved_model.pb", "fingerprint.pb", "variables/variables.index",
        "variables/variables.data-00000-of-00001", "assets/vocab.txt",
        "assets.extra/tf_serving_warmup_requests")]
    paths += [os.path.relpath(os.path.join(d, f), REPO)  # and, once there, its real files
              for d, _dirs, files in os.walk(READY_MODEL) for f in files]
    result = subprocess.run(["git", "check-ignore", "--no-index", "-v", *paths], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and not result.stdout, result.stdout  # 1: none ignored


def test_ready_model_is_a_servable_base_path(compose, dockerfile, model):
    """Once models/cmudict-g2p is in the tree: the directory compose mounts and the image
    copies to base_path holds an integer version that TF Serving can load."""
    from tfseq2seq.export.versions import existing_versions

    host = _host_path(_compose_mounts(compose), model.base_path)
    (source,), _ = next((s, d) for s, d in _copies(dockerfile) if d.rstrip("/") == model.base_path)
    assert host == os.path.join(REPO, source) == READY_MODEL
    if not os.path.exists(READY_MODEL):
        pytest.skip(f"{os.path.relpath(READY_MODEL, REPO)} is not in the tree yet")
    versions = existing_versions(READY_MODEL)
    assert versions, f"no integer version directory in {READY_MODEL}: {os.listdir(READY_MODEL)}"
    newest = os.path.join(READY_MODEL, str(versions[-1]))  # what requests without a version get
    for version in versions:
        path = os.path.join(READY_MODEL, str(version))
        assert os.path.isfile(os.path.join(path, "saved_model.pb")), path
        assert os.path.isdir(os.path.join(path, "variables")), path
    assert os.path.isfile(os.path.join(newest, "assets.extra", "tf_serving_warmup_requests"))
    # The k8s base runs the image as uid 65534 and COPY keeps modes: everything must be
    # readable by others (directories searchable).
    for directory, _dirs, files in os.walk(READY_MODEL):
        mode = os.stat(directory).st_mode
        assert mode & stat.S_IROTH and mode & stat.S_IXOTH, directory
        for name in files:
            assert os.stat(os.path.join(directory, name)).st_mode & stat.S_IROTH, name


# ------------------------------------------------------------------ export layout
def test_export_layout_is_what_base_path_expects(tmp_path, monkeypatch, compose, model):
    """For the own-models setups, ``export_model`` into export/g2p gives
    <base_path>/<int>/saved_model.pb, which TF's C++ loader (what TF Serving runs) loads
    and our discovery rule finds."""
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
    # Replay the own-models mounts: compose with G2P_MODEL_DIR=<tmp>/export/g2p, and the
    # overlay's PVC (holding what export/ holds) at /models.
    host_base = str(tmp_path / "export" / "g2p")
    own_compose = _compose_mounts(compose, {MODEL_DIR_VAR: host_base})
    assert _host_path(own_compose, model.base_path) == host_base
    (patch,) = yaml.safe_load_all(_read(OWN_MODELS, "deployment-patch.yaml"))
    (pvc_mount,) = patch["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    pvc_root = str(tmp_path / "export")
    assert _host_path({pvc_mount["mountPath"]: pvc_root}, model.base_path) == host_base
    paths = [export.export_model(fake_model, None, None, vocab, vocab, host_base) for _ in range(2)]
    assert paths == [os.path.join(host_base, "1"), os.path.join(host_base, "2")]
    assert sorted(os.listdir(host_base)) == ["1", "2"]  # no temporary directory left
    for path in paths:
        assert re.fullmatch(r"[0-9]+", os.path.basename(path))
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert sorted(ModelManager(host_base, model.name)._discover()) == [1, 2]
    with CApiSavedModel(paths[1]) as loaded:
        assert set(loaded.signatures) >= set(export.SIGNATURES)
