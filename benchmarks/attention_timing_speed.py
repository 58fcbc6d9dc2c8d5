"""Question 3's speed: training steps and decoding of trained runs that differ in attention
timing (Luong: c_t from h_t; Bahdanau: c_t from h_{t-1}), measured in one process,
interleaved round by round so that background load hits every run alike.

Per run: training target tokens/s of ``train_on_batch`` on the same dev batches (the run's
own model and loss, a fresh Adam), with scheduled sampling as the run was trained and
always teacher-forced (where Luong timing attends for all steps in one matmul); decoding
words/s of ``Translator.translate`` on the same dev words, greedy and beam. Ratios are
against the first run, the median over rounds of the per-round ratio.

    python benchmarks/attention_timing_speed.py runs/ablate/q3-attention-timing/luong/seed0 \\
        runs/ablate/q3-attention-timing/bahdanau/seed0 > q3-speed.json
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

from tfseq2seq.util.argtypes import positive_int


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run that finishes in < 1 minute")
    p.add_argument("runs", nargs="+", help="trained run directories (the first is the reference)")
    p.add_argument("--words", type=positive_int, default=2048, help="dev words per decoding pass")
    p.add_argument("--batches", type=positive_int, default=40,
                   help="training batches per timed pass")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--rounds", type=positive_int, default=3, help="timed passes per run")
    p.add_argument("--beam-width", type=positive_int, default=5)
    args = p.parse_args(argv)
    if args.quick:
        args.words, args.batches, args.rounds = 64, 2, 1
    return args


class Subject:
    """One run: its model compiled for training, its batches, its translator and words."""

    def __init__(self, path, args):
        import keras

        from tfseq2seq.data.batching import make_dataset
        from tfseq2seq.data.corpora import load_config_corpus
        from tfseq2seq.inference.translator import Translator
        from tfseq2seq.losses import MaskedCrossEntropy
        from tfseq2seq.run_dir import load_run
        from tfseq2seq.text.pipeline import TextPipeline

        self.run = run = load_run(path)
        forced = type(run.model).from_config({**run.model.get_config(), "sampling": None})
        forced.set_weights(run.model.get_weights())
        # as trained (scheduled sampling if the run had it) and always teacher-forced
        self.models = {"train": run.model, "teacher_forced_train": forced}
        smoothing = run.config.training.label_smoothing
        for model in self.models.values():
            model.compile(optimizer=keras.optimizers.Adam(1e-4),
                          loss=MaskedCrossEntropy(label_smoothing=smoothing))
        examples = load_config_corpus(run.config).examples("dev")
        pairs = [(ex.source, ex.references[0]) for ex in examples]
        pairs = (pairs * (1 + args.batch_size * args.batches // len(pairs)))[
            : args.batch_size * args.batches]
        dataset, _ = make_dataset(pairs, TextPipeline.from_run(run), args.batch_size,
                                  shuffle=False, max_source_len=run.config.data.max_source_len,
                                  max_target_len=run.config.data.max_target_len,
                                  overlong="truncate", bucket_boundaries="auto")
        self.batches = list(dataset)
        self.tokens = common.target_tokens([(x, y.numpy()) for x, y in self.batches])
        self.translator = Translator(run)
        self.words = [ex.source for ex in examples][: args.words]
        model = run.config.model
        self.describe = {"run": path, "attention_timing": model.attention_timing,
                         "attention": model.attention, "input_feeding": model.input_feeding,
                         "cell": model.cell, "units": model.units,
                         "sampling": run.config.sampling.schedule,
                         "parameters": int(run.model.count_params())}

    def train_pass(self, which):
        """Seconds of one pass of ``train_on_batch`` over the batches."""
        model = self.models[which]
        start = time.perf_counter()
        for (source, target_in), target_out in self.batches:
            model.train_on_batch((source, target_in), target_out)
        return time.perf_counter() - start

    def decode_pass(self, beam):
        start = time.perf_counter()
        self.translator.translate(self.words, beam_width=beam)
        return time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    subjects = [Subject(path, args) for path in args.runs]
    measures = {"train_tokens_per_s": lambda s: s.tokens / s.train_pass("train"),
                "teacher_forced_train_tokens_per_s":
                    lambda s: s.tokens / s.train_pass("teacher_forced_train"),
                "greedy_words_per_s": lambda s: len(s.words) / s.decode_pass(None),
                f"beam{args.beam_width}_words_per_s":
                    lambda s: len(s.words) / s.decode_pass(args.beam_width)}
    for s in subjects:  # trace, compile and warm up every function once, untimed
        s.train_pass("train")
        s.train_pass("teacher_forced_train")
        s.decode_pass(None)
        s.decode_pass(args.beam_width)
    rates = {name: [[] for _ in subjects] for name in measures}
    for r in range(args.rounds):
        for name, measure in measures.items():
            for i, s in enumerate(subjects):
                rates[name][i].append(measure(s))
        common.log(f"round {r}: " + "; ".join(
            f"{name} " + ", ".join(f"{v[-1]:.0f}" for v in rates[name]) for name in measures))
    out = common.header(sys.argv[1:] if argv is None else argv)
    out.update(benchmark="attention_timing_speed", rounds=args.rounds, words=args.words,
               batches=args.batches, batch_size=args.batch_size, runs=[])
    for i, s in enumerate(subjects):
        row = {**s.describe, "train_target_tokens_per_pass": s.tokens}
        for name in measures:
            row[name] = round(statistics.median(rates[name][i]), 1)
            row[name.replace("_per_s", "_ratio_vs_first")] = common.median_ratio(
                rates[name][i], rates[name][0])
        out["runs"].append(row)
    common.print_json(out)


if __name__ == "__main__":
    main()
