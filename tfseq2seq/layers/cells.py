"""Recurrent cells (Elman, GRU, LSTM) with a split input / recurrent step.

Weights are named, shaped, ordered and gate-laid-out exactly as in
``keras.layers.SimpleRNNCell``, ``keras.layers.GRUCell(reset_after=True)`` and
``keras.layers.LSTMCell`` (``kernel [input_dim, G*units]``, ``recurrent_kernel
[units, G*units]``, ``bias``), so ``cell.set_weights(keras_cell.get_weights())``
reproduces the Keras cell. Besides ``call(inputs, states)`` each cell exposes
``project_inputs(x)`` (input matmul + input bias, any rank, so an encoder can
project all time steps at once) and ``step(x_proj, states)`` (the recurrent
part). ``step`` is ``gates(x_proj, recurrent(states[0]), states)``: one matmul,
then elementwise work; ``gates_backward`` is the hand-written gradient of the
elementwise part, which ``unroll`` uses to run the backward pass through time
with one matmul per step (see ``tfseq2seq.unroll``). No dropout inside, no
state kept between calls.
"""

import numbers

import keras
from keras import ops


class _FusedCell(keras.layers.Layer):
    """Shared machinery; subclasses set ``_gates``/``_num_states`` and ``step``.

    ``G = _gates`` is the number of gate blocks packed along the last axis of
    ``kernel``, ``recurrent_kernel`` and ``bias``.
    """

    _gates = 1
    _num_states = 1

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(units, bool)
            or not isinstance(units, numbers.Integral)
            or units <= 0
        ):
            raise ValueError(
                f"`units` must be a positive integer, got units={units!r}."
            )
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = [self.units] * self._num_states
        self.output_size = self.units

    # -- weights -----------------------------------------------------------
    def _bias_shape(self):
        return (self._gates * self.units,)

    def _make_bias_initializer(self):
        return self.bias_initializer

    def _input_bias(self):
        return self.bias

    def build(self, input_shape):
        """Create the weights; ``input_shape`` is ``(batch, input_dim)``."""
        width = self._gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width),
            name="kernel",
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self._bias_shape(),
                name="bias",
                initializer=self._make_bias_initializer(),
            )

    # -- computation -------------------------------------------------------
    def project_inputs(self, x):
        """Input-side projection ``x @ kernel + b_in``.

        Args:
            x: ``[..., input_dim]`` (e.g. ``[batch, input_dim]`` or
                ``[batch, time, input_dim]``).

        Returns:
            ``[..., G*units]``.
        """
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        if not self.built:
            self.build(tuple(x.shape))
        x_proj = ops.matmul(x, self.kernel)
        if self.use_bias:
            x_proj = x_proj + self._input_bias()
        return x_proj

    def input_table(self, embeddings):
        """The input projection of every embedding row, ``[vocab, G*units]``.

        ``tf.gather(cell.input_table(E), ids)`` equals ``project_inputs(E[ids])`` (for
        inputs wider than ``E``, e.g. with input feeding, the first ``E.shape[-1]``
        kernel rows; add ``project_extra`` of the rest). Gathering from it replaces a
        matmul per token by one per vocabulary entry: worth it when a call projects
        more tokens than the vocabulary has (see ``layers.embedding.use_input_table``).
        """
        dim = embeddings.shape[-1]
        table = ops.matmul(embeddings, self.kernel[:dim])
        return table + self._input_bias() if self.use_bias else table

    def project_extra(self, x, offset):
        """``x @ kernel[offset:]``: the input rows after the first ``offset``."""
        return ops.matmul(x, self.kernel[offset:])

    def recurrent_bias(self):
        """The bias added to the recurrent projection (GRU's ``c``), or ``None``."""
        return None

    def recurrent(self, h):
        """The recurrent projection ``h @ recurrent_kernel (+ recurrent bias)``."""
        inner = ops.matmul(h, self.recurrent_kernel)
        bias = self.recurrent_bias()
        return inner if bias is None else inner + bias

    def step(self, x_proj, states):
        """One recurrent step from the projected input ``x_proj [batch, G*units]``.

        Returns ``(output [batch, units], new_states)``; the output is ``new_states[0]``.
        """
        return self.gates(x_proj, self.recurrent(states[0]), states)

    def gates(self, x_proj, inner, states):  # pragma: no cover - abstract
        """The elementwise part of a step, given both projections."""
        raise NotImplementedError

    def gates_backward(self, x_proj, inner, states, d_new_states):  # pragma: no cover
        """Gradient of ``gates`` given the gradients of its new states.

        Returns ``(d_x_proj, d_inner, d_states)``: ``d_x_proj`` and ``d_inner`` are
        ``[batch, G*units]`` (equal for Elman and LSTM); ``d_states`` are the direct
        (elementwise) gradients of the previous states, without the path through
        ``inner``, which the caller adds as ``d_inner @ recurrent_kernelᵀ``.
        """
        raise NotImplementedError

    def call(self, inputs, states, training=None):
        """One step: ``step(project_inputs(inputs), states)``.

        Args:
            inputs: ``[batch, input_dim]``.
            states: list/tuple of ``[batch, units]`` tensors (see
                ``state_size``); a bare tensor is accepted for one state.
            training: unused (no dropout inside the cells).

        Returns:
            ``(output [batch, units], new_states)``, ``new_states`` a list
            structured like ``states``.
        """
        if not isinstance(states, (list, tuple)):
            states = [states]
        return self.step(self.project_inputs(inputs), states)

    def get_initial_state(self, batch_size=None):
        """Zero states: a list of ``len(state_size)`` ``[batch_size, units]``."""
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
            for _ in range(self._num_states)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(
                self.kernel_initializer
            ),
            recurrent_initializer=keras.initializers.serialize(
                self.recurrent_initializer
            ),
            bias_initializer=keras.initializers.serialize(
                self.bias_initializer
            ),
        )
        return config


