"""serving/k8s/: the base (``kubectl apply -k serving/k8s``) runs the image with the ready
model baked in and the flags compose runs; the own-models overlay is the base plus the
stock image and the PVC at /models; with kubectl on PATH, kustomize renders both."""

import copy
import os
import shutil
import subprocess

import pytest
import yaml
from serving_config_files import (  # noqa: I001  (a helper module beside the tests)
    CONFIG_FILES,
    FILE_FLAGS,
    IMAGE,
    K8S,
    OWN_MODELS,
    SERVING,
    _dockerfile_image_tag,
    _flags,
    _read,
)


# ------------------------------------------------------------------ kubernetes
def test_k8s_deployment_matches_compose(k8s, compose, model, dockerfile):
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == _dockerfile_image_tag(dockerfile)  # the baked-model image
    assert container["command"] == compose["entrypoint"]
    assert _flags(container["args"]) == _flags(compose["command"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 8500, "rest": 8501}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": f"/v1/models/{model.name}", "port": "rest"}
    requests_, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert set(requests_) == set(limits) == {"cpu", "memory"}
    assert float(requests_["cpu"]) <= float(limits["cpu"])
    assert int(requests_["memory"].rstrip("Gi")) <= int(limits["memory"].rstrip("Gi"))


def test_k8s_base_serves_the_baked_model(k8s, model):
    """No volume over the model: base_path is the image's copy of models/cmudict-g2p."""
    assert yaml.safe_load(_read(K8S, "kustomization.yaml"))["resources"] == ["base"]
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["config"]
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])
    for m in pod["containers"][0]["volumeMounts"]:
        assert not (model.base_path + "/").startswith(m["mountPath"].rstrip("/") + "/"), m
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534}


def test_k8s_volumes_configmap_and_service(k8s, compose, model):
    pod = k8s["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}
    assert all(m["readOnly"] for m in pod["containers"][0]["volumeMounts"])
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




def test_k8s_own_models_overlay(k8s, compose, model):
    """``kubectl apply -k serving/k8s/own-models``: the base plus the PVC g2p-models at
    /models and the stock image; the patch changes nothing else."""
    kustomization = yaml.safe_load(_read(OWN_MODELS, "kustomization.yaml"))
    assert kustomization["resources"] == ["../base", "pvc.yaml"]
    assert os.path.normpath(os.path.join(OWN_MODELS, "../base")) == os.path.join(K8S, "base")
    assert [p["path"] for p in kustomization["patches"]] == ["deployment-patch.yaml"]
    (pvc,) = yaml.safe_load_all(_read(OWN_MODELS, "pvc.yaml"))
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "g2p-models"
    assert pvc["spec"]["accessModes"] == ["ReadOnlyMany"]  # every replica mounts it
    (patch,) = yaml.safe_load_all(_read(OWN_MODELS, "deployment-patch.yaml"))
    base = k8s["Deployment"]
    assert (patch["apiVersion"], patch["kind"], patch["metadata"]["name"]) == \
        (base["apiVersion"], base["kind"], base["metadata"]["name"])
    assert set(patch["spec"]) == {"template"} and set(patch["spec"]["template"]) == {"spec"}
    pod = patch["spec"]["template"]["spec"]
    assert set(pod) == {"containers", "volumes"}
    (container,) = pod["containers"]
    assert container["name"] == base["spec"]["template"]["spec"]["containers"][0]["name"]
    assert set(container) == {"name", "image", "volumeMounts"}
    assert container["image"] == compose["image"] == IMAGE  # stock: no model in it
    (mount,) = container["volumeMounts"]
    (volume,) = pod["volumes"]
    assert mount == {"name": volume["name"], "mountPath": "/models", "readOnly": True}
    assert volume["persistentVolumeClaim"] == \
        {"claimName": pvc["metadata"]["name"], "readOnly": True}
    # The volume's root is what export/ is locally: base_path is <volume>/g2p.
    assert os.path.relpath(model.base_path, mount["mountPath"]) == model.name


def _kustomize(directory):
    result = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    docs = {}
    for doc in yaml.safe_load_all(result.stdout):
        assert doc["kind"] not in docs
        docs[doc["kind"]] = doc
    return docs


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not on PATH")
def test_k8s_kustomize_renders_base_and_overlay(k8s):
    """kustomize itself builds both (it refuses an overlay nested in its base's
    directory, hence k8s/base/) and the overlay is the base plus exactly the PVC."""
    base = _kustomize(K8S)
    assert base == k8s
    own = _kustomize(OWN_MODELS)
    assert set(own) == set(k8s) | {"PersistentVolumeClaim"}
    assert own["PersistentVolumeClaim"] == yaml.safe_load(_read(OWN_MODELS, "pvc.yaml"))
    for kind in set(k8s) - {"Deployment"}:
        assert own[kind] == k8s[kind], kind
    expected = copy.deepcopy(k8s["Deployment"])
    pod = expected["spec"]["template"]["spec"]
    pod["containers"][0]["image"] = IMAGE
    pod["containers"][0]["volumeMounts"].append(
        {"name": "models", "mountPath": "/models", "readOnly": True})
    pod["volumes"].append({"name": "models",
                           "persistentVolumeClaim": {"claimName": "g2p-models", "readOnly": True}})
    for deployment in (expected, own["Deployment"]):  # list order is not part of the contract
        spec = deployment["spec"]["template"]["spec"]
        spec["volumes"].sort(key=lambda v: v["name"])
        spec["containers"][0]["volumeMounts"].sort(key=lambda m: m["mountPath"])
    assert own["Deployment"] == expected
