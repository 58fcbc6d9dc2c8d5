"""Luong et al. (2015) global attention with ``dot``, ``general`` and ``concat`` scores."""

import keras
import tensorflow as tf

from tfseq2seq.util.checks import require_choice, require_positive_int

SCORES = ("dot", "general", "concat")
_MASK_PENALTY = 1e9  # same constant as keras.layers.Attention, so "dot" matches it exactly


@keras.saving.register_keras_serializable(package="tfseq2seq")
class LuongAttention(keras.layers.Layer):
    """Scores each memory position against a query and returns the weighted context.

    * ``dot``:     ``score(h_t, h_s) = h_tᵀ h_s`` (query and memory sizes must match)
    * ``general``: ``score(h_t, h_s) = h_tᵀ W_a h_s``
    * ``concat``:  ``score(h_t, h_s) = v_aᵀ tanh(W_a [h_t; h_s])``, computed as
      ``v_aᵀ tanh(W_q h_t + W_k h_s)`` so the memory half is projected once per sequence.

    Weights are a softmax over the unmasked memory positions; masked positions get
    exactly 0 (a row whose memory is entirely masked gets all zeros and a zero context).

    The memory-side projection is split out (``project_memory``) so a decoder can compute
    it once per source sentence and call ``attend`` at every step; ``call`` does both.

    Args:
        score: one of ``"dot"``, ``"general"``, ``"concat"``.
        attention_units: size of the hidden layer of the ``concat`` score
            (default: the query size).
    """

    def __init__(self, score="general", attention_units=None, **kwargs):
        super().__init__(**kwargs)
        self.score = require_choice("score", score, SCORES)
        if attention_units is not None:
            require_positive_int("attention_units", attention_units)
        self.attention_units = attention_units

    def build(self, query_shape, memory_shape=None):
        query_dim = int(query_shape[-1])
        memory_dim = int(memory_shape[-1]) if memory_shape is not None else query_dim
        if self.score == "dot" and query_dim != memory_dim:
            raise ValueError(
                f"score='dot' needs query and memory of the same size, got query {query_dim} "
                f"and memory {memory_dim}; use score='general' or 'concat'")
        if self.score == "general":
            self.memory_kernel = self.add_weight(
                name="memory_kernel", shape=(memory_dim, query_dim), initializer="glorot_uniform")
        elif self.score == "concat":
            units = self.attention_units or query_dim
            self.memory_kernel = self.add_weight(
                name="memory_kernel", shape=(memory_dim, units), initializer="glorot_uniform")
            self.query_kernel = self.add_weight(
                name="query_kernel", shape=(query_dim, units), initializer="glorot_uniform")
            self.score_vector = self.add_weight(
                name="score_vector", shape=(units,), initializer="glorot_uniform")
        self.built = True

    def project_memory(self, memory):
        """Memory ``[batch, src_len, memory_dim]`` -> keys ``[batch, src_len, key_dim]``."""
        if self.score == "dot":
            return memory
        return tf.einsum("bsm,mk->bsk", memory, self.memory_kernel)

    def attend(self, query, keys, memory, memory_mask=None):
        """Attention of queries over precomputed keys.

        Args:
            query: ``[batch, units]`` or ``[batch, tgt_len, units]``.
            keys: ``[batch, src_len, key_dim]`` from ``project_memory``.
            memory: ``[batch, src_len, memory_dim]``, the values that are averaged.
            memory_mask: optional bool ``[batch, src_len]``; ``False`` marks padding.

        Returns:
            ``(context, weights)``: ``[batch, (tgt_len,) memory_dim]`` and
            ``[batch, (tgt_len,) src_len]``, with the query's rank.
        """
        single = query.shape.rank == 2
        if single:
            query = tf.expand_dims(query, 1)
        if self.score == "concat":
            hidden = tf.tanh(
                tf.einsum("btq,qk->btk", query, self.query_kernel)[:, :, tf.newaxis, :]
                + keys[:, tf.newaxis, :, :])
            scores = tf.einsum("btsk,k->bts", hidden, self.score_vector)
        else:
            scores = tf.matmul(query, keys, transpose_b=True)
        weights = masked_softmax(scores, memory_mask)
        context = tf.matmul(weights, memory)
        if single:
            return tf.squeeze(context, 1), tf.squeeze(weights, 1)
        return context, weights

    def call(self, query, memory, memory_mask=None):
        """``(context, weights)`` of ``query`` over ``memory``; see ``attend`` for shapes."""
        if query.shape.rank not in (2, 3):
            raise ValueError(f"query must have rank 2 or 3, got shape {query.shape}")
        if memory.shape.rank != 3:
            raise ValueError(f"memory must have rank 3 [batch, src_len, units], got shape {memory.shape}")
        return self.attend(query, self.project_memory(memory), memory, memory_mask)

    def get_config(self):
        config = super().get_config()
        config.update(score=self.score, attention_units=self.attention_units)
        return config


def masked_softmax(scores, mask=None):
    """Softmax over the last axis of ``scores [batch, tq, src_len]``; ``mask [batch, src_len]``.

    Masked positions get weight 0; rows with no valid position get all zeros.
    """
    if mask is None:
        return tf.nn.softmax(scores, axis=-1)
    valid = tf.expand_dims(tf.cast(mask, scores.dtype), 1)
    weights = tf.nn.softmax(scores - _MASK_PENALTY * (1.0 - valid), axis=-1)
    return weights * valid
