"""Users' own ``source<TAB>target`` files: reading them line by line (``read_tsv``) and as
a Corpus (``load_tsv_corpus``; lines with the same source become one example with several
references). No TensorFlow here.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import os

from tfseq2seq.data.corpora import Corpus, group_pairs

logger = logging.getLogger(__name__)
_MAX_LOGGED_PROBLEMS = 10


class DataError(ValueError):
    """Malformed or unusable training data."""


@dataclasses.dataclass
class TsvReport:
    """What ``read_tsv`` found: the valid pairs and one message per skipped line."""

    pairs: list[tuple[str, str]]
    problems: list[str]

    @property
    def skipped(self) -> int:
        return len(self.problems)


def _line_problem(raw: bytes) -> tuple[str | None, tuple[str, str] | None]:
    """Returns (reason, None) for a malformed TSV line, else (None, (source, target))."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start}", None
    fields = line.split("\t")
    if len(fields) == 1:
        return "no tab (expected source<TAB>target)", None
    if len(fields) > 2:
        return f"{len(fields) - 1} tabs (expected exactly 1)", None
    source, target = (f.strip() for f in fields)
    if not source:
        return "empty source", None
    if not target:
        return "empty target", None
    return None, (source, target)


def read_tsv(path: str | os.PathLike, strict: bool = False) -> TsvReport:
    """Reads ``source<TAB>target`` lines (UTF-8; CRLF and a BOM are accepted).

    Blank lines are ignored. Malformed lines (no tab, several tabs, an empty
    side, invalid UTF-8) are logged as ``path:lineno: reason`` and skipped, or
    raise DataError with that message when ``strict``. Sides are stripped.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    pairs, problems = [], []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        reason, pair = _line_problem(raw)
        if reason is None:
            pairs.append(pair)
            continue
        message = f"{os.fspath(path)}:{lineno}: {reason}"
        if strict:
            raise DataError(message)
        if len(problems) < _MAX_LOGGED_PROBLEMS:
            logger.warning("skipping malformed line %s", message)
        problems.append(message)
    if len(problems) > _MAX_LOGGED_PROBLEMS:
        logger.warning("%s: %d malformed lines skipped in total", os.fspath(path), len(problems))
    return TsvReport(pairs=pairs, problems=problems)


def load_tsv_corpus(train: str | os.PathLike, dev: str | os.PathLike | None = None,
                    test: str | os.PathLike | None = None, strict: bool = False,
                    name: str = "tsv") -> Corpus:
    """Reads the given split files (see ``tfseq2seq.data.batching.read_tsv`` for malformed lines)."""
    files = {"train": train, "dev": dev, "test": test}
    splits = {split: group_pairs(read_tsv(path, strict=strict).pairs)
              for split, path in files.items() if path is not None}
    train_sources = {ex.source for ex in splits["train"]}
    for split in ("dev", "test"):
        overlap = sum(ex.source in train_sources for ex in splits.get(split, []))
        if overlap:
            logger.warning("%s: %d of its sources also occur in train", split, overlap)
    return Corpus(name=name, splits=splits)
