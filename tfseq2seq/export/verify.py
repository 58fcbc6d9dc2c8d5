"""Will TensorFlow Serving load and run this export? ``tfseq2seq verify-export DIR``.

``verify_export(path)`` checks one SavedModel version (``path`` may also be a model base
path: its newest version, the one TF Serving serves by default) the way
``tensorflow_model_server`` would use it, and returns a ``Report`` of named checks:

- **load**: the C++ loader TF Serving calls (``LoadSavedModel``, through the C API:
  ``export.capi``) restores it with tag ``serve``; ``tf.saved_model.load`` loads it too
  (the reference the C API's answers are compared with);
- **signatures**: ``serving_default`` and ``beam_search`` exist, each taking one string
  input ``text`` and returning every key of ``export.signatures.OUTPUT_KEYS``;
- **ops**: only core TensorFlow and TensorFlow Text ops (``export.opcheck``; any other op
  is named);
- **warm-up**: every record of ``assets.extra/tf_serving_warmup_requests``
  (``export.warmup``) runs through the C API, as TF Serving replays them while loading
  (a failing record makes the version fail to load there);
- **odd inputs**, per signature: an empty string, whitespace only, an over-long text,
  invalid UTF-8, unknown symbols in mixed scripts, a batch mixing those, an empty batch.
  Each request is a serialized ``PredictRequest`` run through the C API; every output must
  be there with first dimension = batch, ``text`` a 1-D string tensor, string outputs valid
  UTF-8 (REST answers are JSON), and the outputs equal what ``tf.saved_model.load``
  returns for the same request. Only the over-long text may be refused, with
  ``INVALID_ARGUMENT`` by both loaders (an export made with ``--reject-overlong``).

``export_verified`` is what ``tfseq2seq export`` runs: the export is written into a hidden
staging directory inside the base path, verified there, and renamed to
``base_path/<version>`` only if every check passes, so a server polling the base path
never sees a version that failed.
"""

import dataclasses
import os
import shutil
import sys
import tempfile

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
STAGING_PREFIX = ".tmp-verify-"
OVERLONG_TEXT = "abcdefghij klmnopqrst " * 50  # 1,100 characters, 100 words


@dataclasses.dataclass(frozen=True)
class OddInput:
    """One request of the odd-input checks; ``may_reject``: answering it with
    ``INVALID_ARGUMENT`` (from both loaders) also passes."""

    name: str
    texts: tuple
    may_reject: bool = False


# Only the over-long text is longer than 8 characters, so that an export refusing inputs
# over its max_source_len (export --reject-overlong) answers the others.
ODD_INPUTS = (
    OddInput("empty string", ("",)),
    OddInput("whitespace only", (" \t \n ",)),
    OddInput("over-long text", (OVERLONG_TEXT,), may_reject=True),
    OddInput("invalid UTF-8", (b"\xffab\xfe\xc3(",)),
    # Latin with a diacritic, Han, an emoji, Greek, a symbol, a zero-width space
    OddInput("unknown symbols, mixed scripts", ("x\u00e9\u4e16\U0001f44d\u03a9\u2603\u200b",)),
    OddInput("mixed batch", ("hello", "", " ", b"\xff\xfe", "\u4e16\u754c hi", "x")),
    OddInput("empty batch", ()),
)


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS | FAIL | SKIP
    detail: str = ""


@dataclasses.dataclass
class Report:
    """The checks of one export; ``ok`` unless a check failed (skipped ones do not fail)."""

    path: str
    checks: list = dataclasses.field(default_factory=list)

    def add(self, name, status, detail=""):
        self.checks.append(Check(name, status, detail))

    @property
    def failures(self):
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self):
        return not self.failures

    def summary(self):
        counts = {s: sum(c.status == s for c in self.checks) for s in (PASS, FAIL, SKIP)}
        verdict = "TensorFlow Serving can load and run it" if self.ok else "NOT servable"
        return (f"{self.path}: {counts[PASS]} passed, {counts[FAIL]} failed, "
                f"{counts[SKIP]} skipped: {verdict}")

    def format_table(self):
        width = max([len("check")] + [len(c.name) for c in self.checks])
        lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
        lines += [f"{c.name:<{width}}  {c.status:<6}  {c.detail}".rstrip() for c in self.checks]
        return "\n".join(lines)


def resolve_version_dir(path):
    """A SavedModel directory as given, or the newest integer version of a model base path
    (what TF Serving serves by default). ``FileNotFoundError`` / ``ValueError`` otherwise."""
    from tfseq2seq.export.versions import existing_versions

    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such export directory: {path}")
    versions = existing_versions(path)
    if not versions:
        raise ValueError(f"{path} is neither a SavedModel directory (no saved_model.pb) nor a "
                         "model base path (no integer version directories)")
    return os.path.join(path, str(versions[-1]))


