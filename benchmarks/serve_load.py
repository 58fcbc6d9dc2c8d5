"""Load test of the local TF-Serving-protocol server: requests/s and p50/p99 latency.

The benchmark model (``common.trained_project_model``) is exported once; two server
processes (``python -m tfseq2seq.serving.app``, loopback, free ports) serve it, one
running every request alone and one with ``--enable_batching`` (``--max-batch-size``,
``--batch-timeout-micros``, ``--num-batch-threads``; both with the same request code). Client threads in this process
(1, 8, 32 of them) each send one CMUdict test word per request over REST or gRPC, for at
most ``--requests`` requests or ``--seconds`` seconds per measurement, whichever comes
first. Unbatched and batched runs alternate, ``--rounds`` times; the batching ratio is
the median over rounds of batched / unbatched requests/s.

The clients share the machine's cores with the servers, so they are kept cheap
(``--client raw``, the default): every word's request is serialized once (a
PredictRequest for gRPC, sent as bytes on a gRPC channel; a complete HTTP/1.1 request
for REST, sent on a keep-alive socket) and each response is checked only for what
success means here -- status OK and exactly one output ``text`` string -- without
decoding the other outputs. ``--client library`` uses ``tfseq2seq.serving.client``'s
``RestClient`` / ``GrpcClient`` (full response decoding) instead (both kinds in
``load_clients.py``). Every measurement
reports the CPU time per request of the server process (``/proc``), of this process
(the clients) and of everything else on the machine (``other_cpu_cores``: cores busy
with other work during the measurement).

    python benchmarks/serve_load.py            # 1, 8, 32 clients, REST and gRPC
    python benchmarks/serve_load.py --quick    # smoke run
"""

import itertools
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
from load_clients import MODEL, make_client  # noqa: E402

from tfseq2seq.util.argtypes import nonnegative_int  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY = re.compile(r"grpc=(\S+) rest=(\S+)")
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv=None):
    p = common.base_parser(__doc__.split("\n")[0])
    p.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    p.add_argument("--protocols", default="rest,grpc")
    p.add_argument("--requests", type=int, default=5000, help="max requests per measurement")
    p.add_argument("--seconds", type=float, default=10.0, help="max seconds per measurement")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--client", choices=("raw", "library"), default="raw",
                   help="raw: pre-serialized requests, minimal response checks (default); "
                        "library: tfseq2seq.serving.client's RestClient / GrpcClient")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--batch-timeout-micros", type=int, default=2000)
    p.add_argument("--num-batch-threads", type=int, default=1,
                   help="batches the batched server runs at once (0: the server's default, one "
                        "per CPU). Default 1: on 2 cores, one batch at a time leaves the other "
                        "core to request handling and doubles the mean batch size at 32 clients")
    p.add_argument("--grpc-max-workers", type=int, default=None,
                   help="gRPC worker threads of both servers (default: the server's)")
    p.add_argument("--intra-op-parallelism", type=nonnegative_int, default=0,
                   help="both servers' --tensorflow_intra_op_parallelism (0: TensorFlow's "
                        "choice, one thread per core)")
    p.add_argument("--train-steps", type=int, default=300, help="training of the served model")
    p.add_argument("--xla", action="store_true", help="serve an export with jit_compile=True")
    args = p.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.seconds, args.rounds, args.train_steps = "1,32", 64, 3.0, 1, 20
    return args


