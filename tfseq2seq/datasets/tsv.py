"""Users' own ``source<TAB>target`` files as a Corpus.

Lines with the same source become one example with several references.
"""

from __future__ import annotations

import logging
import os

from tfseq2seq.data import read_tsv
from tfseq2seq.datasets import Corpus, group_pairs

logger = logging.getLogger(__name__)


def load_tsv_corpus(train: str | os.PathLike, dev: str | os.PathLike | None = None,
                    test: str | os.PathLike | None = None, strict: bool = False,
                    name: str = "tsv") -> Corpus:
    """Reads the given split files (see ``tfseq2seq.data.read_tsv`` for malformed lines)."""
    files = {"train": train, "dev": dev, "test": test}
    splits = {split: group_pairs(read_tsv(path, strict=strict).pairs)
              for split, path in files.items() if path is not None}
    train_sources = {ex.source for ex in splits["train"]}
    for split in ("dev", "test"):
        overlap = sum(ex.source in train_sources for ex in splits.get(split, []))
        if overlap:
            logger.warning("%s: %d of its sources also occur in train", split, overlap)
    return Corpus(name=name, splits=splits)