def _hard_tanh(x):
    return ops.clip(x, -1.0, 1.0)


# name -> (f(pre), f'(pre, f(pre))): the Elman activations that "why tanh?" compares.
ELMAN_ACTIVATIONS = {
    "tanh": (ops.tanh, lambda pre, h: 1.0 - h * h),
    "identity": (lambda pre: pre, lambda pre, h: ops.ones_like(pre)),
    "relu": (ops.relu, lambda pre, h: ops.cast(pre > 0, pre.dtype)),
    "sigmoid": (ops.sigmoid, lambda pre, h: h * (1.0 - h)),
    "hard_tanh": (_hard_tanh, lambda pre, h: ops.cast(ops.abs(pre) < 1.0, pre.dtype)),
}


@keras.saving.register_keras_serializable(package="tfseq2seq")
class ElmanCell(_FusedCell):
    """Elman (simple) RNN cell, weight-compatible with ``SimpleRNNCell``.

    ``h_t = f(x_t W + b + h_{t-1} U)`` with ``W = kernel [input_dim, units]``,
    ``U = recurrent_kernel [units, units]``, ``b = bias [units]`` and ``f`` the
    ``activation``: ``"tanh"`` (the default, as in ``SimpleRNNCell``), ``"identity"``
    (Keras' ``"linear"``), ``"relu"``, ``"sigmoid"`` or ``"hard_tanh"``.
    State: ``[h]``; output ``h_t``.
    """

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        if activation not in ELMAN_ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {sorted(ELMAN_ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.activation = activation
        self._f, self._df = ELMAN_ACTIVATIONS[activation]

    def gates(self, x_proj, inner, states):
        """``x_proj``, ``inner`` ``[batch, units]``; returns ``(h_t, [h_t])``."""
        h = self._f(x_proj + inner)
        return h, [h]

    def gates_backward(self, x_proj, inner, states, d_new_states):
        pre = x_proj + inner
        d_pre = d_new_states[0] * self._df(pre, self._f(pre))
        return d_pre, d_pre, [ops.zeros_like(states[0])]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


@keras.saving.register_keras_serializable(package="tfseq2seq")
class GRUCell(_FusedCell):
    """GRU cell, weight-compatible with ``keras.layers.GRUCell(reset_after=True)``.

    Gate order in the ``3*units`` axis is ``z, r, h``; ``bias`` is
    ``[2, 3*units]`` (row 0: input bias ``b``, row 1: recurrent bias ``c``)::

        z   = sigmoid(x W_z + b_z + h_{t-1} U_z + c_z)
        r   = sigmoid(x W_r + b_r + h_{t-1} U_r + c_r)
        hh  = tanh(x W_h + b_h + r * (h_{t-1} U_h + c_h))
        h_t = z * h_{t-1} + (1 - z) * hh

    State: ``[h]``; output ``h_t``.
    """

    _gates = 3

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _input_bias(self):
        return self.bias[0]

    def recurrent_bias(self):
        return self.bias[1] if self.use_bias else None

    def _activations(self, x_proj, inner):
        # Splits, not slices: inside a decode loop every slice is a node with three
        # constant inputs, executed at every step.
        x_z, x_r, x_h = ops.split(x_proj, 3, axis=-1)
        u_z, u_r, u_h = ops.split(inner, 3, axis=-1)
        z, r = ops.sigmoid(x_z + u_z), ops.sigmoid(x_r + u_r)
        return z, r, u_h, ops.tanh(x_h + r * u_h)

    def gates(self, x_proj, inner, states):
        """``x_proj``, ``inner`` ``[batch, 3*units]``; returns ``(h_t, [h_t])``."""
        z, _, _, hh = self._activations(x_proj, inner)
        h = hh + z * (states[0] - hh)
        return h, [h]

    def gates_backward(self, x_proj, inner, states, d_new_states):
        h_prev, d_h = states[0], d_new_states[0]
        z, r, u_h, hh = self._activations(x_proj, inner)
        d_hh_pre = d_h * (1.0 - z) * (1.0 - hh * hh)
        d_zr = ops.concatenate(
            [d_h * (h_prev - hh) * z * (1.0 - z), d_hh_pre * u_h * r * (1.0 - r)], axis=-1)
        d_x = ops.concatenate([d_zr, d_hh_pre], axis=-1)
        d_inner = ops.concatenate([d_zr, d_hh_pre * r], axis=-1)
        return d_x, d_inner, [d_h * z]


@keras.saving.register_keras_serializable(package="tfseq2seq")
class LSTMCell(_FusedCell):
    """LSTM cell, weight-compatible with ``keras.layers.LSTMCell``.

    Gate order in the ``4*units`` axis is ``i, f, c, o``; ``bias [4*units]``
    (the forget block is initialised to ones when ``unit_forget_bias``)::

        i   = sigmoid(x W_i + h_{t-1} U_i + b_i)
        f   = sigmoid(x W_f + h_{t-1} U_f + b_f)
        c_t = f * c_{t-1} + i * tanh(x W_c + h_{t-1} U_c + b_c)
        o   = sigmoid(x W_o + h_{t-1} U_o + b_o)
        h_t = o * tanh(c_t)

    State: ``[h, c]``; output ``h_t``.
    """

    _gates = 4
    _num_states = 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _make_bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def initializer(_shape, dtype=None):
            return ops.concatenate(
                [
                    base((units,), dtype=dtype),
                    ops.ones((units,), dtype=dtype),
                    base((2 * units,), dtype=dtype),
                ]
            )

        return initializer

    def _activations(self, x_proj, inner, c_prev):
        g_i, g_f, g_c, g_o = ops.split(x_proj + inner, 4, axis=-1)
        i, f, o, g = ops.sigmoid(g_i), ops.sigmoid(g_f), ops.sigmoid(g_o), ops.tanh(g_c)
        c = f * c_prev + i * g
        return i, f, g, o, c

    def gates(self, x_proj, inner, states):
        """``x_proj``, ``inner`` ``[batch, 4*units]``, ``states = [h, c]``; returns
        ``(h_t, [h_t, c_t])``."""
        _, _, _, o, c = self._activations(x_proj, inner, states[1])
        h = o * ops.tanh(c)
        return h, [h, c]

    def gates_backward(self, x_proj, inner, states, d_new_states):
        c_prev = states[1]
        i, f, g, o, c = self._activations(x_proj, inner, c_prev)
        tanh_c = ops.tanh(c)
        d_h = d_new_states[0]
        d_c = d_new_states[1] + d_h * o * (1.0 - tanh_c * tanh_c)
        d_gates = ops.concatenate([
            d_c * g * i * (1.0 - i), d_c * c_prev * f * (1.0 - f),
            d_c * i * (1.0 - g * g), d_h * tanh_c * o * (1.0 - o)], axis=-1)
        return d_gates, d_gates, [ops.zeros_like(d_h), d_c * f]

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config
