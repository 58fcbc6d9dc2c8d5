"""The ``tfseq2seq`` command line: train, evaluate, translate, plot-attention, data,
export, serve, query, demo. Each command's heavy imports happen only when it runs."""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CliError(Exception):
    """An error to print as one line (no traceback) before exiting with status 2."""


def cmd_train(args):
    from tfseq2seq.config import load_config
    from tfseq2seq.training import train

    overrides = args.set + ([f"training.strategy={args.strategy}"] if args.strategy else [])
    config = load_config(args.config, overrides)
    history = train(config, args.run_dir, verbose=0 if args.quiet else 1)
    best = min(history.get("val_loss", [float("nan")]))
    print(f"trained {len(history.get('loss', []))} epochs; best dev loss {best:.4f}; "
          f"model: {os.path.join(args.run_dir, 'model.keras')}")


def _translator(run_dir):
    from tfseq2seq.run_dir import load_run
    from tfseq2seq.translator import Translator

    return Translator(load_run(run_dir))


def cmd_evaluate(args):
    from tfseq2seq.evaluation import evaluate, format_table, write_report
    from tfseq2seq.training import load_config_corpus

    translator = _translator(args.run_dir)
    corpus = load_config_corpus(translator.run.config)
    beam = args.beam or None
    metrics, outputs = evaluate(translator, corpus, args.split, beam, args.length_penalty,
                                limit=args.limit, progress=not args.quiet)
    suffix = f"_beam{beam}" if beam and beam > 1 else ""
    path = args.output or os.path.join(args.run_dir, f"eval_{args.split}{suffix}.json")
    refs = [ex.references for ex in corpus.examples(args.split)[: args.limit]]
    write_report(metrics, outputs, refs, path)
    print(format_table(metrics))
    print(f"written: {path}")


def _inputs(texts):
    if texts:
        return texts
    lines = [line.rstrip("\n") for line in sys.stdin]
    if not lines:
        raise CliError("no input: give texts as arguments or one per line on stdin")
    return lines


def cmd_translate(args):
    translator = _translator(args.run_dir)
    for t in translator.translate(_inputs(args.texts), beam_width=args.beam or None,
                                  length_penalty=args.length_penalty):
        print(f"{t.source}\t{t.text}")
        if args.show_attention:
            for token, row in zip(t.tokens, t.attention):
                cells = " ".join(f"{s}:{w:.2f}" for s, w in zip(t.source_tokens, row))
                print(f"  {token}\t{cells}")


def cmd_plot_attention(args):
    from tfseq2seq.plotting import plot_attention

    translation = _translator(args.run_dir).translate([args.text], beam_width=args.beam or None)[0]
    print(f"{translation.source}\t{translation.text}")
    print(f"written: {plot_attention(translation, args.output)}")


def cmd_data_export(args):
    from tfseq2seq.datasets import export_corpus, load_corpus

    kwargs = {}
    if args.name == "tsv":
        if not args.train:
            raise CliError("data export tsv needs --train (and optionally --dev, --test)")
        kwargs = dict(train=args.train, dev=args.dev, test=args.test)
    corpus = load_corpus(args.name, **kwargs)
    for split, path in export_corpus(corpus, args.dir).items():
        print(f"{split}\t{corpus.stats()[split]['pairs']} lines\t{path}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfseq2seq",
        description="Train, evaluate, export and serve recurrent seq2seq models with Luong attention.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("--run-dir", required=True, help="directory for the model, vocabularies, logs")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=2 (repeatable)")
    p.add_argument("--strategy", choices=["default", "mirrored", "multi_worker"],
                   help="distribution strategy (overrides training.strategy): one device, "
                        "all local GPUs, or several workers from TF_CONFIG (docs/distributed.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a trained model on a split of its corpus")
    p.add_argument("run_dir")
    p.add_argument("--split", choices=["dev", "test"], default="dev")
    p.add_argument("--beam", type=int, default=0, help="beam width (default: greedy)")
    p.add_argument("--length-penalty", type=float, default=0.6)
    p.add_argument("--limit", type=int, default=None, help="only the first N examples")
    p.add_argument("--output", help="JSON report path (default: RUN_DIR/eval_SPLIT.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("translate", help="decode texts (arguments or stdin lines)")
    p.add_argument("run_dir")
    p.add_argument("texts", nargs="*", help="inputs; read from stdin when none")
    p.add_argument("--beam", type=int, default=0, help="beam width (default: greedy)")
    p.add_argument("--length-penalty", type=float, default=0.6)
    p.add_argument("--show-attention", action="store_true",
                   help="after each line, print each output token's attention over the source")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("plot-attention", help="write an attention heatmap PNG for one input")
    p.add_argument("run_dir")
    p.add_argument("text")
    p.add_argument("-o", "--output", default="attention.png")
    p.add_argument("--beam", type=int, default=0)
    p.set_defaults(func=cmd_plot_attention)

    p = sub.add_parser("data", help="corpus utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    e = data_sub.add_parser("export", help="write a corpus as DIR/{train,dev,test}.tsv")
    e.add_argument("name", choices=["cmudict", "cedict", "tsv"])
    e.add_argument("dir")
    e.add_argument("--train")
    e.add_argument("--dev")
    e.add_argument("--test")
    e.set_defaults(func=cmd_data_export)

    from tfseq2seq.cli_serving import add_serving_commands

    add_serving_commands(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("tfseq2seq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 — known user errors become one line
        if not _is_user_error(e) or os.environ.get("TFSEQ2SEQ_DEBUG"):
            raise
        print(f"tfseq2seq: error: {e}", file=sys.stderr)
        return 2
    return 0


def _is_user_error(error):
    from tfseq2seq.client import ServingError
    from tfseq2seq.config import ConfigError

    known = (CliError, ConfigError, ServingError, OSError, ValueError)
    return isinstance(error, known)


if __name__ == "__main__":
    sys.exit(main())
