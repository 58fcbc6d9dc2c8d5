"""Checking that a SavedModel uses only ops a stock ``tensorflow_model_server`` has:
core TensorFlow ops and TensorFlow Text ops (no Python functions, no custom kernels)."""

import json
import os
import subprocess
import sys

from tensorflow.core.protobuf import saved_model_pb2

FORBIDDEN_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def op_names(saved_model_dir):
    """Every op type in the SavedModel's graphs, function library bodies included.

    Calls of library functions by name are not op types and are left out (their bodies
    are listed instead).
    """
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    names = set()
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions = {f.signature.name for f in library.function}
        nodes = list(meta_graph.graph_def.node)
        for function in library.function:
            nodes.extend(function.node_def)
        names.update(node.op for node in nodes if node.op not in functions)
    return names


_REGISTRY_PROBE = """
import json, sys
import tensorflow as tf
from tensorflow.python.framework import op_def_registry
assert "tensorflow_text" not in sys.modules
names = json.load(sys.stdin)
core = sorted(n for n in names if op_def_registry.get(n) is not None)
import tensorflow_text
text = sorted(n for n in names if n not in core and op_def_registry.get(n) is not None)
json.dump({"core": core, "text": text}, sys.stdout)
"""


def check_ops(saved_model_dir, python=sys.executable):
    """Raises ``ValueError`` unless every op is a core TF op or a TensorFlow Text op.

    Python-only ops (``PyFunc``, ``PyFuncStateless``, ``EagerPyFunc``) are rejected
    outright. The rest are classified in a fresh interpreter: registered after
    ``import tensorflow`` alone -> core; registered only after ``import tensorflow_text``
    -> TF Text (what ``tensorflow_model_server`` links in); anything else -> rejected.
    Returns ``{"core": [...], "text": [...]}``.
    """
    names = op_names(saved_model_dir)
    forbidden = sorted(names & FORBIDDEN_OPS)
    if forbidden:
        raise ValueError(f"{saved_model_dir} uses Python-only ops {forbidden}; "
                         "TensorFlow Serving cannot run them")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([python, "-c", _REGISTRY_PROBE], input=json.dumps(sorted(names)),
                            capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"op registry probe failed:\n{result.stderr[-2000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    unknown = sorted(names - set(found["core"]) - set(found["text"]))
    if unknown:
        raise ValueError(f"{saved_model_dir} uses ops that are neither core TensorFlow nor "
                         f"TensorFlow Text ops: {unknown}")
    return found
