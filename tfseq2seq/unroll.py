"""Running a recurrent cell over a whole (padded) sequence with ``tf.while_loop``.

Two implementations of one recurrence, chosen by ``unroll(..., training=)``:

- the plain loop (inference): ``cell.step`` once per time step;
- the training loop: the same forward, recording each step's recurrent projection, with
  a hand-written backward pass through time (``tf.custom_gradient``). Automatic
  differentiation of a while loop computes two matmuls per step (``dh @ Uᵀ`` and the
  weight gradient ``hᵀ @ d``, accumulated step by step) and pushes every intermediate on
  a stack. The backward here runs one matmul per step (``dh @ Uᵀ``) and computes the
  weight gradient afterwards as one large matmul over all steps at once
  (``[units, time·batch] @ [time·batch, G·units]``), which is what fused RNN kernels do.
  Both give the same values and gradients (``tests/test_unroll.py``).
"""

import tensorflow as tf


def unroll(cell, inputs, mask=None, initial_state=None, reverse=False, training=False,
           projected=None, skip_padding=False):
    """Runs ``cell`` over time; padded steps neither update the state nor emit output.

    The input-side matmul of every step is done at once (``cell.project_inputs`` on the
    whole sequence) and only the recurrent part runs inside the loop.

    Args:
        cell: a cell with ``project_inputs``, ``recurrent``, ``gates``,
            ``gates_backward``, ``step`` and ``get_initial_state`` (``layers.cells``).
        inputs: float ``[batch, time, input_dim]``.
        mask: optional bool ``[batch, time]``; ``False`` marks padding.
        initial_state: optional list of ``[batch, units]`` tensors (default zeros).
        reverse: run from the last step to the first (outputs keep input order).
        training: use the loop with the hand-written backward pass (same values).
        projected: optional ``[batch, time, G*units]``, the inputs already projected
            (e.g. gathered from ``cell.input_table``); ``inputs`` is then ignored.
        skip_padding: (inference) each step computes only the rows that are not padding
            there, gathered and scattered back, instead of computing every row and
            selecting; pays off for batches of mixed lengths. The shapes inside the
            loop vary, so not under XLA. Ignored with ``training``.

    Returns:
        ``(outputs, final_state)``: ``[batch, time, units]`` (zeros at padded steps) and the
        list of state tensors after the last valid step of each sequence.
    """
    if projected is None:
        projected = cell.project_inputs(inputs)
    if initial_state is None:
        initial_state = cell.get_initial_state(tf.shape(projected)[0])
    projected = tf.transpose(projected, [1, 0, 2])  # [time, batch, G*units]
    mask_t = None if mask is None else tf.transpose(mask, [1, 0])[:, :, tf.newaxis]  # [time, batch, 1]
    if reverse:
        projected = tf.reverse(projected, [0])
        mask_t = None if mask_t is None else tf.reverse(mask_t, [0])
    if training:
        outputs, final_state = _trainable_loop(cell, projected, mask_t, list(initial_state))
    else:
        outputs, final_state = _forward_loop(cell, projected, mask_t, list(initial_state),
                                             skip_padding=skip_padding)
    if reverse:
        outputs = tf.reverse(outputs, [0])
    return tf.transpose(outputs, [1, 0, 2]), final_state


def same_shapes(new, old):
    """``new`` (a nest of tensors) with the static shapes of ``old``, checked at run time:
    a loop body's reads of TensorArrays lose the static batch size, and ``tf.while_loop``
    refuses a variable that enters as ``[1, units]`` and leaves as ``[None, units]``."""
    return tf.nest.map_structure(lambda n, o: tf.ensure_shape(n, o.shape), new, old)


def _reader(values, dtype):
    """A TensorArray over the leading (time) axis of ``values``: per-step reads of a
    captured tensor would make its gradient materialise the whole tensor every step."""
    return tf.TensorArray(dtype, size=tf.shape(values)[0],
                          element_shape=[None] + values.shape[2:].as_list()).unstack(values)


