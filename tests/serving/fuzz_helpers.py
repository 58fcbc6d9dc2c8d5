"""Helpers shared by the fuzz tests (tests/serving/test_fuzz_rest.py, test_fuzz_grpc.py).

The limits the fuzzed server process runs with (``MAX_BYTES``, ``MAX_ROWS``; the process
is conftest.py's session-scoped ``fuzz_server``), hypothesis settings for deterministic
bounded runs, ``Budget`` (a time budget per property), the ``mutated`` strategy (byte
flips, cuts, insertions of a serialized request) and ``assert_alive``: the process still
runs and answers a good REST predict.
"""

import random
import socket
import time

from hypothesis import HealthCheck
from hypothesis import strategies as st

MAX_BYTES, MAX_ROWS = 64 << 10, 32
SETTINGS = {"deadline": None, "derandomize": True, "database": None,
            "suppress_health_check": list(HealthCheck)}


class Budget:
    """Skips the rest of a property's examples once its time is up."""

    def __init__(self, seconds):
        self.seconds, self.start, self.runs = seconds, None, 0

    def spent(self):
        self.start = self.start or time.monotonic()
        self.runs += 1
        return time.monotonic() - self.start > self.seconds


@st.composite
def mutated(draw, body):
    """Byte flips, cuts, insertions and repeats of a document."""
    data = bytearray(body)
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = rng.randrange(len(data))
        op = rng.choice(["flip", "cut", "insert", "repeat", "truncate"])
        if op == "flip":
            data[at] = rng.randrange(256)
        elif op == "cut":
            del data[at:at + rng.randrange(1, 8)]
        elif op == "insert":
            data[at:at] = rng.choice([b"\\u", b"\\ud800", b"[", b"{", b'"', b"\xff", b",", b"\x00"])
        elif op == "repeat":
            data[at:at] = data[at:at + rng.randrange(1, 16)]
        else:
            del data[at:]
    return bytes(data)


def _exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused early (413) and closed: the answer is still there to read
        chunks = []
        try:
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def assert_alive(proc):
    assert proc.proc.poll() is None, "the server process died"
    reply = _exchange(proc.rest_port, b"POST /v1/models/stub:predict HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\nContent-Length: 21\r\n\r\n"
                                      b'{"instances": ["ab"]}')
    assert b" 200 " in reply.split(b"\r\n", 1)[0] and b'"text": "ba"' in reply
