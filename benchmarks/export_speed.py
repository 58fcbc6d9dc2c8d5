"""Speed of one exported model: words/s at batch 256 and latency at batch 1 of its
``serving_default`` (and ``beam_search``) signature, loaded with ``tf.saved_model.load``,
on CMUdict test words. For model cards; one JSON object on stdout.

    python benchmarks/export_speed.py models/cmudict-g2p --intra-op-threads 1
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="export: a version directory, base path or preset name")
    p.add_argument("--words", type=int, default=4096, help="test words for the batch-256 rate")
    p.add_argument("--single", type=int, default=300, help="timed batch-1 calls")
    p.add_argument("--rounds", type=int, default=3, help="timed passes of --words")
    p.add_argument("--intra-op-threads", type=int, default=0,
                   help="TensorFlow's intra-op pool (0: one thread per core)")
    args = p.parse_args(argv)
    import tensorflow as tf

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    from tfseq2seq.data.corpora import load_corpus
    from tfseq2seq.serving.pretrained import resolve

    path = resolve(args.model)
    signatures = tf.saved_model.load(path).signatures
    words = load_corpus("cmudict").sources("test")[: args.words]
    result = {**common.header(argv if argv is not None else sys.argv[1:]), "model": path,
              "intra_op_threads": args.intra_op_threads or "auto"}
    for name in ("serving_default", "beam_search"):
        fn = signatures[name]
        fn(text=tf.constant(words[:256]))  # warm up
        rates = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for i in range(0, len(words), 256):
                fn(text=tf.constant(words[i:i + 256]))["text"].numpy()
            rates.append(len(words) / (time.perf_counter() - start))
        single = []
        for word in words[: args.single]:
            start = time.perf_counter()
            fn(text=tf.constant([word]))["text"].numpy()
            single.append(time.perf_counter() - start)
        result[name] = {"batch_256_words_per_s": round(max(rates), 1),
                        "batch_1": common.percentiles_ms(single[10:])}
        common.log(name, result[name])
    common.print_json(result)


if __name__ == "__main__":
    main()
