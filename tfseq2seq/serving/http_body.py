"""Request bodies of the REST server: framing (``Content-Length`` or ``Transfer-Encoding:
chunked``), then ``Content-Encoding: gzip``, each held to ``max_request_bytes``.

TF Serving's HTTP layer (libevent under util/net_http/server/internal/evhttp_request.cc)
reads chunked bodies and inflates a body whose Content-Encoding mentions gzip before the
JSON is parsed; so does this module.  The inflated size is limited as well: a few KB of
gzip can inflate to gigabytes, so the body is inflated piece by piece and refused as soon
as it passes the limit, never held in full.

Where this differs from TF Serving (which has no request size limit of its own):
a body over the limit, raw or inflated, is answered 413; a body that does not inflate is a
400 that says so (TF Serving treats it as an empty document); a POST without
Content-Length or chunked framing is a 411 and a transfer coding other than chunked a 501.
"""

import re
import zlib

MAX_DRAIN = 64 << 20  # read (and drop) at most this much of an oversized body
_PIECE = 1 << 16
_MAX_LINE = 4096  # longest chunk-size or trailer line
_MAX_TRAILERS = 100
_MAX_BLANK_LINES = 16  # tolerated between chunks (libevent skips empty lines there)
_LENGTH = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class BodyError(Exception):
    """A body that is refused: HTTP ``status`` with ``message``; ``close`` when the
    connection's framing can no longer be trusted (the rest of the body was not read)."""

    def __init__(self, status, message, close=True):
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def _too_big(limit, what="Request body"):
    return f"{what} exceeds max_request_bytes={limit}"


def read_body(rfile, headers, limit, method):
    """The request's body (``b""`` when it has none), inflated if gzip; ``BodyError`` if
    it is refused.  ``limit`` (bytes, or None) applies to the raw and the inflated body."""
    coding = headers.get("Transfer-Encoding")
    if coding is not None:
        if coding.strip().lower() != "chunked":
            raise BodyError(501, f"Transfer-Encoding {coding.strip()!r} is not implemented "
                                 "(only chunked is)")
        body = _read_chunked(rfile, limit)
    else:
        length = headers.get("Content-Length")
        if length is None:
            if method == "POST":
                raise BodyError(411, "a Content-Length header (or chunked "
                                     "Transfer-Encoding) is required")
            return b""
        body = _read_length(rfile, length.strip(), limit)
    if body and "gzip" in headers.get("Content-Encoding", "").lower():
        body = gunzip(body, limit)
    return body


def _read_length(rfile, length, limit):
    if not _LENGTH.fullmatch(length):
        raise BodyError(400, f"Invalid Content-Length header: {length[:40]!r}")
    size = int(length) if len(length) <= 18 else None  # 19+ digits: over any limit
    if size is None or (limit is not None and size > limit):
        if size is not None and size <= MAX_DRAIN:  # drain, so the client reads the reply
            for start in range(0, size, _PIECE):
                if not rfile.read(min(_PIECE, size - start)):
                    break
        raise BodyError(413, f"Request body of {length} bytes exceeds max_request_bytes={limit}")
    body = rfile.read(size) if size else b""
    if len(body) < size:
        raise BodyError(400, f"Request body ended after {len(body)} of its {size} bytes")
    return body


def _line(rfile, what):
    line = rfile.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise BodyError(400, f"Malformed chunked request body: {what} line too long")
    if not line.endswith(b"\n"):
        raise BodyError(400, "Malformed chunked request body: it ends before its last chunk")
    return line.strip()


def _read_chunked(rfile, limit):
    """Chunks (hex size line, data, CRLF) up to the zero-size one, then trailer lines."""
    parts, total, blank = [], 0, 0
    while True:
        line = _line(rfile, "chunk-size")
        if not line:  # the CRLF after a chunk's data
            blank += 1
            if blank > _MAX_BLANK_LINES:
                raise BodyError(400, "Malformed chunked request body: blank lines")
            continue
        blank = 0
        size_text = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise BodyError(400, f"Malformed chunked request body: chunk size "
                                 f"{size_text[:20].decode('latin-1')!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        over = limit is not None and total > limit
        if over and total > MAX_DRAIN:
            raise BodyError(413, _too_big(limit))
        for start in range(0, size, _PIECE):  # pieces: a chunk may claim any size
            want = min(_PIECE, size - start)
            data = rfile.read(want)
            if len(data) < want:
                raise BodyError(400, "Malformed chunked request body: it ends inside a chunk")
            if not over:
                parts.append(data)
        if over:
            parts = None
    for _ in range(_MAX_TRAILERS):
        if not _line(rfile, "trailer"):
            break
    else:
        raise BodyError(400, "Malformed chunked request body: too many trailer lines")
    if parts is None:
        raise BodyError(413, _too_big(limit), close=False)
    return b"".join(parts)


def gunzip(data, limit):
    """Inflate gzip ``data`` (one or more members), at most ``limit`` bytes of output."""
    out, total = [], 0
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while data and not inflater.eof:
            room = 0 if limit is None else limit - total + 1  # 0: no bound
            try:
                piece = inflater.decompress(data, room)
            except zlib.error as exc:
                raise BodyError(400, f"Failed to decompress the gzip request body: {exc}",
                                close=False) from None
            total += len(piece)
            if limit is not None and total > limit:
                raise BodyError(413, _too_big(limit, "Decompressed (gzip) request body"),
                                close=False)
            out.append(piece)
            data = inflater.unconsumed_tail
        if not inflater.eof:
            raise BodyError(400, "Failed to decompress the gzip request body: it is truncated",
                            close=False)
        data = inflater.unused_data
    return b"".join(out)
