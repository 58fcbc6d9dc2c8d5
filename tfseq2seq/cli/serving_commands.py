"""CLI commands for the serving side: export, verify-export, serve, query, and the demo."""

import json
import os
import sys

from tfseq2seq.cli.errors import CliError
from tfseq2seq.serving.options import add_server_arguments, serve_kwargs
from tfseq2seq.util.argtypes import nonnegative_int, positive_int


def cmd_export(args):
    """Exports a run; unless ``--skip-verify``, into a staging directory first, published as
    ``base_path/<version>`` only once ``verify-export``'s checks pass (exit status 1 if not)."""
    from tfseq2seq.export.exporters import export_run
    from tfseq2seq.run_dir import load_run

    run = load_run(args.run_dir)
    members = [load_run(path) for path in args.ensemble or []]

    def export(base_path, version):
        return export_run(
            run, base_path, exporter="xla" if args.xla else "default", version=version,
            ensemble=members,
            overlong="reject" if args.reject_overlong else "truncate",
            warmup_texts=args.warmup or ("hello",), xla_warmup_rows=args.xla_warmup_rows,
            beam_width=args.beam_width, length_penalty=args.length_penalty,
            max_output_len=args.max_output_len)

    if args.skip_verify:
        from tfseq2seq.export.opcheck import check_ops

        path = export(args.base_path, args.version)
        if not args.skip_op_check:
            check_ops(path)
        print(f"exported: {path}")
        return
    from tfseq2seq.export.verify import export_verified

    path, report = export_verified(export, args.base_path, args.version,
                                   op_check=not args.skip_op_check)
    if path is not None:
        print(f"exported: {path}")
    _print_report(report, f"not exported: the export failed verification, so nothing was "
                          f"written to {args.base_path} (--skip-verify writes it anyway, e.g. "
                          "to inspect it)")


def cmd_verify_export(args):
    from tfseq2seq.export.verify import resolve_version_dir, verify_export

    print(f"verifying {resolve_version_dir(args.dir)}", flush=True)
    report = verify_export(args.dir, op_check=not args.skip_op_check)
    _print_report(report, f"verify-export: {len(report.failures)} of {len(report.checks)} "
                          "checks failed")


def _print_report(report, failure_message):
    """Prints the table and its summary; if a check failed, ``failure_message`` on stderr
    and exit status 1 (2 stays the status of user errors)."""
    print(report.format_table())
    print(f"verified: {report.summary()}", flush=True)
    if not report.ok:
        print(f"tfseq2seq: {failure_message}", file=sys.stderr)
        raise SystemExit(1)


def cmd_serve(args):
    import logging

    from tfseq2seq.serving.app import serve

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handle = serve(args.model_base_path, args.model_name, **serve_kwargs(args))
    print(f"serving {args.model_name} from {args.model_base_path}: "
          f"gRPC {handle.grpc_target}  REST {handle.rest_url}", flush=True)
    handle.run_forever(args.grace_seconds)


def cmd_query(args):
    from tfseq2seq.serving.client import GrpcClient, RestClient

    if bool(args.rest) == bool(args.grpc):
        raise CliError("give exactly one of --rest URL or --grpc HOST:PORT")
    client = (RestClient(args.rest, args.model, timeout=args.timeout) if args.rest
              else GrpcClient(args.grpc, args.model, timeout=args.timeout))
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    with client:
        results = client.translate(texts, signature=args.signature, version=args.version)
    for text, result in zip(texts, results):
        print(json.dumps({"source": text, **result}, ensure_ascii=False) if args.json
              else f"{text}\t{result['text']}")


def cmd_demo(args):
    from tfseq2seq.cli.demo import run_demo

    run_demo(args)


