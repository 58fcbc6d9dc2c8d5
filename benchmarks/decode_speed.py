"""Decoding speed: the exported ``serving_default`` signature vs the peer's greedy loop.

One model (GRU, dot attention, concat combine, trained briefly; see
``common.trained_project_model``) is exported with tfseq2seq's exporter and loaded back
from disk with ``tf.saved_model.load``; its weights are copied into the peer
(``peer.Peer``), so both compute the same function and stop after the same number of
steps (``agreement`` reports the fraction of identical outputs). Measured on CMUdict
test words, alternating project / peer call by call:

- words/s at ``--batch-size`` (256): consecutive test-word batches;
- p50/p99 latency at batch 1: one word per call, string in, string out; ``batch_1``
  switches runner every call (each call starts with the others' data in the caches),
  ``batch_1_warm`` every ``--block`` calls (what one model on a server sees); both
  alternate over the same words, so machine noise hits every runner alike.

``--capi`` adds the default export (and, with ``--xla``, the XLA export) run through TensorFlow's C API session loader
(``tfseq2seq.export.capi``, the C++ ``LoadSavedModel`` path TF Serving uses): the same
graph without Python's signature-call layer, i.e. closer to what a TF Serving
``Predict`` costs inside the server.

    python benchmarks/decode_speed.py            # reference sizes
    python benchmarks/decode_speed.py --quick    # smoke run
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from peer import Peer  # noqa: E402

from tfseq2seq.util.argtypes import nonnegative_int  # noqa: E402


def parse_args(argv=None):
    p = common.base_parser(__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batches", type=int, default=20, help="timed batches per side")
    p.add_argument("--single", type=int, default=500, help="timed batch-1 calls per side")
    p.add_argument("--train-steps", type=int, default=300, help="training of the decoded model")
    p.add_argument("--block", type=int, default=25,
                   help="batch_1_warm: each runner takes this many words in a row (warm caches, "
                        "as on a server that runs one model), runners still alternating")
    p.add_argument("--xla", action="store_true", help="also export with jit_compile=True")
    p.add_argument("--capi", action="store_true",
                   help="also run the default export through the C API session loader")
    p.add_argument("--only", type=lambda text: set(text.split(",")),
                   help="comma-separated project runners to keep (project, project_capi, "
                        "project_xla, project_xla_capi); the peer always runs. Fewer models "
                        "in the process: less cache and thread-pool sharing")
    p.add_argument("--intra-op-threads", type=nonnegative_int, default=0,
                   help="TensorFlow's intra-op pool size for everything in this process (the "
                        "exports through both loaders and the peer; 0 = TensorFlow's choice, one "
                        "per core); what TF Serving's --tensorflow_intra_op_parallelism sets")
    args = p.parse_args(argv)
    if args.intra_op_threads:  # read when TensorFlow makes its pools: nothing has run yet
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.intra_op_threads)
    runners = {"project", "project_capi", "project_xla", "project_xla_capi"}
    if args.only and args.only - runners:
        p.error(f"--only: unknown runner(s) {sorted(args.only - runners)}; "
                f"choose from {sorted(runners)}")
    if args.quick:
        args.batches, args.single, args.train_steps = 2, 30, 20
    return args


def run_project(signature):
    def run(words):
        out = signature(text=tf.constant(words))
        return [t.decode() for t in out["text"].numpy()]
    return run


def run_capi(saved_model):
    def run(words):
        out = saved_model.run("serving_default", {"text": np.array(words, dtype=object)})
        return [t.decode() for t in out["text"]]
    return run


def run_peer(fn):
    def run(words):
        return [t.decode() for t in fn(tf.constant(words)).numpy()]
    return run


def alternate(runners, inputs, block=1):
    """Calls the runners in turn on ``block`` consecutive inputs each (1: input by input);
    returns {name: [seconds...]}."""
    times = {name: [] for name in runners}
    for i in range(0, len(inputs), block):
        for name, run in runners.items():
            for x in inputs[i:i + block]:
                start = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - start)
    return times


def main(argv=None):
    args = parse_args(argv)
    data = common.G2PData()
    out = common.header(sys.argv[1:] if argv is None else argv)
    out["benchmark"] = "decode_speed"
    out["intra_op_threads"] = args.intra_op_threads or "auto"
    model = common.trained_project_model(data, args.embedding_dim, args.units, args.train_steps, args.seed)
    runners = {}
    wanted = lambda name: args.only is None or name in args.only  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        path = common.export_project_model(data, model, os.path.join(tmp, "g2p"))
        if wanted("project"):
            runners["project"] = run_project(tf.saved_model.load(path).signatures["serving_default"])
        if args.capi:
            from tfseq2seq.export.capi import CApiSavedModel
            if wanted("project_capi"):
                runners["project_capi"] = run_capi(CApiSavedModel(path))  # loaded into memory now
        if args.xla:
            path = common.export_project_model(data, model, os.path.join(tmp, "g2p_xla"), jit_compile=True)
            if wanted("project_xla"):
                runners["project_xla"] = run_project(tf.saved_model.load(path).signatures["serving_default"])
            if args.capi and wanted("project_xla_capi"):
                runners["project_xla_capi"] = run_capi(CApiSavedModel(path))
    if not runners:
        raise SystemExit(f"--only {sorted(args.only)} keeps no runner (with --xla / --capi as given)")
    peer = Peer(len(data.source_vocab), len(data.target_vocab), args.embedding_dim, args.units)
    peer.copy_from_project(model)
    runners["peer"] = run_peer(peer.greedy_function(data.source_vocab.token_list,
                                                    data.target_vocab.token_list))
    words, bs = data.test_words, args.batch_size
    batches = [words[i * bs:(i + 1) * bs] for i in range(min(args.batches, len(words) // bs))]
    outputs = {name: run(batches[0]) for name, run in runners.items()}
    alternate(runners, batches)  # warm-up: every shape once (XLA compiles per padded shape)
    out["agreement_with_peer"] = {n: float(np.mean([a == b for a, b in zip(o, outputs["peer"])]))
                                  for n, o in outputs.items() if n != "peer"}
    out["mean_output_tokens"] = float(np.mean([len(t.split()) for t in outputs["peer"]]))
    times = alternate(runners, batches)
    out[f"batch_{bs}"] = {
        "words_per_s": {n: round(bs / statistics.median(t), 1) for n, t in times.items()},
        "ratio_vs_peer_median": {n: round(statistics.median(
            [p / s for s, p in zip(t, times["peer"])]), 3) for n, t in times.items() if n != "peer"}}
    singles = [[w] for w in words[bs * len(batches):][:args.single]]
    by_length = {len(w[0]): w for w in singles}
    alternate(runners, list(by_length.values()) + singles[:20])  # warm-up: every length once
    for key, block in (("batch_1", 1), ("batch_1_warm", args.block)):
        times = alternate(runners, singles, block)
        out[key] = {n: common.percentiles_ms(t) for n, t in times.items()}
        out[key]["p50_ratio_vs_peer"] = {
            n: common.ratio(out[key]["peer"]["p50_ms"], out[key][n]["p50_ms"])
            for n in runners if n != "peer"}
    common.print_json(out)


if __name__ == "__main__":
    main()
