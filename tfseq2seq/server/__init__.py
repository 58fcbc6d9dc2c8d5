"""A small TensorFlow-Serving-compatible model server for tfseq2seq exports.

    from tfseq2seq.server import serve
    handle = serve("export/g2p", "g2p", port=0, rest_api_port=0)
    ...
    handle.stop()

or ``python -m tfseq2seq.server.app --model_name=g2p --model_base_path=export/g2p``.

This package's ``__init__`` stays free of TensorFlow imports; ``serve`` is
imported lazily from :mod:`tfseq2seq.server.app`.
"""

# Canonical status codes (absl / grpc names) -> HTTP status, as in TF Serving's
# tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode().
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class StatusError(Exception):
    """A request failure with a canonical status code name (e.g. ``"NOT_FOUND"``)."""

    def __init__(self, code, message):
        if code not in HTTP_STATUS:
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS[self.code]

    def __str__(self):
        return f"{self.code}: {self.message}"


def invalid_argument(*parts):
    return StatusError("INVALID_ARGUMENT", "".join(str(p) for p in parts))


def not_found(*parts):
    return StatusError("NOT_FOUND", "".join(str(p) for p in parts))


def _int_at_least(minimum):
    """An ``argparse`` type: an int >= ``minimum`` (the error names the value)."""

    def parse(text):
        import argparse

        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1)  # argparse type of counts such as --num_batch_threads
nonnegative_int = _int_at_least(0)  # ... and of options where 0 means "TensorFlow's choice"


def __getattr__(name):  # lazy: importing the package must not import TensorFlow
    if name in ("serve", "ServerHandle", "main"):
        from tfseq2seq.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'tfseq2seq.server' has no attribute {name!r}")


__all__ = ["serve", "ServerHandle", "main", "StatusError", "HTTP_STATUS"]
