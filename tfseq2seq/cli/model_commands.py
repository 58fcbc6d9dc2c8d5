"""CLI commands that work with a run directory: train, average, evaluate, translate,
plot-attention, and the corpus utilities (``data``)."""

import os
import sys

from tfseq2seq.cli.errors import CliError

EXPORT_BATCH = 256  # texts per call of an export's signature (evaluate/translate --model)


def add_decoding_options(parser):
    """``--beam N`` / ``--beam-search``, ``--length-penalty``, ``--max-output-len``; what
    is not given comes from the run's ``decoding`` config section (greedy by default)."""
    from tfseq2seq.util.argtypes import nonnegative_int, positive_int

    parser.add_argument("--beam", type=nonnegative_int, default=None, metavar="N",
                        help="beam search of width N (0 or 1: greedy, the default)")
    parser.add_argument("--beam-search", action="store_true",
                        help="beam search of the run's decoding.beam_width (what the exported "
                             "beam_search signature serves)")
    parser.add_argument("--length-penalty", type=float, default=None,
                        help="GNMT length penalty of beam search (default: the run's "
                             "decoding.length_penalty)")
    parser.add_argument("--max-output-len", type=positive_int, default=None,
                        help="most output tokens (default: the run's decoding.max_output_len, "
                             "else 2 * input length + 10)")


def cmd_train(args):
    from tfseq2seq.config import load_config
    from tfseq2seq.training.train import train

    overrides = args.set + ([f"training.strategy={args.strategy}"] if args.strategy else [])
    config = load_config(args.config, overrides)
    history = train(config, args.run_dir, verbose=0 if args.quiet else 1)
    best = min(history.get("val_loss", [float("nan")]))
    wer = f"best dev WER {min(history['val_wer']):.2%}; " if history.get("val_wer") else ""
    print(f"trained {len(history.get('loss', []))} epochs; best dev loss {best:.4f}; {wer}"
          f"model: {os.path.join(args.run_dir, 'model.keras')}")


def epoch_list(text):
    """An ``argparse`` type: comma-separated epoch numbers (``8,9,10``), each >= 1."""
    import argparse

    epochs = []
    for item in text.split(","):
        if not item.strip().isdigit() or int(item) < 1:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated epoch numbers >= 1 such as 8,9,10; got {item.strip()!r}")
        epochs.append(int(item))
    return epochs


def cmd_average(args):
    import json

    from tfseq2seq.training.averaging import AVERAGED, average_checkpoints

    output = average_checkpoints(args.run_dir, args.output, last=args.last, epochs=args.epochs)
    with open(os.path.join(output, AVERAGED), encoding="utf-8") as f:
        files = json.load(f)["files"]
    print(f"averaged {len(files)} epoch weight files of {args.run_dir}: "
          f"{', '.join(os.path.basename(p) for p in files)}")
    print(f"written: {output}")


def _translator(run_dir):
    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run

    return Translator(load_run(run_dir))


def beam_width(args, translator):
    """The beam width to decode with (``None``: greedy): ``--beam N``, or the run's
    ``decoding.beam_width`` with ``--beam-search``."""
    if args.beam_search and args.beam:
        raise CliError("give --beam N or --beam-search, not both")
    return translator.decoding.beam_width if args.beam_search else args.beam


def cmd_evaluate(args):
    from tfseq2seq.data.corpora import load_config_corpus
    from tfseq2seq.inference.evaluation import evaluate, format_table, write_report

    if args.model:
        return _evaluate_export(args)
    if args.run_dir is None:
        raise CliError("give a run directory, or --model NAME|PATH for an export")
    if args.corpus:
        raise CliError("--corpus goes with --model (a run is scored on its own config's corpus)")
    translator = _translator(args.run_dir)
    corpus = load_config_corpus(translator.run.config)
    beam = beam_width(args, translator)
    metrics, outputs = evaluate(translator, corpus, args.split, beam, args.length_penalty,
                                limit=args.limit, progress=not args.quiet,
                                max_output_len=args.max_output_len)
    suffix = f"_beam{beam}" if beam and beam > 1 else ""
    path = args.output or os.path.join(args.run_dir, f"eval_{args.split}{suffix}.json")
    refs = [ex.references for ex in corpus.examples(args.split)[: args.limit]]
    write_report(metrics, outputs, refs, path)
    print(format_table(metrics))
    print(f"written: {path}")


