"""The package layout is the architecture: roles import downwards only, with no cycles,
and the TensorFlow-free parts stay TensorFlow-free."""

import ast
import os
import subprocess
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfseq2seq")
CORE = {"layers", "encoder", "decoder", "model", "unroll", "schedules", "losses", "ensemble"}
# What each role may import (besides itself); anything not listed is a layering error.
ALLOWED = {
    "util": set(),
    "decoding": {"util"},
    "text": {"util"},
    "core": {"util", "decoding"},
    "config": {"util", "decoding"},
    "data": {"util", "text", "config"},
    "run_dir": {"util", "config", "text", "core"},
    "inference": {"util", "text", "decoding", "core"},
    "training": {"util", "text", "decoding", "core", "config", "data", "run_dir", "inference"},
    "export": {"util", "text", "decoding", "core", "inference"},
    "serving": {"util", "export"},
    "cli": {"util", "text", "decoding", "core", "config", "data", "run_dir", "inference",
            "training", "export", "serving"},
    "package": {"util", "core", "layers"},  # tfseq2seq/__init__.py: the public API
}


def role(module):
    """``tfseq2seq.a.b`` -> its role (``"core"`` for the model core's modules)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    return "core" if parts[1] in CORE else parts[1]


def modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                yield relative.removesuffix(".__init__"), path


def imports(path, known):
    """The ``tfseq2seq`` modules imported anywhere in the file (in functions too):
    ``from a import b`` imports module ``a.b`` if there is one, else ``a``."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tfseq2seq")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfseq2seq"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
    return found


@pytest.fixture(scope="module")
def graph():
    known = dict(modules())
    return {m: {i for i in imports(p, known) if i in known and i != m} for m, p in known.items()}


def test_every_role_imports_only_downwards(graph):
    wrong = sorted(f"{m} -> {i}" for m, deps in graph.items() for i in deps
                   if role(i) != role(m) and role(i) not in ALLOWED[role(m)])
    assert not wrong


def test_no_import_cycles_between_roles_or_modules(graph):
    roles = {}
    for m, deps in graph.items():
        roles.setdefault(role(m), set()).update(role(i) for i in deps if role(i) != role(m))
    for edges in (graph, roles):
        state = {}

        def visit(node, path):
            state[node] = "open"
            for nxt in sorted(edges.get(node, ())):
                assert state.get(nxt) != "open", " -> ".join(path + [nxt])
                if nxt not in state:
                    visit(nxt, path + [nxt])
            state[node] = "done"

        for node in sorted(edges):
            if node not in state:
                visit(node, [node])


def test_config_and_text_files_are_written_without_tensorflow(tmp_path):
    code = f"""
import sys
from tfseq2seq.config import Config, load_config, save_config
from tfseq2seq.data.corpora import load_corpus
from tfseq2seq.data.tsv import read_tsv
from tfseq2seq.text import Vocabulary
from tfseq2seq.util.files import write_text_atomic
save_config(Config(), {str(tmp_path / "config.yaml")!r})
load_config({str(tmp_path / "config.yaml")!r})
Vocabulary.build([["a", "b"]]).save({str(tmp_path / "v.txt")!r})
write_text_atomic({str(tmp_path / "t.tsv")!r}, "a\\tb\\n")
assert read_tsv({str(tmp_path / "t.tsv")!r}).pairs == [("a", "b")]
load_corpus("cmudict").examples("dev")
print(sorted({{"tensorflow", "keras"}} & set(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
