"""Vocabularies and in-graph tokenizers.

Everything that touches a string at serving time is a TensorFlow / TensorFlow
Text op, so tokenizers and lookup tables can live inside a SavedModel signature.
Id convention: 0 ``<pad>``, 1 ``<start>``, 2 ``<end>``, 3 ``<unk>``.
"""

from __future__ import annotations

import collections
import os
from typing import Iterable, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from tfseq2seq.files import write_text_atomic  # noqa: F401  (re-exported)

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
RESERVED_TOKENS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = 0, 1, 2, 3
SPACE_SYMBOL = "\u2581"  # "▁": how CharTokenizer spells a space inside a token
# RE2 class equal to Python's str.isspace() set (ASCII \s lacks \v and \x1c-\x1f).
WHITESPACE_RE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]"
NORMALIZATIONS = ("none", "nfkc")


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

    def token_to_id_table(self) -> tf.lookup.StaticHashTable:
        """string -> int64 id, default UNK_ID. File-backed (a SavedModel asset) once saved/loaded."""
        return self._table(by_token=True)

    lookup_table = token_to_id_table

    def id_to_token_table(self) -> tf.lookup.StaticHashTable:
        """int64 id -> string, default UNK. File-backed once saved/loaded."""
        return self._table(by_token=False)

    def _table(self, by_token: bool) -> tf.lookup.StaticHashTable:
        if self.path is None:
            tokens, ids = tf.constant(self.token_list), tf.range(len(self), dtype=tf.int64)
            init = tf.lookup.KeyValueTensorInitializer(*((tokens, ids) if by_token else (ids, tokens)))
        else:
            line = (tf.string, tf.lookup.TextFileIndex.WHOLE_LINE)
            number = (tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            key, value = (line, number) if by_token else (number, line)
            init = tf.lookup.TextFileInitializer(self.path, *key, *value, vocab_size=len(self))
        return tf.lookup.StaticHashTable(init, default_value=UNK_ID if by_token else UNK)


class Tokenizer(tf.Module):
    """Base: ``tokenize(texts [batch]) -> RaggedTensor[string] [batch, (n)]`` and back.

    Preprocessing (all in-graph): invalid UTF-8 bytes become U+FFFD, then optional
    NFKC, then optional Unicode lowercasing.
    """

    kind = ""

    def __init__(self, lowercase: bool = False, normalize: str = "none"):
        super().__init__(name=f"{self.kind}_tokenizer")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.lowercase = bool(lowercase)
        self.normalize = normalize

    def get_config(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase, "normalize": self.normalize}

    def preprocess(self, texts) -> tf.Tensor:
        """texts: string [batch] -> valid, normalized UTF-8 string [batch]."""
        texts = tf.ensure_shape(tf.convert_to_tensor(texts, tf.string), [None])
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
        if self.normalize == "nfkc":
            texts = tf_text.normalize_utf8(texts, "NFKC")
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return texts

    def tokenize(self, texts) -> tf.RaggedTensor:
        raise NotImplementedError

    def detokenize(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        """RaggedTensor[string] [batch, (n)] -> string [batch]."""
        return self.join(tokens.to_tensor(""))

    def join(self, tokens: tf.Tensor) -> tf.Tensor:
        """string [batch, n], each row's tokens first and then ``""`` (vocabulary tokens
        are never empty) -> string [batch]: ``detokenize`` without building a ragged
        tensor, which in a serving graph costs dozens of small ops."""
        raise NotImplementedError


class CharTokenizer(Tokenizer):
    """One token per Unicode code point; whitespace becomes SPACE_SYMBOL ("▁")."""

    kind = "char"

    def tokenize(self, texts) -> tf.RaggedTensor:
        texts = tf.strings.regex_replace(self.preprocess(texts), WHITESPACE_RE, SPACE_SYMBOL)
        return tf.strings.unicode_split(texts, "UTF-8", errors="replace")

    def join(self, tokens: tf.Tensor) -> tf.Tensor:
        joined = tf.strings.reduce_join(tokens, axis=-1)
        return tf.strings.regex_replace(joined, SPACE_SYMBOL, " ")


class WhitespaceTokenizer(Tokenizer):
    """Splits on runs of (Unicode) whitespace, e.g. phoneme strings ``HH AH L OW``."""

    kind = "whitespace"

    def tokenize(self, texts) -> tf.RaggedTensor:
        texts = tf.strings.regex_replace(self.preprocess(texts), WHITESPACE_RE, " ")
        return tf.strings.split(texts)

    def join(self, tokens: tf.Tensor) -> tf.Tensor:
        joined = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(joined, " +$", "")  # the separators of the ""s


# BERT-style pre-tokenization: drop whitespace; ASCII punctuation/symbols, Unicode
# punctuation and Han characters become words of their own.
_WORD_DELIMITERS = WHITESPACE_RE + r"+|[!-/:-@\[-`{-~\p{P}\p{Han}]"
_KEPT_DELIMITERS = r"[!-/:-@\[-`{-~\p{P}\p{Han}]"


def split_words(texts) -> tf.RaggedTensor:
    """string [batch] -> words RaggedTensor[string] [batch, (words)] (TF Text regex_split)."""
    return tf_text.regex_split(texts, _WORD_DELIMITERS, _KEPT_DELIMITERS)


class WordpieceTokenizer(Tokenizer):
    """``split_words`` then TensorFlow Text's FastWordpieceTokenizer on each word.

    Word-internal pieces carry the ``##`` prefix. ``vocab`` must start with
    RESERVED_TOKENS (see ``learn_wordpiece_vocab``); a word that cannot be
    pieced together becomes ``<unk>``. Detokenization glues ``##`` pieces, joins
    words with spaces and then removes the spaces pre-tokenization most likely
    invented (before ``.,!?;:%)]}``, after ``([{``, around ``'`` and ``-``, and
    between Han characters).
    """

    kind = "wordpiece"

    def __init__(self, vocab: Sequence[str], lowercase: bool = False, normalize: str = "none"):
        super().__init__(lowercase=lowercase, normalize=normalize)
        self.vocab = list(Vocabulary(vocab).token_list)  # validates
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocab, suffix_indicator="##", token_out_type=tf.string, unknown_token=UNK,
            no_pretokenization=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab": list(self.vocab)}

    def tokenize(self, texts) -> tf.RaggedTensor:
        pieces = self._wordpiece.tokenize(split_words(self.preprocess(texts)))  # [batch, (words), (pieces)]
        return pieces.merge_dims(1, 2)

    def join(self, tokens: tf.Tensor) -> tf.Tensor:
        suffix = tf.strings.regex_full_match(tokens, "##.+")
        glued = tf.where(suffix, tf.strings.regex_replace(tokens, "^##", ""),
                         tf.where(tokens == "", "", tf.strings.join([" ", tokens])))
        text = tf.strings.reduce_join(glued, axis=-1)
        for pattern, rewrite in _DETOKENIZE_RULES:
            text = tf.strings.regex_replace(text, pattern, rewrite)
        return text


_DETOKENIZE_RULES = (
    (r"^ ", ""),
    (r" ([.,!?;:%)\]}])", r"\1"),
    (r"([(\[{]) ", r"\1"),
    (r" ?([-']) ?", r"\1"),
    (r"(\p{Han}) (\p{Han})", r"\1\2"),
    (r"(\p{Han}) (\p{Han})", r"\1\2"),  # twice: the first pass cannot handle overlapping pairs
)


TOKENIZERS = {cls.kind: cls for cls in (CharTokenizer, WhitespaceTokenizer, WordpieceTokenizer)}


def make_tokenizer(kind: str, **options) -> Tokenizer:
    """Creates a tokenizer; ``make_tokenizer(**tokenizer.get_config())`` recreates one."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {sorted(TOKENIZERS)}")
    return TOKENIZERS[kind](**options)


def encode(texts, tokenizer: Tokenizer, table: tf.lookup.StaticHashTable, add_start: bool = False,
           add_end: bool = False, max_len: int | None = None) -> tf.RaggedTensor:
    """texts: string [batch] -> int32 RaggedTensor [batch, (n)].

    ``max_len`` caps the number of text tokens, before <start>/<end> are added.
    """
    tokens = tokenizer.tokenize(texts)
    if max_len is not None:
        tokens = tokens[:, :max_len]
    ids = lookup_ids(tokens, table)
    batch = ids.nrows()
    parts = [tf.fill([batch, 1], START_ID)] if add_start else []
    parts.append(ids)
    if add_end:
        parts.append(tf.fill([batch, 1], END_ID))
    return tf.concat(parts, axis=1) if len(parts) > 1 else ids


def lookup_ids(tokens: tf.RaggedTensor, table: tf.lookup.StaticHashTable) -> tf.RaggedTensor:
    """string tokens [batch, (n)] -> their int32 ids [batch, (n)] (``<unk>`` if unknown)."""
    return tf.cast(tf.ragged.map_flat_values(table.lookup, tokens), tf.int32)


def decode(ids, tokenizer: Tokenizer, table: tf.lookup.StaticHashTable) -> tf.Tensor:
    """ids: int [batch, n] (dense or ragged) -> string [batch].

    Everything from the first <end> on is dropped, as are <pad> and <start>.
    """
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor(PAD_ID)
    ids = tf.cast(ids, tf.int64)
    before_end = tf.math.equal(tf.math.cumsum(tf.cast(ids == END_ID, tf.int32), axis=1), 0)
    keep = before_end & (ids != PAD_ID) & (ids != START_ID)
    tokens = tf.ragged.map_flat_values(table.lookup, tf.ragged.boolean_mask(ids, keep))
    return tokenizer.detokenize(tokens)