def _stack(array, batch, width, dtype):
    """``array.stack()``, or ``[0, batch, width]`` zeros for an empty array (an empty
    TensorArray cannot be stacked when the batch size is unknown)."""
    return tf.cond(array.size() > 0, array.stack, lambda: tf.zeros([0, batch, width], dtype))


def _forward_loop(cell, projected, mask_t, state, record=False, skip_padding=False):
    """Time-major forward. Returns ``(outputs [T, B, units], final_state)`` and, with
    ``record``, each step's recurrent projection and previous states (time-major);
    ``skip_padding``: see ``unroll`` (not with ``record``)."""
    steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    dtype, width = projected.dtype, projected.shape[-1]
    x_ta = _reader(projected, dtype)
    keep_ta = None if mask_t is None else _reader(mask_t, tf.bool)
    new_ta = lambda w: tf.TensorArray(dtype, size=steps, element_shape=[None, w])  # noqa: E731
    arrays = [new_ta(cell.units)]
    if record:
        arrays += [new_ta(width)] + [new_ta(cell.units) for _ in state]

    def skipping_body(t, state, arrays):
        rows = tf.where(tf.reshape(keep_ta.read(t), [-1]))  # [k, 1] int64
        part = [tf.gather_nd(s, rows) for s in state]
        output, new_part = cell.gates(tf.gather_nd(x_ta.read(t), rows), cell.recurrent(part[0]), part)
        new_state = [tf.tensor_scatter_nd_update(s, rows, n) for s, n in zip(state, new_part)]
        output = tf.scatter_nd(rows, output, tf.shape(state[0], out_type=tf.int64))
        return t + 1, new_state, [arrays[0].write(t, output)]

    def body(t, state, arrays):
        inner = cell.recurrent(state[0])
        output, new_state = cell.gates(x_ta.read(t), inner, state)
        if keep_ta is not None:  # unmasked (e.g. the teacher-forced decoder): no selects
            keep = keep_ta.read(t)
            new_state = [tf.where(keep, n, o) for n, o in zip(new_state, state)]
            output = tf.where(keep, output, tf.zeros_like(output))
        written = [arrays[0].write(t, output)]
        if record:
            written += [arrays[1].write(t, inner)] + [a.write(t, s) for a, s in zip(arrays[2:], state)]
        return t + 1, new_state, written

    skipping = skip_padding and keep_ta is not None and not record
    start, stop = (0, steps) if record or mask_t is None else _valid_span(mask_t, steps)
    _, final_state, arrays = tf.while_loop(
        lambda t, *_: t < stop, skipping_body if skipping else body, (start, state, arrays),
        maximum_iterations=steps)  # a bound lets XLA (jit_compile) size its buffers
    outputs = _stack(arrays[0], batch, cell.units, dtype)
    if not record:
        return outputs, final_state
    inner = _stack(arrays[1], batch, width, dtype)
    previous = [_stack(a, batch, cell.units, dtype) for a in arrays[2:]]
    return outputs, final_state, inner, previous


def _valid_span(mask_t, steps):
    """``[start, stop)``: the steps from the first to the last one where some row is not
    padding (e.g. not the columns a batch is padded with for XLA's fixed shapes). Steps
    outside leave every state as it is, so the loop skips them; their outputs stay 0
    (unwritten TensorArray elements stack as zeros). At least one step runs, so that
    something is written."""
    any_valid = tf.reduce_any(mask_t[:, :, 0], axis=1)  # [T]
    time = tf.range(steps)
    start = tf.reduce_min(tf.where(any_valid, time, steps))
    stop = tf.reduce_max(tf.where(any_valid, time + 1, 0))
    nothing = start >= stop
    return tf.where(nothing, 0, start), tf.where(nothing, tf.minimum(steps, 1), stop)


