"""Combining the attention context ``c_t`` with the decoder state ``h_t`` into ``h̃_t``."""

import keras
import tensorflow as tf

from tfseq2seq.util.checks import require_choice, require_positive_int

COMBINES = ("concat", "add", "mlp")


@keras.saving.register_keras_serializable(package="tfseq2seq")
class ContextCombiner(keras.layers.Layer):
    """``h̃_t`` from the context ``c_t`` and the decoder output ``h_t``.

    * ``concat``: ``h̃_t = tanh(W_c [c_t; h_t])`` (Luong et al., 2015)
    * ``add``:    ``h̃_t = h_t + c_t`` (sizes must match)
    * ``mlp``:    ``h̃_t = h_t + tanh(W_m c_t + b_m)``, a separate perceptron on the context

    Call: ``context [..., context_dim]``, ``hidden [..., units]`` -> ``[..., units]``.
    """

    def __init__(self, units, combine="concat", **kwargs):
        super().__init__(**kwargs)
        self.units = require_positive_int("units", units)
        self.combine = require_choice("combine", combine, COMBINES)

    def build(self, context_shape, hidden_shape=None):
        context_dim = int(context_shape[-1])
        if self.combine == "add" and context_dim != self.units:
            raise ValueError(
                f"combine='add' needs context size == units, got {context_dim} and {self.units}")
        if self.combine == "concat":
            self.kernel = self.add_weight(
                name="kernel", shape=(context_dim + self.units, self.units),
                initializer="glorot_uniform")
        elif self.combine == "mlp":
            self.kernel = self.add_weight(
                name="kernel", shape=(context_dim, self.units), initializer="glorot_uniform")
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.built = True

    def call(self, context, hidden):
        if self.combine == "add":
            return hidden + context
        if self.combine == "concat":
            return tf.tanh(_dense(tf.concat([context, hidden], axis=-1), self.kernel))
        return hidden + tf.tanh(_dense(context, self.kernel) + self.bias)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, combine=self.combine)
        return config


def _dense(x, kernel):
    """``x [..., in] @ kernel [in, out]`` for rank 2 or 3 ``x``."""
    if x.shape.rank == 2:
        return tf.matmul(x, kernel)
    return tf.einsum("bti,io->bto", x, kernel)
