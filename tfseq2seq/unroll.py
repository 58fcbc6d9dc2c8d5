"""Running a recurrent cell over a whole (padded) sequence with ``tf.while_loop``."""

import tensorflow as tf


def unroll(cell, inputs, mask=None, initial_state=None, reverse=False):
    """Runs ``cell`` over time; padded steps neither update the state nor emit output.

    The input-side matmul of every step is done at once (``cell.project_inputs`` on the
    whole sequence) and only the recurrent part runs inside the loop.

    Args:
        cell: a cell with ``project_inputs``, ``step`` and ``get_initial_state``.
        inputs: float ``[batch, time, input_dim]``.
        mask: optional bool ``[batch, time]``; ``False`` marks padding.
        initial_state: optional list of ``[batch, units]`` tensors (default zeros).
        reverse: run from the last step to the first (outputs keep input order).

    Returns:
        ``(outputs, final_state)``: ``[batch, time, units]`` (zeros at padded steps) and the
        list of state tensors after the last valid step of each sequence.
    """
    batch = tf.shape(inputs)[0]
    steps = tf.shape(inputs)[1]
    if initial_state is None:
        initial_state = cell.get_initial_state(batch)
    projected = tf.transpose(cell.project_inputs(inputs), [1, 0, 2])  # [time, batch, G*units]
    mask_t = None if mask is None else tf.transpose(mask, [1, 0])[:, :, tf.newaxis]  # [time, batch, 1]
    if reverse:
        projected = tf.reverse(projected, [0])
        mask_t = None if mask_t is None else tf.reverse(mask_t, [0])
    # Per-step reads go through a TensorArray: the gradient of slicing a captured tensor
    # inside the loop would materialise a full [time, batch, G*units] tensor every step.
    projected = tf.TensorArray(inputs.dtype, size=steps, element_shape=[None, projected.shape[-1]],
                               clear_after_read=True).unstack(projected)
    if mask_t is not None:
        mask_t = tf.TensorArray(tf.bool, size=steps, element_shape=[None, 1]).unstack(mask_t)
    outputs = tf.TensorArray(inputs.dtype, size=steps, element_shape=[None, cell.units])

    def body(t, state, outputs):
        output, new_state = cell.step(projected.read(t), state)
        if mask_t is not None:  # unmasked (e.g. the teacher-forced decoder): no selects
            keep = mask_t.read(t)
            new_state = [tf.where(keep, n, o) for n, o in zip(new_state, state)]
            output = tf.where(keep, output, tf.zeros_like(output))
        return t + 1, new_state, outputs.write(t, output)

    _, final_state, outputs = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), list(initial_state), outputs),
        maximum_iterations=steps)  # a bound lets XLA (jit_compile) size the gradient stacks
    # An empty TensorArray cannot be stacked when the batch size is unknown.
    outputs = tf.cond(steps > 0, outputs.stack, lambda: tf.zeros([0, batch, cell.units], inputs.dtype))
    if reverse:
        outputs = tf.reverse(outputs, [0])
    return tf.transpose(outputs, [1, 0, 2]), final_state
