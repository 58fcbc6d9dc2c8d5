"""Start the gRPC + REST model server: ``serve(...)`` or ``python -m tfseq2seq.serving.app``.

Port 0 binds a free port (read ``handle.grpc_port`` / ``handle.rest_port``);
``None`` disables that endpoint.  (TF Serving uses ``--rest_api_port=0`` for
"disabled"; here 0 means "any free port", which tests need.)
"""

import argparse
import logging
import signal
import sys
import threading

from tfseq2seq.serving.batching import Batcher, RequestRunner
from tfseq2seq.serving.grpc_service import make_grpc_server
from tfseq2seq.serving.models import ModelManager
from tfseq2seq.serving.options import (
    DEFAULT_MAX_BATCH_ROWS,
    DEFAULT_MAX_REQUEST_BYTES,
    add_server_arguments,
    serve_kwargs,
)
from tfseq2seq.serving.rest import RestApi, RestServer
from tfseq2seq.serving.threads import configure_threads, describe_threads

log = logging.getLogger(__name__)


class ServerHandle:
    """A running server.  ``stop(grace)`` finishes in-flight requests, then returns."""

    def __init__(self, manager, runner, host, grpc_server, grpc_port, rest_server):
        self.manager = manager
        self.runner = runner
        self.host = host
        self.grpc_port = grpc_port
        self.rest_port = rest_server.server_address[1] if rest_server else None
        self._grpc = grpc_server
        self._rest = rest_server
        self._rest_thread = None
        self._stop_requested = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        if rest_server is not None:
            self._rest_thread = threading.Thread(
                target=rest_server.serve_forever, kwargs={"poll_interval": 0.2},
                name="rest-accept", daemon=True)
            self._rest_thread.start()

    @property
    def rest_url(self):
        return f"http://{self.host}:{self.rest_port}" if self.rest_port else None

    @property
    def grpc_target(self):
        return f"{self.host}:{self.grpc_port}" if self.grpc_port else None

    def stop(self, grace=5.0):
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop_requested.set()
        grpc_done = self._grpc.stop(grace) if self._grpc is not None else None
        if self._rest is not None:
            self._rest.stop(grace)
            self._rest_thread.join(grace)
        if grpc_done is not None:
            grpc_done.wait(grace + 1.0)
        self.manager.stop()
        log.info("server stopped")

    def request_stop(self, *_args):
        """Make ``run_forever`` return (usable as a signal handler)."""
        self._stop_requested.set()

    def run_forever(self, grace=5.0):
        """Block until ``request_stop``/SIGTERM/SIGINT, then stop gracefully."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.request_stop)
        try:
            while not self._stop_requested.wait(0.5):
                pass
        finally:
            self.stop(grace)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(model_base_path, model_name, port=8500, rest_api_port=8501, host="127.0.0.1",
          max_request_bytes=DEFAULT_MAX_REQUEST_BYTES, max_batch_rows=DEFAULT_MAX_BATCH_ROWS,
          enable_batching=False, poll_seconds=1.0, max_batch_size=32,
          batch_timeout_micros=2000, grpc_max_workers=None, num_batch_threads=None,
          intra_op_parallelism=0, inter_op_parallelism=0, enable_cors_support=False):
    """Load ``model_base_path/<version>/`` and serve it over gRPC and REST.

    ``grpc_max_workers`` bounds concurrent gRPC calls (default 16, or twice
    ``max_batch_size`` with batching so that a batch can fill up).
    ``num_batch_threads`` bounds the batches run at once with batching (default: the
    number of CPUs).
    ``intra_op_parallelism`` / ``inter_op_parallelism`` size TensorFlow's thread pools
    (``0``: TensorFlow's choice; see ``tfseq2seq.serving.threads``); they take effect only
    if TensorFlow has not run anything yet in this process (else ``ValueError``).
    ``enable_cors_support`` adds TF Serving's CORS headers to every ``/v1/`` REST response
    (its ``--rest_api_enable_cors_support``; CORS preflights are answered either way).
    """
    if num_batch_threads is not None and num_batch_threads < 1:
        raise ValueError(f"num_batch_threads must be >= 1, got {num_batch_threads}")
    configure_threads(intra_op_parallelism, inter_op_parallelism)
    if grpc_max_workers is None:
        grpc_max_workers = max(16, 2 * max_batch_size) if enable_batching else 16
    manager = ModelManager(model_base_path, model_name, poll_seconds=poll_seconds).start()
    batcher = (Batcher(max_batch_size, batch_timeout_micros, num_batch_threads)
               if enable_batching else None)
    runner = RequestRunner(batcher, max_batch_rows)
    grpc_server = rest_server = None
    grpc_port = None
    try:
        if port is not None:
            grpc_server, grpc_port = make_grpc_server(
                manager, runner, host, port, max_request_bytes, grpc_max_workers)
        if rest_api_port is not None:
            rest_server = RestServer((host, rest_api_port), RestApi(manager, runner),
                                     max_request_bytes, cors=enable_cors_support)
    except Exception:
        if grpc_server is not None:
            grpc_server.stop(0)
        manager.stop()
        raise
    return ServerHandle(manager, runner, host, grpc_server, grpc_port, rest_server)


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m tfseq2seq.serving.app",
        description="Serve tfseq2seq SavedModels with TF Serving's gRPC and REST APIs.")
    add_server_arguments(p)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handle = serve(args.model_base_path, args.model_name, **serve_kwargs(args))
    print(f"serving model {args.model_name} versions {handle.manager.versions()} "
          f"threads {describe_threads()} grpc={handle.grpc_target} rest={handle.rest_url}",
          flush=True)
    handle.run_forever(args.grace_seconds)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
