"""The model server's command-line options, declared once for ``tfseq2seq serve`` and
``python -m tfseq2seq.serving.app``.

Each flag has TF Serving's spelling (``--rest_api_port``) and the dashed one
(``--rest-api-port``). This module imports no TensorFlow (``tfseq2seq --help`` builds its
parsers without it).
"""

from tfseq2seq.util.argtypes import nonnegative_int, positive_int

DEFAULT_MAX_REQUEST_BYTES = 16 << 20
DEFAULT_MAX_BATCH_ROWS = 1024


def _flag(parser, name, *aliases, **kwargs):
    """``--name`` and ``--name-with-dashes`` (and ``aliases``), stored in ``name``."""
    dashed = "--" + name.replace("_", "-")
    spellings = [f"--{name}"] + ([dashed] if dashed != f"--{name}" else []) + list(aliases)
    parser.add_argument(*spellings, dest=name, **kwargs)


def add_server_arguments(parser):
    """Adds the server's options to ``parser``; ``serve_kwargs`` turns them into
    ``serve()``'s keyword arguments."""
    _flag(parser, "model_name", required=True, help="name in /v1/models/NAME and ModelSpec")
    _flag(parser, "model_base_path", required=True,
          help="directory holding <version>/saved_model.pb")
    _flag(parser, "port", type=int, default=8500, help="gRPC port (0 = any free, -1 = off)")
    _flag(parser, "rest_api_port", type=int, default=8501, help="REST port (0 = any free, -1 = off)")
    _flag(parser, "host", default="127.0.0.1", help="address to bind (default: loopback only)")
    _flag(parser, "max_request_bytes", type=positive_int, default=DEFAULT_MAX_REQUEST_BYTES,
          help="largest request body or message accepted")
    _flag(parser, "max_batch_rows", type=positive_int, default=DEFAULT_MAX_BATCH_ROWS,
          help="reject requests with more inputs than this")
    _flag(parser, "enable_batching", action="store_true",
          help="merge concurrent requests into one batch (like TF Serving)")
    _flag(parser, "max_batch_size", type=positive_int, default=32, help="most rows per merged batch")
    _flag(parser, "batch_timeout_micros", type=nonnegative_int, default=2000,
          help="how long a batch waits for more requests")
    _flag(parser, "num_batch_threads", type=positive_int, default=None,
          help="batches run at once with batching (default: number of CPUs)")
    _flag(parser, "poll_seconds", "--file_system_poll_wait_seconds", type=float, default=1.0,
          help="seconds between scans for new versions (0 = never)")
    _flag(parser, "grpc_max_workers", type=positive_int, default=None,
          help="gRPC worker threads (default 16, or 2*max_batch_size with batching)")
    _flag(parser, "tensorflow_intra_op_parallelism", "--intra-op-parallelism",
          type=nonnegative_int, default=0,
          help="threads one TensorFlow op may use (0 = TensorFlow's choice, one per core); "
               "1 cuts the latency of small recurrent models (see README)")
    _flag(parser, "tensorflow_inter_op_parallelism", "--inter-op-parallelism",
          type=nonnegative_int, default=0, help="TensorFlow ops run at once (0 = TensorFlow's choice)")
    _flag(parser, "rest_api_enable_cors_support", action="store_true",
          help="add CORS headers (Access-Control-Allow-*) to REST responses, for browsers")
    _flag(parser, "grace_seconds", type=float, default=5.0,
          help="time in-flight requests get to finish on SIGTERM/SIGINT")
    _flag(parser, "log_level", default="INFO", help="logging level (DEBUG, INFO, WARNING, ...)")


def serve_kwargs(args):
    """``serve()``'s keyword arguments (all but the base path and name) from parsed options."""
    return dict(
        port=None if args.port < 0 else args.port,
        rest_api_port=None if args.rest_api_port < 0 else args.rest_api_port,
        host=args.host, max_request_bytes=args.max_request_bytes,
        max_batch_rows=args.max_batch_rows, enable_batching=args.enable_batching,
        poll_seconds=args.poll_seconds, max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros, grpc_max_workers=args.grpc_max_workers,
        num_batch_threads=args.num_batch_threads,
        intra_op_parallelism=args.tensorflow_intra_op_parallelism,
        inter_op_parallelism=args.tensorflow_inter_op_parallelism,
        enable_cors_support=args.rest_api_enable_cors_support)
