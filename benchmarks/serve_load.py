"""Load test of the local TF-Serving-protocol server: requests/s and p50/p99 latency.

The benchmark model (``common.trained_project_model``) is exported once; two server
processes (``python -m tfseq2seq.server.app``, loopback, free ports) serve it, one
running every request alone and one with ``--enable_batching`` (``--max-batch-size``,
``--batch-timeout-micros``). Client threads in this process (1, 8, 32 of them) each send
one CMUdict test word per request over REST (``RestClient``) or gRPC (``GrpcClient``),
for at most ``--requests`` requests or ``--seconds`` seconds per measurement, whichever
comes first. Unbatched and batched runs alternate, ``--rounds`` times; the batching
ratio is the median over rounds of batched / unbatched requests/s.

    python benchmarks/serve_load.py            # 1, 8, 32 clients, REST and gRPC
    python benchmarks/serve_load.py --quick    # smoke run
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from tfseq2seq.client import GrpcClient, RestClient  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = re.compile(r"grpc=(\S+) rest=(\S+)")


def parse_args(argv=None):
    p = common.base_parser(__doc__.split("\n")[0])
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    p.add_argument("--protocols", default="rest,grpc")
    p.add_argument("--requests", type=int, default=400, help="max requests per measurement")
    p.add_argument("--seconds", type=float, default=10.0, help="max seconds per measurement")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout-micros", type=int, default=2000)
    p.add_argument("--train-steps", type=int, default=300, help="training of the served model")
    p.add_argument("--xla", action="store_true", help="serve an export with jit_compile=True")
    p.add_argument("--rest-nodelay", action="store_true",
                   help="run the servers with TCP_NODELAY on REST responses (an experiment: "
                        "headers and body are two writes, which Nagle + delayed ACK stall)")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.seconds, args.rounds, args.train_steps = "1,32", 64, 3.0, 1, 20
    return args


class Server:
    """A server subprocess on free loopback ports; ``stop`` ends it (SIGTERM, then kill)."""

    def __init__(self, base_path, extra_args=(), timeout=180.0, nodelay=False):
        launcher = ["-m", "tfseq2seq.server.app"]
        if nodelay:
            launcher = ["-c", "import sys; from tfseq2seq.server import rest, app; "
                        "rest._Handler.disable_nagle_algorithm = True; "
                        "sys.exit(app.main(sys.argv[1:]))"]
        cmd = [sys.executable, *launcher, "--model_name=g2p",
               f"--model_base_path={base_path}", "--port=0", "--rest_api_port=0",
               "--poll_seconds=0", "--log_level=WARNING", *extra_args]
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            match = READY.search(line)
            if match:
                self.grpc_target, self.rest_url = match.groups()
                return
        self.stop()
        raise RuntimeError("server did not start in time")

    def client(self, protocol):
        if protocol == "rest":
            return RestClient(self.rest_url, "g2p", timeout=60.0)
        return GrpcClient(self.grpc_target, "g2p", timeout=60.0)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def load(server, protocol, clients, words, max_requests, max_seconds):
    """``clients`` threads, one word per request; returns rps, latencies and failures."""
    lock = threading.Lock()
    counter = iter(range(max_requests))
    latencies, failures = [], []
    deadline = time.monotonic() + max_seconds

    def worker():
        client = server.client(protocol)
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    out = client.translate([words[i % len(words)]])
                    ok = len(out) == 1 and isinstance(out[0].get("text"), str)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    ok, out = False, repr(exc)
                elapsed = time.perf_counter() - start
                with lock:
                    (latencies if ok else failures).append(elapsed if ok else str(out)[:200])
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + 120)
    wall = time.perf_counter() - start
    result = {"requests": len(latencies), "failures": len(failures),
              "requests_per_s": round(len(latencies) / wall, 2), **common.percentiles_ms(latencies or [0])}
    if failures:
        result["first_failure"] = failures[0]
    return result


def main(argv=None):
    args = parse_args(argv)
    data = common.G2PData()
    out = common.header(sys.argv[1:] if argv is None else argv)
    out.update(benchmark="serve_load", batching={
        "max_batch_size": args.max_batch_size, "batch_timeout_micros": args.batch_timeout_micros},
        xla_export=args.xla, rest_nodelay=args.rest_nodelay)
    model = common.trained_project_model(data, args.embedding_dim, args.units, args.train_steps, args.seed)
    words = data.test_words
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "g2p")
        common.export_project_model(data, model, base, jit_compile=args.xla)
        servers = {"unbatched": Server(base, nodelay=args.rest_nodelay)}
        try:
            servers["batched"] = Server(base, ["--enable_batching",
                                               f"--max_batch_size={args.max_batch_size}",
                                               f"--batch_timeout_micros={args.batch_timeout_micros}"],
                                        nodelay=args.rest_nodelay)
            for server in servers.values():  # warm-up (and XLA compiles for the batch sizes)
                load(server, "grpc", max(int(c) for c in args.clients.split(",")), words, 200, 60.0)
            out["results"] = run_all(servers, args, words)
        finally:
            for server in servers.values():
                server.stop()
    common.print_json(out)


def run_all(servers, args, words):
    results = {}
    for protocol in args.protocols.split(","):
        for clients in (int(c) for c in args.clients.split(",")):
            runs = {name: [] for name in servers}
            for r in range(args.rounds):
                for name, server in servers.items():
                    runs[name].append(load(server, protocol, clients, words, args.requests, args.seconds))
                common.log(f"{protocol} x{clients} round {r}: " + ", ".join(
                    f"{n} {v[-1]['requests_per_s']} rps" for n, v in runs.items()))
            entry = {name: _median_run(v) for name, v in runs.items()}
            entry["batching_ratio_median"] = round(statistics.median(
                b["requests_per_s"] / u["requests_per_s"]
                for b, u in zip(runs["batched"], runs["unbatched"]) if u["requests_per_s"]), 3)
            results[f"{protocol}_clients_{clients}"] = entry
    return results


def _median_run(runs):
    best = sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2]
    return {**best, "failures_total": sum(r["failures"] for r in runs),
            "requests_total": sum(r["requests"] for r in runs)}


if __name__ == "__main__":
    main()
