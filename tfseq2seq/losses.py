"""The default training loss: cross-entropy over target tokens, ignoring padding."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfseq2seq")
class MaskedCrossEntropy(keras.losses.Loss):
    """Mean sparse cross-entropy over the non-padding tokens of a batch.

    ``y_true`` int ``[batch, tgt_len]`` (0 = padding), ``y_pred`` logits
    ``[batch, tgt_len, vocab]``. Every real token weighs the same, however the batch is
    padded; a batch with no real token has loss 0. ``label_smoothing`` ``ls`` trains
    towards ``(1 - ls) * one_hot + ls / vocab`` (as ``keras.losses.CategoricalCrossentropy``).
    """

    def __init__(self, pad_id=0, label_smoothing=0.0, name="masked_cross_entropy", **kwargs):
        kwargs.setdefault("reduction", "sum")
        super().__init__(name=name, **kwargs)
        if isinstance(label_smoothing, bool) or not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}")
        self.pad_id = pad_id
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.int32)
        mask = tf.cast(tf.not_equal(y_true, self.pad_id), y_pred.dtype)
        safe = tf.where(y_true == self.pad_id, tf.zeros_like(y_true), y_true)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=y_pred)
        if self.label_smoothing:
            uniform = -tf.reduce_mean(tf.nn.log_softmax(y_pred), axis=-1)
            losses = (1.0 - self.label_smoothing) * losses + self.label_smoothing * uniform
        # Returned per token, pre-divided by the token count, so the "sum" reduction
        # gives the token-level mean (and sample weights still apply per token). Under a
        # tf.distribute strategy with N replicas each replica's mean is also divided by N:
        # the replicas' gradients are summed, and Keras scales only mean-reduced losses.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return losses * mask / (tf.maximum(tf.reduce_sum(mask), 1.0) * replicas)

    def get_config(self):
        config = super().get_config()
        config.update(pad_id=self.pad_id, label_smoothing=self.label_smoothing)
        return config