def _evaluate_export(args):
    """``evaluate --model NAME|PATH``: scores an export's own signatures (what TF Serving
    answers) on a split of a registered corpus."""
    from tfseq2seq.inference.evaluation import format_table, score, write_report
    from tfseq2seq.serving.pretrained import Pretrained, resolve
    from tfseq2seq.util.progress import progress_bar

    if args.run_dir is not None:
        raise CliError(f"give a run directory or --model, not both (got {args.run_dir!r} "
                       f"and --model {args.model!r})")
    _refuse_fixed_decoding(args, show_attention=False)
    corpus, family = _named_corpus(args.corpus or "cmudict")
    examples = corpus.examples(args.split)[: args.limit]
    path = resolve(args.model)
    model = Pretrained(path)
    outputs = []
    bar = progress_bar(len(examples), "decoding", enabled=not args.quiet)
    for batch, texts in model.translate_batches([ex.source for ex in examples],
                                                args.beam_search, EXPORT_BATCH):
        outputs.extend(texts)
        bar.update(len(batch))
    bar.close()
    references = [ex.references for ex in examples]
    metrics = score(family, outputs, references)
    metrics.update(split=args.split, decoding="beam_search" if args.beam_search else "greedy",
                   model=path, corpus=corpus.name)
    print(format_table(metrics))
    if args.output:
        translations = [_Scored(ex.source, text) for ex, text in zip(examples, outputs)]
        write_report(metrics, translations, references, args.output)
        print(f"written: {args.output}")


def _named_corpus(spec):
    """``(corpus, metric family)`` of ``--corpus``: a registered corpus name, or a YAML
    config whose ``data`` section names one (TSV paths, metrics)."""
    from tfseq2seq.config import load_config
    from tfseq2seq.data.corpora import load_config_corpus, load_corpus
    from tfseq2seq.inference.evaluation import G2P_CORPORA, metric_family

    if spec.endswith((".yaml", ".yml")):
        config = load_config(spec)
        corpus = load_config_corpus(config)
        return corpus, metric_family(config, corpus.name)
    return load_corpus(spec), "g2p" if spec in G2P_CORPORA else "translation"


class _Scored:
    """An input and its output, as ``write_report`` reads them."""

    def __init__(self, source, text):
        self.source, self.text = source, text


def _refuse_fixed_decoding(args, show_attention):
    """An export's decoding is fixed when it is exported: refuses the options that would
    change it (``--beam-search`` picks its beam_search signature)."""
    given = (("--beam N", args.beam), ("--length-penalty", args.length_penalty),
             ("--max-output-len", args.max_output_len), ("--show-attention", show_attention))
    unsupported = [flag for flag, value in given if value]
    if unsupported:
        raise CliError(f"{', '.join(unsupported)}: not with --model (an export's decoding is "
                       "fixed when it is exported; --beam-search uses its beam_search signature)")


def _inputs(texts):
    if texts:
        return texts
    lines = [line.rstrip("\n") for line in sys.stdin]
    if not lines:
        raise CliError("no input: give texts as arguments or one per line on stdin")
    return lines


def cmd_translate(args):
    if args.model:
        return _translate_with_export(args)
    if args.run_dir is None:
        raise CliError("give a run directory, or --model NAME for a ready model")
    translator = _translator(args.run_dir)
    for t in translator.translate(_inputs(args.texts), beam_width=beam_width(args, translator),
                                  length_penalty=args.length_penalty,
                                  max_output_len=args.max_output_len):
        print(f"{t.source}\t{t.text}")
        if args.show_attention:
            for token, row in zip(t.tokens, t.attention):
                cells = " ".join(f"{s}:{w:.2f}" for s, w in zip(t.source_tokens, row))
                print(f"  {token}\t{cells}")


def _translate_with_export(args):
    """``translate --model NAME``: a ready model (a preset or an export), no run dir."""
    from tfseq2seq.serving.pretrained import Pretrained

    _refuse_fixed_decoding(args, args.show_attention)
    texts = _inputs(([args.run_dir] if args.run_dir is not None else []) + args.texts)
    model = Pretrained.from_preset(args.model)
    for batch, outputs in model.translate_batches(texts, args.beam_search, EXPORT_BATCH):
        for source, output in zip(batch, outputs):
            print(f"{source}\t{output}")


def cmd_plot_attention(args):
    """One heatmap per input; several inputs, ``--greedy-and-beam`` or ``--compare`` give a
    gallery: one row per input, one column per (run, decoding)."""
    from tfseq2seq.inference.plotting import plot_attention_gallery

    if args.greedy_and_beam and (args.beam or args.beam_search):
        raise CliError("--greedy-and-beam decodes both ways; leave out --beam/--beam-search")
    run_dirs = [args.run_dir, *(args.compare or [])]
    columns, titles = [], []
    for run_dir in run_dirs:
        translator = _translator(run_dir)
        if args.greedy_and_beam:
            width = translator.decoding.beam_width
            decodings = [(None, "greedy"), (width, f"beam {width}")]
        else:
            width = beam_width(args, translator)
            decodings = [(width, f"beam {width}" if width and width > 1 else "greedy")]
        for width, name in decodings:
            columns.append(translator.translate(args.texts, beam_width=width,
                                                length_penalty=args.length_penalty,
                                                max_output_len=args.max_output_len))
            titles.append(f"{_short(run_dir)}: {name}" if args.compare else name)
    rows = [[(None, column[i]) for column in columns] for i in range(len(args.texts))]
    for row in rows:
        print("\t".join([row[0][1].source] + [t.text for _, t in row]))
    labelled = args.greedy_and_beam or args.compare
    print(f"written: {plot_attention_gallery(rows, args.output, titles if labelled else None)}")


