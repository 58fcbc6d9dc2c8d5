"""Request failures with canonical status codes, and their HTTP statuses (TF Serving's
table)."""

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