class Server:
    """A server subprocess on free loopback ports; ``stop`` ends it (SIGTERM, then kill)."""

    def __init__(self, base_path, extra_args=(), timeout=180.0):
        cmd = [sys.executable, "-m", "tfseq2seq.serving.app", f"--model_name={MODEL}",
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

    def cpu_seconds(self):
        """User + system CPU seconds of the server process so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _machine_busy_seconds():
    """CPU seconds all cores have spent outside idle/iowait since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICKS  # minus idle, iowait


def load(server, client, clients, max_requests, max_seconds):
    """``clients`` threads, one word per request; returns rps, latencies, failures and
    CPU seconds per request (server process, this process, the rest of the machine)."""
    counter = itertools.count()
    requests = client.requests
    per_thread = [([], []) for _ in range(clients)]  # (latencies, failures)
    deadline = time.monotonic() + max_seconds

    def worker(latencies, failures):
        conn = client.connection()
        try:
            while time.monotonic() < deadline:
                i = next(counter)  # atomic under the GIL
                if i >= max_requests:
                    return
                start = time.perf_counter()
                try:
                    error = client.send(conn, requests[i % len(requests)])
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    error = repr(exc)[:200]
                elapsed = time.perf_counter() - start
                if error is None:
                    latencies.append(elapsed)
                else:
                    failures.append(error)
        finally:
            client.release(conn)

    threads = [threading.Thread(target=worker, args=lists) for lists in per_thread]
    cpu0 = (server.cpu_seconds(), time.process_time(), _machine_busy_seconds())
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max_seconds + 120)
    wall = time.perf_counter() - start
    cpu1 = (server.cpu_seconds(), time.process_time(), _machine_busy_seconds())
    latencies = [x for lat, _ in per_thread for x in lat]
    failures = [x for _, fail in per_thread for x in fail]
    server_cpu, client_cpu, busy = (b - a for a, b in zip(cpu0, cpu1))
    done = max(1, len(latencies) + len(failures))
    result = {"requests": len(latencies), "failures": len(failures),
              "requests_per_s": round(len(latencies) / wall, 2),
              **common.percentiles_ms(latencies or [0]),
              "server_cpu_ms_per_request": round(1e3 * server_cpu / done, 3),
              "client_cpu_ms_per_request": round(1e3 * client_cpu / done, 3),
              "other_cpu_cores": round(max(0.0, busy - server_cpu - client_cpu) / wall, 2)}
    if failures:
        result["first_failure"] = failures[0]
    return result


def server_options(args, batched):
    extra = [f"--tensorflow_intra_op_parallelism={args.intra_op_parallelism}"]
    if args.grpc_max_workers is not None:
        extra.append(f"--grpc_max_workers={args.grpc_max_workers}")
    if batched:
        extra += ["--enable_batching", f"--max_batch_size={args.max_batch_size}",
                  f"--batch_timeout_micros={args.batch_timeout_micros}"]
        if args.num_batch_threads:
            extra.append(f"--num_batch_threads={args.num_batch_threads}")
    return extra


def main(argv=None):
    args = parse_args(argv)
    data = common.G2PData()
    out = common.header(sys.argv[1:] if argv is None else argv)
    out.update(benchmark="serve_load", client=args.client, batching={
        "max_batch_size": args.max_batch_size, "batch_timeout_micros": args.batch_timeout_micros,
        "num_batch_threads": args.num_batch_threads}, grpc_max_workers=args.grpc_max_workers,
        intra_op_parallelism=args.intra_op_parallelism or "auto",
        xla_export=args.xla)
    model = common.trained_project_model(data, args.embedding_dim, args.units, args.train_steps, args.seed)
    words = data.test_words
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "g2p")
        common.export_project_model(data, model, base, jit_compile=args.xla)
        servers = {"unbatched": Server(base, server_options(args, False))}
        try:
            servers["batched"] = Server(base, server_options(args, True))
            most = max(int(c) for c in args.clients.split(","))
            for server in servers.values():  # warm-up (and XLA compiles for the batch sizes)
                for protocol in args.protocols.split(","):
                    client = make_client(server, protocol, words, args.client)
                    load(server, client, most, 200, 60.0)
                    client.close()
            out["results"] = run_all(servers, args, words)
        finally:
            for server in servers.values():
                server.stop()
    common.print_json(out)


def run_all(servers, args, words):
    results = {}
    for protocol in args.protocols.split(","):
        clients_of = {name: make_client(server, protocol, words, args.client)
                      for name, server in servers.items()}
        for clients in (int(c) for c in args.clients.split(",")):
            runs = {name: [] for name in servers}
            for r in range(args.rounds):
                for name, server in servers.items():
                    runs[name].append(load(server, clients_of[name], clients, args.requests,
                                           args.seconds))
                common.log(f"{protocol} x{clients} round {r}: " + ", ".join(
                    f"{n} {v[-1]['requests_per_s']} rps (server {v[-1]['server_cpu_ms_per_request']}"
                    f" / client {v[-1]['client_cpu_ms_per_request']} CPU ms/req, other "
                    f"{v[-1]['other_cpu_cores']} cores)" for n, v in runs.items()))
            entry = {name: _median_run(v) for name, v in runs.items()}
            entry["batching_ratio_median"] = round(statistics.median(
                b["requests_per_s"] / u["requests_per_s"]
                for b, u in zip(runs["batched"], runs["unbatched"]) if u["requests_per_s"]), 3)
            results[f"{protocol}_clients_{clients}"] = entry
        for client in clients_of.values():
            client.close()
    return results


def _median_run(runs):
    best = sorted(runs, key=lambda r: r["requests_per_s"])[len(runs) // 2]
    return {**best, "failures_total": sum(r["failures"] for r in runs),
            "requests_total": sum(r["requests"] for r in runs)}


if __name__ == "__main__":
    main()
