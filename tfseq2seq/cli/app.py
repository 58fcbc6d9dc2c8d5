"""The ``tfseq2seq`` command line: the parser and ``main``. Commands live by what they
work with: ``model_commands`` (train, evaluate, translate, plot-attention, data) and
``serving_commands`` (export, serve, query, demo); each imports its heavy modules only
when it runs, so ``tfseq2seq --help`` loads no TensorFlow."""

import argparse
import os
import sys

from tfseq2seq.cli import model_commands, serving_commands
from tfseq2seq.cli.errors import is_user_error

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfseq2seq",
        description="Train, evaluate, export and serve recurrent seq2seq models with Luong attention.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model_commands.add_commands(sub)
    serving_commands.add_commands(sub)
    return parser


def parse_args(argv=None):
    """Parses ``argv``; the texts of ``translate`` and ``query`` may come before, between
    and after options, and everything after ``--`` is a text (even ``-x`` or ``""``)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    tail = None
    if "--" in argv:
        at = argv.index("--")
        argv, tail = argv[:at], argv[at + 1:]
    args, extra = parser.parse_known_args(argv)
    takes_texts = hasattr(args, "texts")
    if (extra and (not takes_texts or any(e.startswith("-") for e in extra))) or (
            tail is not None and not takes_texts):
        parser.error(f"unrecognized arguments: {' '.join(extra + ['--'] * (tail is not None))}")
    if takes_texts:
        args.texts = [*args.texts, *extra, *(tail or [])]
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("tfseq2seq: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 — known user errors become one line
        if not is_user_error(e) or os.environ.get("TFSEQ2SEQ_DEBUG"):
            raise
        print(f"tfseq2seq: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