def add_commands(sub):
    """Adds ``export``, ``verify-export``, ``serve``, ``query`` and ``demo`` to the
    ``tfseq2seq`` parser."""
    p = sub.add_parser("export", help="export a run as a TF Serving SavedModel version")
    p.add_argument("run_dir")
    p.add_argument("--base-path", required=True, help="model base path, e.g. export/g2p")
    p.add_argument("--version", type=int, help="version number (default: next free)")
    p.add_argument("--beam-width", type=positive_int,
                   help="beam width of the beam_search signature (default: decoding.beam_width)")
    p.add_argument("--length-penalty", type=float,
                   help="GNMT alpha of the beam_search signature (default: decoding.length_penalty)")
    p.add_argument("--max-output-len", type=positive_int,
                   help="most output tokens (default: decoding.max_output_len, else 2 * input "
                        "length + 10)")
    p.add_argument("--reject-overlong", action="store_true",
                   help="fail requests over data.max_source_len tokens instead of truncating")
    p.add_argument("--warmup", action="append", help="warmup input text (repeatable)")
    p.add_argument("--ensemble", action="append", metavar="RUN_DIR",
                   help="another run of the same data to decode together with RUN_DIR as one "
                        "model (mean log-probabilities at each step; repeatable)")
    p.add_argument("--skip-op-check", action="store_true",
                   help="skip checking that only core TF and TF Text ops are used")
    p.add_argument("--skip-verify", action="store_true",
                   help="write the version without running verify-export's checks on it first "
                        "(by default a version that fails them is not written; exit status 1)")
    p.add_argument("--xla", action="store_true",
                   help="compile the greedy signature with XLA (lower latency at small "
                        "batches; tensorflow_model_server then needs "
                        "--xla_cpu_compilation_enabled=true)")
    p.add_argument("--xla-warmup-rows", type=nonnegative_int, default=32,
                   help="with --xla: warm-up requests make the server compile the programs "
                        "for batches of up to this many texts while loading (default 32, "
                        "TF Serving's max_batch_size in serving/; 0: none)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "verify-export", help="will TensorFlow Serving load and run this export? (exit 0: yes)",
        description="Loads an export with TensorFlow's C++ loader (the C API; TF Serving's "
                    "LoadSavedModel), names any op outside core TensorFlow and TensorFlow Text, "
                    "replays the warm-up records, runs each signature on odd inputs (empty, "
                    "whitespace only, over-long, invalid UTF-8, unknown symbols and mixed "
                    "scripts, a mixed batch, an empty batch) comparing the outputs with "
                    "tf.saved_model.load's, and prints a table. Exit status 0 only if every "
                    "check passes, 1 if one fails, 2 if DIR is not an export.")
    p.add_argument("dir", metavar="DIR",
                   help="a SavedModel version directory, or a model base path (its newest "
                        "version, the one TF Serving serves)")
    p.add_argument("--skip-op-check", action="store_true",
                   help="skip the op check (it starts a fresh interpreter)")
    p.set_defaults(func=cmd_verify_export)

    p = sub.add_parser("serve", help="serve exports over TF Serving's REST and gRPC APIs "
                                     "(development stand-in for tensorflow_model_server)")
    add_server_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("query", help="query a served model (TF Serving or tfseq2seq serve)")
    p.add_argument("texts", nargs="*", help="inputs; read from stdin when none")
    p.add_argument("--rest", metavar="URL", help="REST base URL, e.g. http://127.0.0.1:8501")
    p.add_argument("--grpc", metavar="HOST:PORT", help="gRPC target, e.g. 127.0.0.1:8500")
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--signature", default="serving_default", help="serving_default | beam_search")
    p.add_argument("--version", type=int)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", action="store_true", help="print every output as JSON")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("demo", help="serve the ready CMUdict G2P model; then train, export, "
                                    "serve and query a small one")
    p.add_argument("--run-dir", default="runs/demo")
    p.add_argument("--base-path", default=os.path.join("export", "g2p_demo"))
    p.add_argument("--config", default=None,
                   help="config file, or the name of a bundled config (demo, smoke, g2p, ...: "
                        "the package's configs/); default: demo")
    p.add_argument("--skip-ready", action="store_true",
                   help="skip part A (serving the ready model from models/)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--output", default=None,
                   help="attention heatmap PNG (default: RUN_DIR/attention.png)")
    p.set_defaults(func=cmd_demo)
