"""Training speed: target tokens/s of tfseq2seq vs the Keras built-ins peer (one process).

Configurations (same CMUdict batches for all): the peer (teacher-forced, Keras defaults,
so no XLA on CPU), and tfseq2seq with teacher forcing (``tf``) and with scheduled
sampling (``ss``, inverse_sigmoid), each with and without ``jit_compile``. Every
configuration first makes one warm-up pass over the batches (tracing, XLA compiles for
every shape), then ``--rounds`` timed passes of ``train_on_batch`` calls, interleaved
per batch (all configurations run batch i back to back) so that background load hits
them alike. tokens/s use the per-batch median over rounds; the ratio is the median over
batches of the per-batch ratio.

Also: FLOPs per target token counted from the layer sizes (the model's matmuls, as the
peer computes them; training = 3x forward), the achieved GFLOP/s, the measured float32
matmul GFLOP/s, and with ``--profile`` a per-part timing (encoder, decoder, loss,
backward, optimizer).

``--pipelines`` adds the end-to-end comparison: the same ``--examples`` training pairs,
the peer on plain shuffled padded batches (what ``padded_batch`` gives a Keras user),
tfseq2seq on its own length-bucketed batches; real target tokens per second.

    python benchmarks/train_speed.py --pipelines     # reference sizes, batch 128/32/512
    python benchmarks/train_speed.py --quick         # smoke run (< 1 minute)
"""

import collections
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)
import keras  # noqa: E402
import numpy as np  # noqa: E402
from peer import Peer  # noqa: E402

from tfseq2seq import Seq2Seq  # noqa: E402
from tfseq2seq.schedules import ScheduledSampling  # noqa: E402

CONFIGS = ("peer", "tf", "tf_jit", "ss", "ss_jit")


def parse_args(argv=None):
    p = common.base_parser(__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", default="128,32,512", help="comma-separated")
    p.add_argument("--examples", type=int, default=4096,
                   help="examples per timed pass (batches = examples // batch size)")
    p.add_argument("--rounds", type=int, default=3, help="timed passes per configuration")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"subset of {CONFIGS}")
    p.add_argument("--attention", default="dot", help="the project's score (the peer's is dot)")
    p.add_argument("--no-bucketing", action="store_true", help="plain padded batches")
    p.add_argument("--max-shapes", type=int, default=4,
                   help="keep only batches of the N most common (src_len, tgt_len) shapes, so "
                        "jit_compile compiles N programs, not one per batch (0 = all)")
    p.add_argument("--profile", action="store_true", help="add per-part timings at the first batch size")
    p.add_argument("--pipelines", action="store_true",
                   help="also measure each side with its own input pipeline (peer: padded "
                        "shuffled batches; tfseq2seq: its length-bucketed batches)")
    p.add_argument("--pipelines-only", action="store_true", help="only that measurement")
    args = p.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.examples, args.rounds, args.max_shapes = "32", 64, 1, 1
        if args.configs == ",".join(CONFIGS):
            args.configs = "peer,tf,ss"  # XLA compiles alone take minutes on a loaded machine
    return args


def make_model(name, data, args):
    vs, vt = len(data.source_vocab), len(data.target_vocab)
    keras.utils.set_random_seed(args.seed)
    if name == "peer":
        peer = Peer(vs, vt, args.embedding_dim, args.units)
        peer.compile()
        return peer.model
    sampling = ScheduledSampling("inverse_sigmoid", k=1000.0) if name.startswith("ss") else None
    model = Seq2Seq(vs, vt, args.embedding_dim, args.units, cell="gru", attention=args.attention,
                    combine="concat", sampling=sampling, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(), jit_compile=name.endswith("_jit"))
    return model


def step_seconds(model, batch):
    """Wall time of one ``train_on_batch`` (synchronous: it returns the loss as a float)."""
    (src, tgt_in), tgt_out = batch
    start = time.perf_counter()
    model.train_on_batch((src, tgt_in), tgt_out)
    return time.perf_counter() - start


