"""Load-generator clients for ``serve_load.py``: cheap ones that send pre-serialized
requests and check only what success means there (``RawRest``, ``RawGrpc``), and the
library's own clients (``LibraryClient``). Each has ``connection()`` (one per client
thread), ``send(connection, request) -> None or an error string``, ``release`` and
``close``, and ``requests`` (one per word, in order).
"""

import json
import socket

from tfseq2seq.serving.client import GrpcClient, RestClient

MODEL = "g2p"
PREDICT = "/tensorflow.serving.PredictionService/Predict"


class _HttpConnection:
    """A minimal HTTP/1.1 keep-alive client: sends ready-made request bytes, returns
    (status, body). Reconnects after the server closes the connection."""

    def __init__(self, host, port, timeout):
        self.address, self.timeout = (host, port), timeout
        self.sock, self.buffer = None, b""

    def request(self, data):
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        try:
            self.sock.sendall(data)
            while b"\r\n\r\n" not in self.buffer:
                self._recv()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = next(int(line[15:]) for line in lines if line.startswith(b"content-length:"))
            while len(rest) < length:
                self.buffer = rest
                self._recv()
                rest = self.buffer
            body, self.buffer = rest[:length], rest[length:]
            if b"connection: close" in lines:
                self.close()
            return status, body
        except BaseException:
            self.close()
            raise

    def _recv(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class RawRest:
    """Pre-built HTTP requests; success = 200 and ``predictions`` = one row with a text."""

    def __init__(self, server, words, timeout=60.0):
        host, port = server.rest_url.split("//", 1)[1].rsplit(":", 1)
        self.host, self.port, self.timeout = host, int(port), timeout
        head = (f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\n").encode()
        self.requests = []
        for word in words:
            body = json.dumps({"instances": [word]}, ensure_ascii=False).encode("utf-8")
            self.requests.append(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def connection(self):
        return _HttpConnection(self.host, self.port, self.timeout)

    @staticmethod
    def send(conn, request):
        status, body = conn.request(request)
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        rows = json.loads(body).get("predictions")
        if not (isinstance(rows, list) and len(rows) == 1 and isinstance(rows[0], dict)
                and isinstance(rows[0].get("text"), str)):
            return f"unexpected response: {body[:200]!r}"
        return None

    @staticmethod
    def release(conn):
        conn.close()

    def close(self):
        pass


class RawGrpc:
    """Pre-serialized PredictRequests on one channel; success = OK and output ``text``
    holding exactly one string of shape [1]."""

    def __init__(self, server, words, timeout=60.0):
        import grpc
        from tensorflow_serving.apis import predict_pb2

        self.grpc, self.timeout = grpc, timeout
        self.response_cls = predict_pb2.PredictResponse
        self.requests = []
        for word in words:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL
            request.model_spec.signature_name = "serving_default"
            tensor = request.inputs["text"]
            tensor.dtype = 7  # DT_STRING
            tensor.tensor_shape.dim.add(size=1)
            tensor.string_val.append(word.encode("utf-8"))
            self.requests.append(request.SerializeToString())
        self.channel = grpc.insecure_channel(server.grpc_target)
        self.predict = self.channel.unary_unary(PREDICT)  # bytes in, bytes out

    def connection(self):
        return self.predict

    def send(self, predict, request):
        try:
            raw = predict(request, timeout=self.timeout)
        except self.grpc.RpcError as exc:
            return f"{exc.code()}: {exc.details()}"[:200]
        text = self.response_cls.FromString(raw).outputs.get("text")
        if text is None or len(text.string_val) != 1 or [d.size for d in text.tensor_shape.dim] != [1]:
            return f"unexpected response: {raw[:200]!r}"
        return None

    def release(self, _predict):
        pass

    def close(self):
        self.channel.close()


class LibraryClient:
    """``tfseq2seq.serving.client`` clients, one per thread, full response decoding."""

    def __init__(self, server, protocol, words):
        self.server, self.protocol, self.requests = server, protocol, list(words)

    def connection(self):
        if self.protocol == "rest":
            return RestClient(self.server.rest_url, MODEL, timeout=60.0)
        return GrpcClient(self.server.grpc_target, MODEL, timeout=60.0)

    @staticmethod
    def send(client, word):
        try:
            out = client.translate([word])
        except Exception as exc:  # noqa: BLE001 - counted and reported
            return repr(exc)[:200]
        return None if len(out) == 1 and isinstance(out[0].get("text"), str) else repr(out)[:200]

    @staticmethod
    def release(client):
        client.close()

    def close(self):
        pass


def make_client(server, protocol, words, kind="raw"):
    if kind == "library":
        return LibraryClient(server, protocol, words)
    return RawRest(server, words) if protocol == "rest" else RawGrpc(server, words)
