"""Recurrent cells (Elman, GRU, LSTM) with a split input / recurrent step.

Weights are named, shaped, ordered and gate-laid-out exactly as in
``keras.layers.SimpleRNNCell``, ``keras.layers.GRUCell(reset_after=True)`` and
``keras.layers.LSTMCell`` (``kernel [input_dim, G*units]``, ``recurrent_kernel
[units, G*units]``, ``bias``), so ``cell.set_weights(keras_cell.get_weights())``
reproduces the Keras cell. Besides ``call(inputs, states)`` each cell exposes
``project_inputs(x)`` (input matmul + input bias, any rank, so an encoder can
project all time steps at once) and ``step(x_proj, states)`` (the recurrent
part). No dropout inside, no state kept between calls.
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

    def step(self, x_proj, states):  # pragma: no cover - abstract
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


@keras.saving.register_keras_serializable(package="tfseq2seq")
class ElmanCell(_FusedCell):
    """Elman (simple) RNN cell, weight-compatible with ``SimpleRNNCell``.

    ``h_t = tanh(x_t W + b + h_{t-1} U)`` with ``W = kernel [input_dim, units]``,
    ``U = recurrent_kernel [units, units]``, ``b = bias [units]``.
    State: ``[h]``; output ``h_t``.
    """

    def step(self, x_proj, states):
        """Args: ``x_proj [batch, units]``, ``states = [h [batch, units]]``.

        Returns ``(h_t [batch, units], [h_t])``.
        """
        h = ops.tanh(x_proj + ops.matmul(states[0], self.recurrent_kernel))
        return h, [h]


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

    def step(self, x_proj, states):
        """Args: ``x_proj [batch, 3*units]``, ``states = [h [batch, units]]``.

        Returns ``(h_t [batch, units], [h_t])``.
        """
        h_prev = states[0]
        inner = ops.matmul(h_prev, self.recurrent_kernel)
        if self.use_bias:
            inner = inner + self.bias[1]
        x_z, x_r, x_h = ops.split(x_proj, 3, axis=-1)
        u_z, u_r, u_h = ops.split(inner, 3, axis=-1)
        z = ops.sigmoid(x_z + u_z)
        r = ops.sigmoid(x_r + u_r)
        hh = ops.tanh(x_h + r * u_h)
        h = z * h_prev + (1.0 - z) * hh
        return h, [h]


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

    def step(self, x_proj, states):
        """Args: ``x_proj [batch, 4*units]``, ``states = [h, c]`` each
        ``[batch, units]``.

        Returns ``(h_t [batch, units], [h_t, c_t])``.
        """
        h_prev, c_prev = states[0], states[1]
        gates = x_proj + ops.matmul(h_prev, self.recurrent_kernel)
        g_i, g_f, g_c, g_o = ops.split(gates, 4, axis=-1)
        c = ops.sigmoid(g_f) * c_prev + ops.sigmoid(g_i) * ops.tanh(g_c)
        h = ops.sigmoid(g_o) * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config