def verify_export(path, op_check=True, python=sys.executable, odd_inputs=ODD_INPUTS):
    """Runs every check on ``path`` (a version directory or a model base path) and returns
    the ``Report``; a check that fails is reported, never raised. ``op_check=False`` skips
    the op check (its fresh interpreter takes a few seconds); ``python``: the interpreter
    of that check."""
    version_dir = resolve_version_dir(path)
    report = Report(version_dir)
    capi = _load_capi(report, version_dir)
    try:
        loaded = _load_python(report, version_dir)
        signatures = _check_signatures(report, capi) if capi else []
        _check_ops(report, version_dir, op_check, python)
        _replay_warmup(report, capi, version_dir)
        for name in signatures:
            for odd in odd_inputs:
                _check_odd_input(report, capi, loaded, name, odd)
    finally:
        if capi is not None:
            capi.close()
    return report


def _first_line(error, limit=200):
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    line = f"{type(error).__name__}: {message.strip().splitlines()[0]}"
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _load_capi(report, version_dir):
    from tfseq2seq.export.capi import CApiSavedModel

    name = "load: C API (TF Serving's LoadSavedModel)"
    try:
        capi = CApiSavedModel(version_dir, tags=("serve",))
    except Exception as e:  # noqa: BLE001 — every failure is a row of the report
        report.add(name, FAIL, _first_line(e))
        return None
    served = sorted(k for k in capi.signatures if not k.startswith("__"))
    report.add(name, PASS, f"tag serve; signatures {', '.join(served) or 'none'}")
    return capi


def _load_python(report, version_dir):
    import tensorflow as tf

    name = "load: tf.saved_model.load"
    try:
        loaded = tf.saved_model.load(version_dir)
    except Exception as e:  # noqa: BLE001
        report.add(name, FAIL, _first_line(e))
        return None
    report.add(name, PASS, "the reference for the C API's outputs")
    return loaded


def _check_signatures(report, capi):
    """Adds one row per signature; returns the names of those to run odd inputs through."""
    import tensorflow as tf

    from tfseq2seq.export.signatures import OUTPUT_KEYS, SIGNATURES

    names = sorted(k for k in capi.signatures if not k.startswith("__"))
    names = [n for n in SIGNATURES if n in names] + [n for n in names if n not in SIGNATURES]
    missing = [n for n in SIGNATURES if n not in names]
    if missing:
        report.add("signatures", FAIL, f"missing {', '.join(missing)} (have {', '.join(names)})")
    runnable = []
    for name in names:
        signature = capi.signatures[name]
        inputs = {k: v.dtype for k, v in signature.inputs.items()}
        lacking = sorted(set(OUTPUT_KEYS) - set(signature.outputs))
        row = f"signature {name}"
        if inputs != {"text": tf.string.as_datatype_enum}:
            report.add(row, FAIL, f"inputs {sorted(inputs)}; a tfseq2seq signature takes one "
                                  "string input 'text'")
        elif lacking:
            report.add(row, FAIL, f"outputs lack {', '.join(lacking)}")
        else:
            report.add(row, PASS, f"text -> {', '.join(sorted(signature.outputs))}")
            runnable.append(name)
    return runnable


def _check_ops(report, version_dir, op_check, python):
    from tfseq2seq.export.opcheck import check_ops

    name = "ops: core TF + TF Text only"
    if not op_check:
        report.add(name, SKIP, "--skip-op-check")
        return
    try:
        found = check_ops(version_dir, python=python)
    except Exception as e:  # noqa: BLE001
        report.add(name, FAIL, _first_line(e).replace(f"{version_dir} ", "the export "))
        return
    report.add(name, PASS, f"{len(found['core'])} core TensorFlow ops, "
                           f"{len(found['text'])} TensorFlow Text ops")


def _replay_warmup(report, capi, version_dir):
    from tfseq2seq.export.warmup import WARMUP_PATH, read_warmup_requests

    name = "warm-up records (C API)"
    if capi is None:
        report.add(name, SKIP, "not loaded by the C API")
        return
    try:
        requests = read_warmup_requests(version_dir)
    except Exception as e:  # noqa: BLE001
        report.add(name, FAIL, _first_line(e))
        return
    if not requests:
        report.add(name, SKIP, f"no {WARMUP_PATH} (TF Serving loads the model without one)")
        return
    for i, request in enumerate(requests, 1):
        signature = request.model_spec.signature_name or "serving_default"
        try:
            rows = _rows(request)
            problems = _output_problems(capi.predict(request), rows, capi.signatures[signature])
        except Exception as e:  # noqa: BLE001
            problems = [_first_line(e)]
        if problems:
            report.add(name, FAIL, f"record {i} of {len(requests)} ({signature}): {problems[0]}")
            return
    report.add(name, PASS, f"{len(requests)} records replayed, every output of batch size")


def _rows(request):
    import tensorflow as tf

    return int(tf.make_ndarray(request.inputs["text"]).shape[0])


