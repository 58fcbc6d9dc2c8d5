"""The one text path: text -> ids for the encoder, and decoded ids -> text.

``TextPipeline`` is built from a run's two tokenizers and two vocabularies. The training
data (``data.make_dataset``), ``Translator`` (translate, evaluate, plot-attention, the
dev metrics during training) and the export's signatures all call it, so an input is
tokenized, limited, looked up, padded and detokenized the same way everywhere. Every
method is TensorFlow ops only: it runs eagerly, in ``tf.function`` and in a SavedModel.

Inputs that need a rule, and the rule (the same on every path):

- no tokens (``""``, whitespace only for the whitespace/wordpiece tokenizers): the row
  is not decoded; its output is empty text, length 0, score 0, no attention.
- more than ``max_source_len`` tokens: cut to the first ``max_source_len``
  (``overlong="truncate"``), or the call fails with ``InvalidArgumentError``
  (``"reject"``); training pairs follow ``data.overlong`` instead (``make_dataset``).
- invalid UTF-8: each bad byte becomes U+FFFD (the tokenizer's preprocessing).
- tokens outside the vocabulary (unknown symbols, other scripts): ``<unk>``.
"""

from __future__ import annotations

import tensorflow as tf

from tfseq2seq.text.tokenizers import Tokenizer
from tfseq2seq.text.vocab import END_ID, PAD_ID, START_ID, Vocabulary
from tfseq2seq.util.checks import require_choice, require_positive_int

OVERLONG = ("truncate", "reject")


