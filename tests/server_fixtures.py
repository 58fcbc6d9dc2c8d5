"""Stub SavedModels following the tfseq2seq serving contract (test helper).

``build_stub(path, upper=False, suffix="")`` writes a SavedModel with the
``serving_default`` and ``beam_search`` signatures: input ``text`` [batch]
tf.string; outputs ``text`` (the input, optionally uppercased and suffixed,
reversed), ``tokens`` (its characters, at most ``MAX_OUT``), ``token_ids``
(code points), ``lengths``, ``scores`` (-lengths; beam: -lengths - 0.5) and
``attention`` zeros [batch, out_len, in_len].  The input ``"__raise__"``
makes the graph fail an assertion (an InvalidArgumentError at run time).
"""

import os
import shutil

import tensorflow as tf

MAX_OUT = 32
_SPEC = tf.TensorSpec([None], tf.string, name="text")


class _Stub(tf.Module):
    def __init__(self):
        super().__init__()
        # Variables, so one traced module can be saved as several versions.
        self.upper = tf.Variable(False, trainable=False)
        self.suffix = tf.Variable("", trainable=False)

    def _decode(self, text, score_offset):
        ok = tf.reduce_all(tf.not_equal(text, "__raise__"))
        with tf.control_dependencies([tf.debugging.Assert(ok, ["stub: forced failure"])]):
            text = tf.identity(text)
        text = tf.cond(self.upper, lambda: tf.strings.upper(text, encoding="utf-8"),
                       lambda: text)
        text = tf.strings.join([text, tf.fill(tf.shape(text), self.suffix.read_value())])
        chars = tf.strings.unicode_split(text, "UTF-8")
        ids = tf.strings.unicode_decode(text, "UTF-8")
        in_lens = tf.cast(chars.row_lengths(), tf.int32)
        rev = tf.reverse_sequence(chars.to_tensor(""), in_lens, seq_axis=1, batch_axis=0)
        rev_ids = tf.reverse_sequence(ids.to_tensor(0), in_lens, seq_axis=1, batch_axis=0)
        in_len = tf.shape(rev)[1]
        out_len = tf.minimum(in_len, MAX_OUT)
        lengths = tf.minimum(in_lens, MAX_OUT)
        batch = tf.shape(text)[0]
        return {
            "text": tf.strings.reduce_join(rev, axis=1),
            "tokens": rev[:, :out_len],
            "token_ids": tf.cast(rev_ids[:, :out_len], tf.int32),
            "lengths": lengths,
            "scores": -tf.cast(lengths, tf.float32) - score_offset,
            "attention": tf.zeros(tf.stack([batch, out_len, in_len]), tf.float32),
        }

    @tf.function(input_signature=[_SPEC])
    def greedy(self, text):
        return self._decode(text, 0.0)

    @tf.function(input_signature=[_SPEC])
    def beam(self, text):
        return self._decode(text, 0.5)


def write_warmup(path, texts=("warm", "up")):
    """Write ``assets.extra/tf_serving_warmup_requests`` with one ``texts`` request."""
    from tfseq2seq.export.warmup import write_warmup_requests

    write_warmup_requests(path, [(list(texts), "serving_default")], model_name="stub")


_MODULE = []


def build_stub(path, upper=False, suffix="", warmup=False):
    if not _MODULE:  # trace once, save many
        _MODULE.append(_Stub())
    module = _MODULE[0]
    module.upper.assign(upper)
    module.suffix.assign(suffix)
    tf.saved_model.save(module, path, signatures={
        "serving_default": module.greedy.get_concrete_function(),
        "beam_search": module.beam.get_concrete_function(),
    })
    if warmup:
        write_warmup(path)
    return path


def build_store(root):
    """Stub versions under ``root``: ``v1`` (with warmup), ``v2`` (uppercase), ``v3``
    (uppercase, suffix "3"), and ``base/`` serving 1 and 2 plus a non-version folder."""
    build_stub(str(root / "v1"), warmup=True)
    build_stub(str(root / "v2"), upper=True)
    build_stub(str(root / "v3"), upper=True, suffix="3")
    base = root / "base"
    base.mkdir()
    shutil.copytree(root / "v1", base / "1")
    shutil.copytree(root / "v2", base / "2")
    (base / "not_a_version").mkdir()
    return root


def expected_text(text, upper=False, suffix=""):
    text = (text.upper() if upper else text) + suffix
    return text[::-1]


# ---------------------------------------------------------------- server subprocesses
class ServerProcess:
    """``python -m tfseq2seq.serving.app`` in a subprocess (so its RSS and sockets are its own)."""

    def __init__(self, base_path, name="stub", *args, startup_timeout=120):
        import subprocess
        import sys
        import threading

        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=repo)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfseq2seq.serving.app", "--model_name", name,
             "--model_base_path", str(base_path), "--port", "0", "--rest_api_port", "0",
             "--log_level", "WARNING", *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=repo)
        self.pid = self.proc.pid
        lines = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(startup_timeout)
        if not lines or not lines[0].startswith("serving model"):
            self.kill()
            raise RuntimeError(f"server did not start: {lines}")
        self.first_line = lines[0]
        self.grpc_target = lines[0].split("grpc=")[1].split()[0]
        self.rest_url = lines[0].split("rest=")[1].strip()
        self.rest_port = int(self.rest_url.rsplit(":", 1)[1])
        self.grpc_port = int(self.grpc_target.rsplit(":", 1)[1])

    def rss_kb(self, field="VmRSS"):
        """Resident memory now (``VmRSS``) or its peak so far (``VmHWM``), in kB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(f"no {field}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
