"""Shared benchmark helpers: CMUdict data at the reference sizes, timing, RSS, matmul probe.

Every benchmark prints exactly one JSON object on stdout (``print_json``); progress
goes to stderr. Data comes from tfseq2seq's own CMUdict loader, tokenizers,
vocabularies and ``make_dataset`` pipeline, so both the project and the peer see the
same id batches.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfseq2seq import text as text_lib  # noqa: E402
from tfseq2seq.data.batching import make_dataset  # noqa: E402
from tfseq2seq.data.corpora import load_corpus  # noqa: E402

EMBEDDING_DIM, UNITS = 64, 256  # the reference sizes


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def base_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run that finishes in < 1 minute")
    p.add_argument("--embedding-dim", type=int, default=EMBEDDING_DIM)
    p.add_argument("--units", type=int, default=UNITS)
    p.add_argument("--seed", type=int, default=0)
    return p


class G2PData:
    """CMUdict G2P: tokenizers, vocabularies (built on the train split) and word lists."""

    def __init__(self):
        corpus = load_corpus("cmudict")
        self.corpus = corpus
        self.train_pairs = corpus.pairs("train")
        self.test_words = corpus.sources("test")
        self.source_tokenizer = text_lib.make_tokenizer("char")
        self.target_tokenizer = text_lib.make_tokenizer("whitespace")
        self.source_vocab = _vocab(self.source_tokenizer, [s for s, _ in self.train_pairs])
        self.target_vocab = _vocab(self.target_tokenizer, [t for _, t in self.train_pairs])

    def batches(self, batch_size, count, bucketing=True, seed=0, pairs=None):
        """``count`` training batches ``((src, tgt_in), tgt_out)`` as numpy int32 arrays
        (``count=None``: all of them) of ``pairs`` (default: the whole train split), made
        by the library's input pipeline (``bucketing``: its length-bucketed batches)."""
        ds, _ = make_dataset(pairs or self.train_pairs, self.pipeline(), batch_size,
                             max_source_len=32, max_target_len=40, shuffle=True,
                             seed=seed, bucket_boundaries="auto" if bucketing else None,
                             drop_remainder=pairs is None)
        ds = ds if count is None else ds.take(count)
        return [((s.numpy(), ti.numpy()), to.numpy()) for (s, ti), to in ds]

    def pipeline(self):
        """The library's ``TextPipeline`` for these tokenizers and vocabularies."""
        return text_lib.TextPipeline(self.source_tokenizer, self.target_tokenizer,
                                     self.source_vocab, self.target_vocab)

    def save_vocabs(self, directory):
        os.makedirs(directory, exist_ok=True)
        paths = (os.path.join(directory, "source.txt"), os.path.join(directory, "target.txt"))
        self.source_vocab.save(paths[0])
        self.target_vocab.save(paths[1])
        return paths


def _vocab(tokenizer, texts):
    tokens = []
    for start in range(0, len(texts), 8192):
        rows = tokenizer.tokenize(tf.constant(texts[start:start + 8192])).to_list()
        tokens.extend([t.decode("utf-8") for t in row] for row in rows)
    return text_lib.Vocabulary.build(tokens)


def as_dataset(batches):
    """A ``tf.data.Dataset`` yielding the given (variable-shape) batches in order."""
    spec = ((tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)),
            tf.TensorSpec([None, None], tf.int32))
    return tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=spec)


def target_tokens(batches):
    return int(sum(np.count_nonzero(y) for _, y in batches))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_gflops(n=1024, seconds=2.0):
    """Measured float32 ``[n, n] @ [n, n]`` GFLOP/s of this machine (TF, all threads)."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])

    @tf.function
    def mm(a, b):
        return tf.reduce_sum(tf.matmul(a, b))

    mm(a, b).numpy()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and reps < 10_000:
        mm(a, b).numpy()
        reps += 1
    return 2.0 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def percentiles_ms(samples):
    a = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3), "n": int(a.size)}


def ratio(a, b):
    return round(float(a) / float(b), 3) if b else None


def median_ratio(numerators, denominators):
    """The median of the paired ratios ``a / b`` (e.g. per round or per batch, so that load
    hitting a round hits both sides of its ratio), rounded to 3 places."""
    return round(statistics.median(a / b for a, b in zip(numerators, denominators)), 3)


def header(command_args):
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.argv[0])] + list(command_args)),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "tensorflow": tf.__version__, "loadavg_start": os.getloadavg()[0]},
    }


def print_json(result):
    result.setdefault("machine", {})["loadavg_end"] = os.getloadavg()[0]
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result, indent=1, sort_keys=False))


CACHE_DIR = os.environ.get("TFSEQ2SEQ_BENCH_CACHE", "/tmp/tfseq2seq-bench")


def trained_project_model(data, embedding_dim=EMBEDDING_DIM, units=UNITS, steps=300, seed=0):
    """A ``Seq2Seq`` with the peer's architecture (GRU, dot, concat), trained ``steps``
    teacher-forced batches of 128 so that it emits ``<end>`` at sensible lengths.

    The weights are cached in ``CACHE_DIR`` (``TFSEQ2SEQ_BENCH_CACHE``) so the decode and
    serving benchmarks reuse them.
    """
    import keras

    from tfseq2seq import Seq2Seq

    keras.utils.set_random_seed(seed)
    model = Seq2Seq(len(data.source_vocab), len(data.target_vocab), embedding_dim, units,
                    cell="gru", attention="dot", combine="concat", seed=seed)
    path = os.path.join(CACHE_DIR, f"g2p_dot_e{embedding_dim}_u{units}_s{steps}_seed{seed}.weights.h5")
    if os.path.exists(path):
        model.load_weights(path)
        return model
    model.compile(optimizer=keras.optimizers.Adam(0.003, clipnorm=1.0))
    log(f"training the benchmark model for {steps} steps (cached in {path})")
    batches = data.batches(128, steps, seed=seed)
    model.fit(as_dataset(batches), epochs=1, verbose=0)
    os.makedirs(CACHE_DIR, exist_ok=True)
    model.save_weights(path)
    return model


def export_project_model(data, model, base_path, **options):
    """Exports ``model`` with tfseq2seq's exporter; returns the version directory."""
    from tfseq2seq.export import export_model

    vocab_dir = os.path.join(base_path + "-vocab")
    return export_model(model, data.source_tokenizer, data.target_tokenizer,
                        *data.save_vocabs(vocab_dir), base_path, **options)
