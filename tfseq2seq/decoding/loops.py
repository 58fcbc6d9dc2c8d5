"""Helpers shared by the decode loops (``greedy``, ``beam``): argument checks, shape
invariants, time-major buffer writes, beam tiling and the GNMT length penalty."""

import tensorflow as tf

from tfseq2seq.util.checks import require_positive_int


def tile_beams(x, beam_width):
    """``[b, ...] -> [b * beam_width, ...]``: row ``i`` becomes rows ``i*k .. i*k+k-1``.

    Works on any nested structure of tensors (dict / list / tuple) through ``tf.nest``.
    """
    require_positive_int("beam_width", beam_width)
    return tf.nest.map_structure(lambda t: tf.repeat(t, beam_width, axis=0), x)


def gnmt_length_penalty(length, alpha):
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` as float32 (1 when alpha is 0)."""
    length = tf.cast(length, tf.float32)
    return tf.pow((5.0 + length) / 6.0, tf.cast(alpha, tf.float32))


def check_max_length(max_length):
    """Validates a Python-int ``max_length``; returns it as a scalar int32 tensor (≥ 0)."""
    if not tf.is_tensor(max_length):
        require_positive_int("max_length", max_length)
    return tf.maximum(tf.cast(max_length, tf.int32), 0)


def relaxed(x, axis=0):
    """Shape invariant of ``x`` with dimension ``axis`` (the batch/beam dim) left unknown."""
    if x.shape.rank is None:
        return tf.TensorShape(None)
    dims = x.shape.as_list()
    dims[axis] = None
    return tf.TensorShape(dims)


def write_step(buffer, t, value):
    """Time-major ``buffer[t] = value`` (one slice; no full-buffer arithmetic)."""
    return tf.tensor_scatter_nd_update(buffer, [[t]], value[tf.newaxis])