def _short(run_dir, parts=2):
    """The last ``parts`` components of a run directory, e.g. ``luong/seed0``."""
    return "/".join(os.path.normpath(run_dir).split(os.sep)[-parts:])


def cmd_data_export(args):
    from tfseq2seq.data.corpora import export_corpus, load_corpus

    kwargs = {}
    if args.name == "tsv":
        if not args.train:
            raise CliError("data export tsv needs --train (and optionally --dev, --test)")
        kwargs = dict(train=args.train, dev=args.dev, test=args.test)
    corpus = load_corpus(args.name, **kwargs)
    for split, path in export_corpus(corpus, args.dir).items():
        print(f"{split}\t{corpus.stats()[split]['pairs']} lines\t{path}")


def add_commands(sub):
    """Adds the run-directory commands to the ``tfseq2seq`` sub-parsers."""
    from tfseq2seq.util.argtypes import positive_int

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

    p = sub.add_parser(
        "average", help="average the last epochs' weights into a new run directory",
        description="Averages, element by element, the weights of epochs kept by training "
                    "with training.keep_checkpoints: N (RUN_DIR/checkpoints/epoch-NNN.weights.h5) "
                    "and writes a new, complete run directory OUTPUT (config, vocabularies, "
                    "tokenizers, model.keras, averaged.json) for evaluate, translate and export.")
    p.add_argument("run_dir", help="a run directory trained with training.keep_checkpoints")
    p.add_argument("--output", required=True, metavar="OUTPUT",
                   help="the new run directory (must not exist, or be empty)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=positive_int, metavar="N",
                       help="average the last N kept epochs")
    which.add_argument("--epochs", type=epoch_list, metavar="E1,E2,...",
                       help="average these epochs, e.g. 8,9,10")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("evaluate", help="score a trained model on a split of its corpus",
                       description="Score a run on a split of its corpus, or an export "
                                   "(evaluate --model cmudict-g2p --split dev): the export's own "
                                   "signatures, i.e. what TF Serving answers.")
    p.add_argument("run_dir", nargs="?", help="run directory (not with --model)")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="an export instead of a run: a preset name (models/, $TFSEQ2SEQ_MODELS), "
                        "a model base path or a version directory")
    p.add_argument("--corpus", metavar="NAME|CONFIG",
                   help="with --model: a registered corpus (default cmudict) or a YAML config "
                        "whose data section names the corpus to score on")
    p.add_argument("--split", choices=["dev", "test", "train"], default="dev",
                   help="dev (default), test, or train: how much of its training data the "
                        "model reproduces (e.g. a dictionary it should have memorised)")
    add_decoding_options(p)
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N examples")
    p.add_argument("--output", help="JSON report path (default: RUN_DIR/eval_SPLIT.json; "
                                    "with --model: none unless given)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("translate", help="decode texts (arguments or stdin lines)",
                       description="Decode texts with a run directory's model, or with a "
                                   "ready model: translate --model cmudict-g2p hello world")
    p.add_argument("run_dir", nargs="?", help="run directory (not with --model)")
    p.add_argument("texts", nargs="*", help="inputs; read from stdin when none")
    p.add_argument("--model", metavar="NAME|PATH",
                   help="a ready model instead of a run: a preset name (models/, "
                        "$TFSEQ2SEQ_MODELS) or an export directory")
    add_decoding_options(p)
    p.add_argument("--show-attention", action="store_true",
                   help="after each line, print each output token's attention over the source")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("plot-attention", help="write attention heatmaps (PNG) for inputs",
                       description="Attention heatmaps of a run's model: one per input, in a "
                                   "grid for several inputs (one row each); --greedy-and-beam "
                                   "puts greedy and beam search side by side, --compare other "
                                   "runs beside this one.")
    p.add_argument("run_dir")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="inputs (one row each)")
    p.add_argument("-o", "--output", default="attention.png",
                   help="PNG path (default attention.png)")
    p.add_argument("--greedy-and-beam", action="store_true",
                   help="two columns: greedy and beam search of the run's decoding.beam_width")
    p.add_argument("--compare", nargs="+", metavar="RUN",
                   help="more runs, each its own column(s) beside RUN_DIR's (e.g. the same "
                        "model with another option)")
    add_decoding_options(p)
    p.set_defaults(func=cmd_plot_attention)

    p = sub.add_parser("data", help="corpus utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    e = data_sub.add_parser("export", help="write a corpus as DIR/{train,dev,test}.tsv")
    e.add_argument("name", choices=["cmudict", "cedict", "tsv", "reverse"])
    e.add_argument("dir")
    e.add_argument("--train")
    e.add_argument("--dev")
    e.add_argument("--test")
    e.set_defaults(func=cmd_data_export)