def _check_odd_input(report, capi, loaded, signature_name, odd):
    import tensorflow as tf

    from tfseq2seq.export.warmup import predict_request

    row = f"{signature_name}: {odd.name}"
    request = predict_request(list(odd.texts), signature_name)
    wire = request.SerializeToString()  # what arrives over gRPC
    try:
        got = capi.predict(wire)
    except Exception as e:  # noqa: BLE001
        got = e
    want = None
    if loaded is not None:
        texts = tf.make_ndarray(request.inputs["text"])
        try:
            outputs = loaded.signatures[signature_name](
                text=tf.constant(texts, tf.string, shape=[len(texts)]))
            want = {k: v.numpy() for k, v in outputs.items()}
        except Exception as e:  # noqa: BLE001
            want = e
    if isinstance(got, Exception) or isinstance(want, Exception):
        both = isinstance(got, tf.errors.InvalidArgumentError) and (
            want is None or isinstance(want, tf.errors.InvalidArgumentError))
        if odd.may_reject and both:
            report.add(row, PASS, f"refused: {_first_line(got)}")
        elif isinstance(got, Exception):
            report.add(row, FAIL, f"C API: {_first_line(got)}")
        else:
            report.add(row, FAIL, f"tf.saved_model.load: {_first_line(want)} (the C API answered)")
        return
    problems = _output_problems(got, len(odd.texts), capi.signatures[signature_name])
    if want is not None:
        problems += _differences(got, want)
    if problems:
        report.add(row, FAIL, "; ".join(problems))
    else:
        report.add(row, PASS, _describe(got, len(odd.texts), want is not None))


def _output_problems(outputs, rows, signature):
    """What makes ``outputs`` (C API, numpy) an invalid answer to ``rows`` texts."""
    problems = []
    missing = sorted(set(signature.outputs) - set(outputs))
    if missing:
        problems.append(f"outputs missing: {', '.join(missing)}")
    for key, value in sorted(outputs.items()):
        if value.ndim == 0 or value.shape[0] != rows:
            problems.append(f"output {key!r} has shape {list(value.shape)}, not [{rows}, ...]")
        elif value.dtype == object and not all(_is_utf8(v) for v in value.reshape(-1)):
            problems.append(f"output {key!r} holds invalid UTF-8 (REST answers are JSON)")
    text = outputs.get("text")
    if text is not None and (text.dtype != object or text.ndim != 1):
        problems.append(f"output 'text' is {text.dtype} of rank {text.ndim}, not 1-D strings")
    return problems


def _is_utf8(value):
    try:
        bytes(value).decode("utf-8")
    except (TypeError, UnicodeDecodeError):
        return False
    return True


def _differences(got, want):
    """Where the C API's outputs differ from ``tf.saved_model.load``'s."""
    import numpy as np

    if set(got) != set(want):
        return [f"C API outputs {sorted(got)} != tf.saved_model.load outputs {sorted(want)}"]
    differences = []
    for key in sorted(want):
        a, b = got[key], want[key]
        if a.shape != b.shape:
            differences.append(f"{key!r}: shape {list(a.shape)} (C API) != {list(b.shape)}")
        elif a.dtype.kind == "f" or b.dtype.kind == "f":
            if not np.allclose(a, b, rtol=1e-5, atol=1e-5, equal_nan=True):
                differences.append(f"{key!r} differs from tf.saved_model.load "
                                   f"(max |diff| {np.max(np.abs(a - b)):.3g})")
        elif not np.array_equal(a, b):
            differences.append(f"{key!r} differs from tf.saved_model.load")
    return differences


def _describe(outputs, rows, compared):
    if rows == 0:
        summary = "0 rows, every output empty"
    else:
        texts = [bytes(t).decode("utf-8") for t in outputs["text"][:2]]
        shown = ", ".join(repr(t if len(t) <= 24 else t[:21] + "...") for t in texts)
        summary = f"{rows} row{'s' * (rows > 1)}; text {shown}{', ...' * (rows > 2)}"
    return summary + ("; = tf.saved_model.load" if compared else "")


def export_verified(export, base_path, version=None, op_check=True, python=sys.executable):
    """Exports, verifies, and only then publishes a version; returns ``(path, report)``,
    ``path`` being ``None`` when a check failed (nothing is then left in ``base_path``).

    Args:
        export: ``export(base_path, version) -> version directory`` (e.g. a closure over
            ``exporters.export_run``); it is called with a staging base path, a hidden
            ``.tmp-verify-*/<name>`` directory inside ``base_path`` (TF Serving and the local
            server only look at integer names), so the warm-up records keep the model name.
        version: as for the exporters (``None``: one more than the largest in ``base_path``).
    """
    from tfseq2seq.export.versions import choose_version

    base_path = os.fspath(base_path)
    version = choose_version(base_path, version)  # fails before the slow part
    os.makedirs(base_path, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base_path)
    try:
        staged = export(os.path.join(staging, os.path.basename(os.path.abspath(base_path))),
                        version)
        report = verify_export(staged, op_check=op_check, python=python)
        final = os.path.join(base_path, str(version))
        if not report.ok:
            report.path = f"{final} (not written)"
            return None, report
        if os.path.exists(final):
            raise FileExistsError(f"version {version} appeared in {base_path} during export")
        os.rename(staged, final)  # atomic on one file system: the staging dir is inside
        report.path = final
        return final, report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