def timed_pass(model, batches):
    """Seconds of one pass over ``batches``, one ``train_on_batch`` each."""
    return sum(step_seconds(model, b) for b in batches)


def flops_per_target_token(batches, e, u, vt, attention):
    """Matmul FLOPs of one training step (3x forward) per real target token."""
    gru_in, gru_rec = 2 * e * 3 * u, 2 * u * 3 * u
    dec_fixed = gru_in + gru_rec + 2 * 2 * u * u + 2 * u * vt
    total, tokens = 0.0, 0
    for (src, _), tgt_out in batches:
        s = np.count_nonzero(src, axis=1).astype(np.float64)
        t = np.count_nonzero(tgt_out, axis=1).astype(np.float64)
        memory = 2 * u * u * s if attention == "general" else 0.0
        total += np.sum(s * (gru_in + gru_rec) + memory + t * (dec_fixed + 4 * u * s))
        tokens += int(t.sum())
    return 3.0 * total / tokens


def bench_batch_size(data, args, batch_size, configs):
    count = max(2, args.examples // batch_size)
    batches = data.batches(batch_size, count * (4 if args.max_shapes else 1),
                           bucketing=not args.no_bucketing, seed=args.seed)
    if args.max_shapes:
        shapes = collections.Counter((x[0].shape, y.shape) for x, y in batches)
        keep = {s for s, _ in shapes.most_common(args.max_shapes)}
        batches = [b for b in batches if (b[0][0].shape, b[1].shape) in keep][:count]
        count = len(batches)
    tokens = common.target_tokens(batches)
    models, warmup = {}, {}
    for name in configs:
        models[name] = make_model(name, data, args)
        warmup[name] = round(timed_pass(models[name], batches), 2)
        common.log(f"batch {batch_size} {name}: warm-up {warmup[name]} s")
    # Round-robin per batch: every configuration runs the same batch back to back, so
    # background load (seconds-scale) hits them alike; ratios are per batch.
    times = {name: [[] for _ in batches] for name in configs}
    for r in range(args.rounds):
        for i, batch in enumerate(batches):
            for name in configs:
                times[name][i].append(step_seconds(models[name], batch))
        common.log(f"batch {batch_size} round {r}: " + ", ".join(
            f"{n} {tokens / sum(t[-1] for t in times[n]):.0f} tok/s" for n in configs))
    per_batch = {n: [statistics.median(t) for t in times[n]] for n in configs}  # median over rounds
    result = {"batches": count, "shapes": sorted({(x[0].shape[1], y.shape[1]) for x, y in batches}),
              "target_tokens_per_pass": tokens,
              "padded_target_fraction": round(1 - tokens / sum(y.size for _, y in batches), 3),
              "warmup_s": warmup, "tokens_per_s": {}, "ratio_vs_peer_median": {}}
    for name in configs:
        result["tokens_per_s"][name] = round(tokens / sum(per_batch[name]), 1)
        if "peer" in configs and name != "peer":
            result["ratio_vs_peer_median"][name] = common.median_ratio(
                per_batch["peer"], per_batch[name])  # seconds: the peer's over this one's
    result["_models"] = models
    result["_batches"] = batches
    return result


def bench_pipelines(data, args, batch_size, configs):
    """Each side with its own input pipeline over the same examples: the peer on shuffled
    padded batches (``padded_batch``, what a Keras user writes), tfseq2seq on its
    length-bucketed batches. Real (non-padding) target tokens per second per pass; the
    ratio is the median over rounds of the per-round ratio."""
    configs = [c for c in configs if not c.endswith("_jit")]  # XLA: one compile per shape
    rng = np.random.default_rng(args.seed)
    pairs = [data.train_pairs[i] for i in rng.permutation(len(data.train_pairs))[:args.examples]]
    inputs = {"peer": data.batches(batch_size, None, bucketing=False, seed=args.seed, pairs=pairs),
              "project": data.batches(batch_size, None, bucketing=True, seed=args.seed, pairs=pairs)}
    feed = {name: inputs["peer" if name == "peer" else "project"] for name in configs}
    tokens = {name: common.target_tokens(b) for name, b in feed.items()}
    models = {name: make_model(name, data, args) for name in configs}
    warmup = {name: round(timed_pass(models[name], feed[name]), 2) for name in configs}
    seconds = {name: [] for name in configs}
    for r in range(args.rounds):
        # Interleaved batch by batch (batch i of every side back to back), so background
        # load hits all sides alike; a side with fewer batches just finishes first.
        for name in configs:
            seconds[name].append(0.0)
        for i in range(max(len(b) for b in feed.values())):
            for name in configs:
                if i < len(feed[name]):
                    seconds[name][-1] += step_seconds(models[name], feed[name][i])
        common.log(f"pipelines batch {batch_size} round {r}: " + ", ".join(
            f"{n} {tokens[n] / seconds[n][-1]:.0f} tok/s" for n in configs))
    result = {
        "examples": len(pairs), "batches": {k: len(v) for k, v in inputs.items()},
        "padded_target_fraction": {k: round(1 - common.target_tokens(v) / sum(y.size for _, y in v), 3)
                                   for k, v in inputs.items()},
        "warmup_s": warmup,
        "tokens_per_s": {n: round(tokens[n] / statistics.median(seconds[n]), 1) for n in configs},
        "ratio_vs_peer_median": {}}
    if "peer" in configs:
        for name in configs:
            if name != "peer":
                result["ratio_vs_peer_median"][name] = common.median_ratio(
                    [tokens[name] / t for t in seconds[name]],
                    [tokens["peer"] / p for p in seconds["peer"]])
    return result


def main(argv=None):
    args = parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    data = common.G2PData()
    out = common.header(sys.argv[1:] if argv is None else argv)
    out.update(benchmark="train_speed", sizes={
        "embedding_dim": args.embedding_dim, "units": args.units, "layers": 1, "cell": "gru",
        "project_attention": args.attention, "combine": "concat", "bucketing": not args.no_bucketing,
        "source_vocab": len(data.source_vocab), "target_vocab": len(data.target_vocab)})
    out["matmul_gflops_start"] = round(common.matmul_gflops(seconds=0.5 if args.quick else 2.0), 1)
    out["results"] = {}
    for i, bs in enumerate(int(b) for b in args.batch_sizes.split(",")):
        if args.pipelines_only:
            out.setdefault("own_pipelines", {})[f"batch_{bs}"] = bench_pipelines(data, args, bs, configs)
            continue
        res = bench_batch_size(data, args, bs, configs)
        models, batches = res.pop("_models"), res.pop("_batches")
        fpt = flops_per_target_token(batches, args.embedding_dim, args.units,
                                     len(data.target_vocab), args.attention)
        res["flops_per_target_token"] = round(fpt)
        res["achieved_gflops"] = {n: round(fpt * v / 1e9, 2) for n, v in res["tokens_per_s"].items()}
        if args.profile and i == 0:
            import profile_parts
            res["profile_s_per_pass"] = profile_parts.profile(models, batches, args)
        out["results"][f"batch_{bs}"] = res
        del models
        if args.pipelines:
            out.setdefault("own_pipelines", {})[f"batch_{bs}"] = bench_pipelines(data, args, bs, configs)
    out["matmul_gflops_end"] = round(common.matmul_gflops(seconds=0.5 if args.quick else 2.0), 1)
    matmul = (out["matmul_gflops_start"] + out["matmul_gflops_end"]) / 2
    for res in out["results"].values():
        res["fraction_of_matmul_limit"] = {n: round(g / matmul, 4) for n, g in res["achieved_gflops"].items()}
    common.print_json(out)


if __name__ == "__main__":
    main()
