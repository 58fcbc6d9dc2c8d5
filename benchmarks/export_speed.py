"""Speed of exported models: words/s at batch 256 and latency at batch 1 of each one's
``serving_default`` and ``beam_search`` signatures, loaded with ``tf.saved_model.load``,
on CMUdict test words. Several exports are timed in one process, round by round in turn
(so background load hits them alike), with ratios against the first — e.g. what an
ensemble costs per request against one of its members. One JSON object on stdout.

    python benchmarks/export_speed.py models/cmudict-g2p --intra-op-threads 1
    python benchmarks/export_speed.py export/member models/cmudict-g2p --intra-op-threads 1
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)

from tfseq2seq.util.argtypes import nonnegative_int, positive_int  # noqa: E402

SIGNATURES = ("serving_default", "beam_search")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="exports: version directories, base paths or preset names (the first "
                        "is the reference of the ratios)")
    p.add_argument("--words", type=positive_int, default=4096,
                   help="test words for the batch-256 rate")
    p.add_argument("--single", type=positive_int, default=300,
                   help="batch-1 calls per round (the first 10 of round 1 are not counted)")
    p.add_argument("--rounds", type=positive_int, default=3, help="timed passes per export")
    p.add_argument("--intra-op-threads", type=nonnegative_int, default=0,
                   help="TensorFlow's intra-op pool (0: one thread per core)")
    return p.parse_args(argv)


def batch_rate(fn, words, tf):
    """Words/s of one pass over ``words`` in batches of 256."""
    start = time.perf_counter()
    for i in range(0, len(words), 256):
        fn(text=tf.constant(words[i:i + 256]))["text"].numpy()
    return len(words) / (time.perf_counter() - start)


def single_seconds(fn, words, tf):
    """Seconds of each batch-1 call, one per word."""
    seconds = []
    for word in words:
        start = time.perf_counter()
        fn(text=tf.constant([word]))["text"].numpy()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    from tfseq2seq.data.corpora import load_corpus
    from tfseq2seq.serving.pretrained import resolve

    paths = [resolve(m) for m in args.models]
    functions = [tf.saved_model.load(p).signatures for p in paths]
    words = load_corpus("cmudict").sources("test")[: args.words]
    rates = {(i, n): [] for i in range(len(paths)) for n in SIGNATURES}
    singles = {(i, n): [] for i in range(len(paths)) for n in SIGNATURES}
    for signatures in functions:
        for name in SIGNATURES:
            signatures[name](text=tf.constant(words[:256]))  # trace and warm up
    for r in range(args.rounds):
        for name in SIGNATURES:
            for i, signatures in enumerate(functions):
                rates[i, name].append(batch_rate(signatures[name], words, tf))
                seconds = single_seconds(signatures[name], words[: args.single], tf)
                singles[i, name].extend(seconds[10:] if r == 0 else seconds)
        common.log(f"round {r}: " + "; ".join(
            f"{name} " + ", ".join(f"{rates[i, name][-1]:.0f}" for i in range(len(paths)))
            for name in SIGNATURES))
    result = {**common.header(sys.argv[1:] if argv is None else argv), "rounds": args.rounds,
              "intra_op_threads": args.intra_op_threads or "auto", "models": []}
    for i, path in enumerate(paths):
        row = {"model": path}
        for name in SIGNATURES:
            row[name] = {"batch_256_words_per_s": round(max(rates[i, name]), 1),
                         "batch_1": common.percentiles_ms(singles[i, name])}
            if i:
                row[name]["batch_256_ratio_vs_first"] = common.median_ratio(
                    rates[i, name], rates[0, name])
                row[name]["batch_1_p50_ratio_vs_first"] = round(
                    statistics.median(singles[i, name]) / statistics.median(singles[0, name]), 3)
        result["models"].append(row)
    common.print_json(result)


if __name__ == "__main__":
    main()