def _trainable_loop(cell, projected, mask_t, initial_state):
    """``_forward_loop`` with a backward pass through time of one matmul per step."""
    kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    bias = cell.recurrent_bias()
    biases = [] if bias is None else [tf.convert_to_tensor(bias)]
    num_states = len(initial_state)

    @tf.custom_gradient
    def recurrence(projected, kernel, *rest):
        bias, state = (rest[0] if biases else None), list(rest[len(biases):])
        outputs, final_state, inner, previous = _forward_loop(
            _Fixed(cell, kernel, bias), projected, mask_t, state, record=True)

        def grad(d_outputs, *d_final):
            d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
            d_final = [tf.zeros_like(s) if d is None else d for d, s in zip(d_final, final_state)]
            d_x, d_inner, d_state = _backward_loop(
                cell, kernel, projected, inner, previous, mask_t, d_outputs, d_final)
            flat_inner = tf.reshape(d_inner, [-1, kernel.shape[-1]])
            d_kernel = tf.matmul(tf.reshape(previous[0], [-1, cell.units]), flat_inner,
                                 transpose_a=True)
            d_bias = [tf.reduce_sum(flat_inner, 0)] if biases else []
            return [d_x, d_kernel] + d_bias + d_state

        return (outputs, *final_state), grad

    results = recurrence(projected, kernel, *biases, *initial_state)
    return results[0], list(results[1:1 + num_states])


def _backward_loop(cell, kernel, projected, inner, previous, mask_t, d_outputs, d_final):
    """Backward through time. Returns ``(d_projected, d_inner)`` (time-major) and the
    gradient of the initial states."""
    steps, batch = tf.shape(projected)[0], tf.shape(projected)[1]
    dtype, width = projected.dtype, projected.shape[-1]
    x_ta, inner_ta, d_out_ta = (_reader(v, dtype) for v in (projected, inner, d_outputs))
    prev_ta = [_reader(p, dtype) for p in previous]
    keep_ta = None if mask_t is None else _reader(mask_t, tf.bool)
    d_x_ta = tf.TensorArray(dtype, size=steps, element_shape=[None, width])
    d_inner_ta = tf.TensorArray(dtype, size=steps, element_shape=[None, width])

    def body(i, d_state, d_x_ta, d_inner_ta):
        t = steps - 1 - i
        d_new = [d_state[0] + d_out_ta.read(t)] + list(d_state[1:])
        passed = None
        if keep_ta is not None:  # a padded step passes its state's gradient through
            keep = keep_ta.read(t)
            passed = [tf.where(keep, tf.zeros_like(d), d) for d in d_state]
            d_new = [tf.where(keep, d, tf.zeros_like(d)) for d in d_new]
        state = [p.read(t) for p in prev_ta]
        d_x, d_inner, d_prev = cell.gates_backward(x_ta.read(t), inner_ta.read(t), state, d_new)
        d_prev[0] = d_prev[0] + tf.matmul(d_inner, kernel, transpose_b=True)
        if passed is not None:
            d_prev = [d + p for d, p in zip(d_prev, passed)]
        d_prev = same_shapes(d_prev, list(d_state))
        return i + 1, d_prev, d_x_ta.write(t, d_x), d_inner_ta.write(t, d_inner)

    _, d_state, d_x_ta, d_inner_ta = tf.while_loop(
        lambda i, *_: i < steps, body, (tf.constant(0), list(d_final), d_x_ta, d_inner_ta),
        maximum_iterations=steps)
    return (_stack(d_x_ta, batch, width, dtype), _stack(d_inner_ta, batch, width, dtype), d_state)


class _Fixed:
    """A cell view whose recurrent projection uses given tensors, not the variables
    (``tf.custom_gradient`` must not see variables read inside its function)."""

    def __init__(self, cell, kernel, bias):
        self.units, self.gates, self._kernel, self._bias = cell.units, cell.gates, kernel, bias

    def recurrent(self, h):
        inner = tf.matmul(h, self._kernel)
        return inner if self._bias is None else inner + self._bias