class TextPipeline(tf.Module):
    """Text in and out for one model.

    Args:
        source_tokenizer, target_tokenizer: the run's tokenizers.
        source_vocab, target_vocab: the run's vocabularies (file-backed once saved, so an
            export carries them as assets).
        max_source_len: most source tokens per input (``None``: no limit).
        overlong: ``"truncate"`` or ``"reject"`` inputs over ``max_source_len``.
    """

    def __init__(self, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer,
                 source_vocab: Vocabulary, target_vocab: Vocabulary,
                 max_source_len: int | None = None, overlong: str = "truncate"):
        super().__init__(name="text_pipeline")
        if max_source_len is not None:
            require_positive_int("max_source_len", max_source_len)
        self.max_source_len = max_source_len
        self.overlong = require_choice("overlong", overlong, OVERLONG)
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.source_vocab_size, self.target_vocab_size = len(source_vocab), len(target_vocab)
        self.source_table = source_vocab.token_to_id_table()
        self.target_ids_table = target_vocab.token_to_id_table()
        self.target_table = target_vocab.id_to_token_table()

    @classmethod
    def from_run(cls, run, overlong: str = "truncate", max_source_len: int | None = None):
        """The pipeline of a ``run_dir.Run``; ``max_source_len`` defaults to the run's
        ``data.max_source_len``."""
        limit = run.config.data.max_source_len if max_source_len is None else max_source_len
        return cls(run.source_tokenizer, run.target_tokenizer, run.source_vocab,
                   run.target_vocab, limit, overlong)

    # ------------------------------------------------------------- text -> ids
    def source_tokens(self, text) -> tf.RaggedTensor:
        """string ``[batch]`` -> the tokens the encoder reads, ``[batch, (n)]``: limited
        to ``max_source_len`` (cut or rejected, per ``overlong``)."""
        tokens = self.source_tokenizer.tokenize(text)
        limit = self.max_source_len
        if limit is None:
            return tokens
        if self.overlong == "reject":  # in a tf.function, automatic control dependencies
            tf.debugging.assert_less_equal(  # run the assertion before the outputs
                tokens.row_lengths(), tf.constant(limit, tf.int64),
                message=f"input text has more than max_source_len={limit} tokens")
            return tokens
        return tokens[:, :limit]

    def source_ids(self, text):
        """string ``[batch]`` -> ``(ids int32 [batch, max(1, n)], counts int32 [batch])``:
        the 0-padded id matrix the encoder reads and each row's token count. There is
        always at least one column (the encoder cannot run over zero time steps)."""
        return self.source_ids_of(self.source_tokens(text))

    def source_ids_of(self, tokens):
        """``source_ids`` from the ``source_tokens`` of a batch."""
        ids = lookup_ids(tokens, self.source_table)
        counts = tf.cast(ids.row_lengths(), tf.int32)
        shape = tf.stack([ids.nrows(out_type=tf.int32), tf.maximum(tf.reduce_max(counts), 1)])
        return ids.to_tensor(PAD_ID, shape=shape), counts

    def source_ids_unlimited(self, text) -> tf.RaggedTensor:
        """Source ids ``[batch, (n)]`` with no length limit (training pairs, whose
        over-long ones ``make_dataset`` drops or cuts per ``data.overlong``)."""
        return lookup_ids(self.source_tokenizer.tokenize(text), self.source_table)

    def target_ids(self, text) -> tf.RaggedTensor:
        """Target text ``[batch]`` -> ids ``[batch, (n)]`` (no ``<start>``/``<end>``)."""
        return lookup_ids(self.target_tokenizer.tokenize(text), self.target_ids_table)

    # ------------------------------------------------------------- ids -> text
    def target_tokens(self, token_ids, lengths):
        """Decoded ids ``[batch, out_len]`` and ``lengths [batch]`` -> token strings
        ``[batch, out_len]`` (``""`` from ``lengths`` on)."""
        mask = tf.sequence_mask(lengths, tf.shape(token_ids)[1])
        return tf.where(mask, self.target_table.lookup(tf.cast(token_ids, tf.int64)), "")

    def target_text(self, tokens):
        """Token strings ``[batch, out_len]``, each row's tokens first -> text ``[batch]``."""
        return self.target_tokenizer.join(tokens)

    def outputs(self, decoded, counts):
        """A decode loop's result and the source token ``counts`` -> the output dict every
        path returns (the serving signatures' outputs): ``text``, ``tokens``,
        ``token_ids``, ``lengths``, ``scores``, ``attention``. Rows with no source token
        are blanked (see the module docstring)."""
        has_input = counts > 0
        lengths = tf.where(has_input, decoded["lengths"], 0)
        out_len = tf.maximum(tf.reduce_max(lengths), 0)
        mask = tf.sequence_mask(lengths, out_len)
        token_ids = tf.where(mask, decoded["token_ids"][:, :out_len], 0)
        # Decoding never emits <pad> or <start> and stops before <end>, so each row's
        # tokens come first and the padded matrix detokenizes as it is.
        tokens = self.target_tokens(token_ids, lengths)
        return {
            "text": self.target_text(tokens),
            "tokens": tokens,
            "token_ids": token_ids,
            "lengths": lengths,
            "scores": tf.where(has_input, decoded["scores"], 0.0),
            "attention": tf.where(mask[:, :, tf.newaxis], decoded["attention"][:, :out_len], 0.0),
        }


def lookup_ids(tokens: tf.RaggedTensor, table) -> tf.RaggedTensor:
    """string tokens ``[batch, (n)]`` -> their int32 ids (``<unk>`` if unknown)."""
    return tf.cast(tf.ragged.map_flat_values(table.lookup, tokens), tf.int32)


def decode_ids(ids, tokenizer: Tokenizer, table) -> tf.Tensor:
    """Any id matrix ``[batch, n]`` (dense or ragged; e.g. a reference target) -> text
    ``[batch]``: everything from the first ``<end>`` on is dropped, as are ``<pad>`` and
    ``<start>``. ``table`` maps ids to tokens (``Vocabulary.id_to_token_table``)."""
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor(PAD_ID)
    ids = tf.cast(ids, tf.int64)
    before_end = tf.math.equal(tf.math.cumsum(tf.cast(ids == END_ID, tf.int32), axis=1), 0)
    keep = before_end & (ids != PAD_ID) & (ids != START_ID)
    tokens = tf.ragged.map_flat_values(table.lookup, tf.ragged.boolean_mask(ids, keep))
    return tokenizer.detokenize(tokens)
