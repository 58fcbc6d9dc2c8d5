"""Vocabularies: an ordered token list, its file format and its lookup tables.

Id convention: 0 ``<pad>``, 1 ``<start>``, 2 ``<end>``, 3 ``<unk>``. Building, saving and
loading a vocabulary needs no TensorFlow; only the lookup tables import it.
"""

from __future__ import annotations

import collections
import os
from typing import Iterable, Sequence

from tfseq2seq.util.files import write_text_atomic

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
RESERVED_TOKENS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3


class Vocabulary:
    """An ordered token list whose first four entries are RESERVED_TOKENS.

    Tokens are non-empty and contain no whitespace (so one token a line is an
    unambiguous file format, also for TensorFlow's TextFileInitializer).
    """

    def __init__(self, tokens: Sequence[str], path: str | os.PathLike | None = None):
        tokens = tuple(tokens)
        if tokens[: len(RESERVED_TOKENS)] != RESERVED_TOKENS:
            raise ValueError(f"vocabulary must start with {list(RESERVED_TOKENS)}, got {list(tokens[:4])}")
        for token in tokens:
            if not isinstance(token, str) or not token or any(ch.isspace() for ch in token):
                raise ValueError(f"invalid vocabulary token {token!r}: must be a non-empty string without whitespace")
        if len(set(tokens)) != len(tokens):
            dupes = [t for t, n in collections.Counter(tokens).items() if n > 1]
            raise ValueError(f"duplicate vocabulary tokens: {dupes[:10]}")
        self.token_list = tokens
        self.path = None if path is None else os.fspath(path)
        self._index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None) -> "Vocabulary":
        """Counts tokens; order is count descending, then token. ``max_size`` includes the reserved tokens."""
        if max_size is not None and max_size < len(RESERVED_TOKENS):
            raise ValueError(f"max_size must be >= {len(RESERVED_TOKENS)}, got {max_size}")
        counts = collections.Counter(t for tokens in token_lists for t in tokens)
        for token in RESERVED_TOKENS:
            counts.pop(token, None)
        kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(RESERVED_TOKENS)]
        return cls(RESERVED_TOKENS + tuple(kept))

    def save(self, path: str | os.PathLike) -> str:
        """Writes one token a line (UTF-8) atomically and remembers ``path`` for the lookup tables."""
        path = os.fspath(path)
        write_text_atomic(path, "".join(t + "\n" for t in self.token_list))
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
            return cls(text[:-1].split("\n") if text.endswith("\n") else text.split("\n"), path=path)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a valid vocabulary file: {e}") from e

    def __len__(self) -> int:
        return len(self.token_list)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.token_list == other.token_list

    def ids(self, tokens: Iterable[str]) -> list[int]:
        return [self._index.get(t, UNK_ID) for t in tokens]

    def tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.token_list[i] if 0 <= i < len(self) else UNK for i in ids]

    def token_to_id_table(self):
        """string -> int64 id, default UNK_ID. File-backed (a SavedModel asset) once saved/loaded."""
        return self._table(by_token=True)

    lookup_table = token_to_id_table

    def id_to_token_table(self):
        """int64 id -> string, default UNK. File-backed once saved/loaded."""
        return self._table(by_token=False)

    def _table(self, by_token: bool):
        import tensorflow as tf

        if self.path is None:
            tokens, ids = tf.constant(self.token_list), tf.range(len(self), dtype=tf.int64)
            init = tf.lookup.KeyValueTensorInitializer(*((tokens, ids) if by_token else (ids, tokens)))
        else:
            line = (tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
            number = (tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            key, value = (line, number) if by_token else (number, line)
            init = tf.lookup.TextFileInitializer(self.path, *key, *value, vocab_size=len(self))
        return tf.lookup.StaticHashTable(init, default_value=UNK_ID if by_token else UNK)
