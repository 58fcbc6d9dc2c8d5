"""The package works installed from a wheel, not only as a checkout (slow: ~1 minute).

The checkout is copied to a temporary directory (so the build's ``build/`` and
``*.egg-info`` land there, not here), built with ``pip wheel . --no-deps``, installed with
``pip install --no-deps --target``, and run with this interpreter (which has the
dependencies) and ``PYTHONPATH`` = that target, from a directory outside the checkout.
"""

import os
import shutil
import subprocess
import sys
import types
import zipfile

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "configs")
NOT_COPIED_AT_TOP = {".git", ".venv", "runs", "export", "build", "dist"}  # outputs, not sources
NOT_COPIED = ("__pycache__", ".pytest_cache", ".ruff_cache")
BUILD_OUTPUTS = ("build", "dist")  # ... and *.egg-info, *.whl


def _ignore(folder, names):
    ignored = {n for n in names if n in NOT_COPIED or n.endswith((".egg-info", ".whl"))}
    if os.path.samefile(folder, ROOT):
        ignored |= NOT_COPIED_AT_TOP & set(names)
    return ignored


def _files(root):
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root) for name in names}


def _checkout_outputs():
    """The checkout's build outputs and their modification times."""
    names = [n for n in os.listdir(ROOT) if n in BUILD_OUTPUTS or n.endswith((".egg-info", ".whl"))]
    return {n: os.stat(os.path.join(ROOT, n)).st_mtime_ns for n in names}


def _run(args, cwd, env, timeout=300):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    checkout_before = _checkout_outputs()
    source = tmp / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_ignore)
    sources = _files(source)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TFSEQ2SEQ_MODELS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(pip + ["wheel", ".", "--no-deps", "-w", str(tmp / "dist")], cwd=source, env=env)
    (path,) = [str(p) for p in (tmp / "dist").glob("tfseq2seq-*.whl")]
    site = tmp / "site"
    _run(pip + ["install", "--no-deps", "--target", str(site), path], cwd=tmp, env=env)
    work = tmp / "elsewhere"  # outside the checkout
    work.mkdir()
    return types.SimpleNamespace(
        path=path, site=str(site), work=str(work), env=dict(env, PYTHONPATH=str(site)),
        built=sorted(_files(source) - sources), checkout_before=checkout_before)


def test_the_wheel_holds_the_configs_and_no_models(wheel):
    names = zipfile.ZipFile(wheel.path).namelist()
    configs = sorted(n for n in os.listdir(CONFIGS) if n.endswith(".yaml"))
    data = sorted(os.listdir(os.path.join(CONFIGS, "data")))
    assert {"demo.yaml", "g2p.yaml", "smoke.yaml", "zh_en.yaml"} <= set(configs)
    assert sorted(n.split("/")[-1] for n in names if n.startswith("tfseq2seq/configs/")
                  and n.endswith(".yaml")) == configs
    assert sorted(n.split("/")[-1] for n in names
                  if n.startswith("tfseq2seq/configs/data/")) == data == [
        "tiny_dev.tsv", "tiny_train.tsv"]
    # only the package and its metadata: no models/, tests/, benchmarks/
    assert {n.split("/")[0] for n in names} == {"tfseq2seq", "tfseq2seq-0.1.0.dist-info"}
    assert not [n for n in names if "/models/" in n or n.endswith((".pb", ".keras"))]
    assert os.path.getsize(wheel.path) < 1 << 20
    entry_points = zipfile.ZipFile(wheel.path).read("tfseq2seq-0.1.0.dist-info/entry_points.txt")
    assert b"tfseq2seq = tfseq2seq.cli:main" in entry_points


def test_building_the_wheel_leaves_the_checkout_clean(wheel):
    """The build ran in a copy; what it wrote there (build/, *.egg-info) is git-ignored, so
    ``pip wheel .`` in the checkout itself leaves ``git status`` clean too."""
    assert _checkout_outputs() == wheel.checkout_before
    assert wheel.built and {p.split(os.sep)[0] for p in wheel.built} <= {
        "build", "tfseq2seq.egg-info"}
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    result = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT,
                            input="\n".join(wheel.built), capture_output=True, text=True,
                            check=False)
    assert sorted(result.stdout.split()) == wheel.built  # every one is ignored


def test_the_installed_copy_runs_from_any_directory(wheel):
    tfseq2seq = [os.path.join(wheel.site, "bin", "tfseq2seq")]
    code = ("import tfseq2seq, tfseq2seq.config as config; "
            "print(tfseq2seq.__file__); print(config.config_path('smoke'))")
    python = [sys.executable, "-c", code]
    package, smoke = _run(python, wheel.work, wheel.env).split()
    assert package == os.path.join(wheel.site, "tfseq2seq", "__init__.py")  # not the checkout
    assert smoke == os.path.join(wheel.site, "tfseq2seq", "configs", "smoke.yaml")
    assert "verify-export" in _run(tfseq2seq + ["--help"], wheel.work, wheel.env)

    # the demo with a bundled config by name, its TSV data from the package
    out = _run(tfseq2seq + ["demo", "--config", "smoke", "--skip-ready", "--run-dir", "runs/demo",
                            "--base-path", "export/demo", "--set", "training.epochs=1",
                            "--set", "training.steps_per_epoch=2"], wheel.work, wheel.env)
    assert "B4/5" in out and "demo finished" in out
    packaged_tsv = os.path.join(wheel.site, "tfseq2seq", "configs", "data", "tiny_train.tsv")
    with open(os.path.join(wheel.work, "runs", "demo", "config.yaml"), encoding="utf-8") as f:
        assert packaged_tsv in f.read()
    assert os.path.isfile(os.path.join(wheel.work, "runs", "demo", "attention.png"))

    # export verifies before publishing, through the installed copy (op check included)
    out = _run(tfseq2seq + ["export", "runs/demo", "--base-path", "export/g2p"], wheel.work,
               wheel.env)
    assert out.startswith("exported: export/g2p/1\n") and "FAIL" not in out
    assert "ops: core TF + TF Text only" in out and out.rstrip().endswith("load and run it")
    out = _run(tfseq2seq + ["verify-export", "export/g2p", "--skip-op-check"], wheel.work,
               wheel.env)
    assert out.startswith("verifying export/g2p/1\n") and "FAIL" not in out
