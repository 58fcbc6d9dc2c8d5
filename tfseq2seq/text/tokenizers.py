"""In-graph tokenizers: text ``[batch]`` -> token strings ``[batch, (n)]`` and back.

Everything that touches a string at serving time is a TensorFlow / TensorFlow Text op,
so tokenizers live inside a SavedModel signature.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from tfseq2seq.text.vocab import UNK, Vocabulary

SPACE_SYMBOL = "\u2581"  # "▁": how CharTokenizer spells a space inside a token
# RE2 class equal to Python's str.isspace() set (ASCII \s lacks \v and \x1c-\x1f).
WHITESPACE_RE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]"
NORMALIZATIONS = ("none", "nfkc")


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
