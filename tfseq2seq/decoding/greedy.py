"""Greedy decoding over a model-agnostic ``step_fn`` (the contract and the output
dict are in :mod:`tfseq2seq.decoding`'s docstring)."""


import tensorflow as tf

from tfseq2seq.decoding.loops import check_max_length, relaxed


def greedy_decode(step_fn, initial_state, batch_size, src_len, max_length, start_id=1,
                  end_id=2, buffer_length=None, trim=True, constants=None,
                  compact_fraction=None):
    """Greedy (argmax) decoding; returns the dict described in the module docstring.

    The choice is the argmax of ``log_softmax(logits)`` (lowest id on ties): the tokens
    of :func:`beam_search` with ``beam_width=1``, which ranks ``score + log_softmax``
    (the same unless that sum rounds two candidates to a tie).

    Dropping ended rows: with ``constants`` (a nested structure of per-row tensors that a
    step reads but does not change, e.g. the encoder memory; ``step_fn`` is then called
    as ``step_fn(prev_ids, state, constants)``) and ``compact_fraction`` in ``(0, 1]``,
    the loop runs in phases: a phase ends once that fraction of its rows has emitted
    ``<end>``, and the next phase carries on with the remaining rows only (their state
    and constants gathered), so the steps of a large batch cost what its unfinished rows
    cost. Results are the same as without it. ``None`` (the default) keeps every row to
    the end, which XLA needs (fixed shapes).

    For XLA (``jit_compile``), where every shape must be known when compiling:
    ``buffer_length`` (>= ``max_length``, default ``max_length``) sizes the buffers so
    that ``max_length`` may be a runtime value, and ``trim=False`` returns them uncut
    (``out_len = buffer_length``; columns from ``lengths`` on are 0 as usual).
    """
    max_length = check_max_length(max_length)
    buffer_length = max_length if buffer_length is None else tf.cast(buffer_length, tf.int32)
    batch_size = tf.cast(batch_size, tf.int32)
    src_len = tf.cast(src_len, tf.int32)
    initial_state = tf.nest.map_structure(tf.convert_to_tensor, initial_state)
    if compact_fraction is not None and not 0.0 < compact_fraction <= 1.0:
        raise ValueError(f"`compact_fraction` must be in (0, 1] or None, got {compact_fraction!r}")
    if compact_fraction is not None and constants is None:
        raise ValueError("`compact_fraction` needs the per-row `constants` (e.g. the memory)")
    buffers = (tf.zeros([buffer_length, batch_size], tf.int32),
               tf.zeros([buffer_length, batch_size, src_len], tf.float32))
    results = (tf.zeros([batch_size], tf.int32), tf.zeros([batch_size], tf.float32))
    carried = (tf.fill([batch_size], tf.cast(start_id, tf.int32)), initial_state, constants)
    phase = _greedy_phase(step_fn, max_length, end_id, compact_fraction)
    if compact_fraction is None:  # one phase over all rows, nothing gathered
        t, _, buffers, results = phase(tf.constant(0), tf.range(batch_size), carried, buffers, results)
    else:
        t, _, _, buffers, results = tf.while_loop(
            lambda t, rows, *_: tf.logical_and(t < max_length, tf.size(rows) > 0),
            lambda t, rows, carried, buffers, results: phase(t, rows, carried, buffers, results),
            (tf.constant(0), tf.range(batch_size), carried, buffers, results),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]),
                              tf.nest.map_structure(relaxed, carried),
                              tf.nest.map_structure(lambda b: b.shape, buffers),
                              tf.nest.map_structure(lambda r: r.shape, results)))
    (ids_buf, attn_buf), (lengths, scores) = buffers, results
    token_ids, attention = tf.transpose(ids_buf), tf.transpose(attn_buf, [1, 0, 2])
    if trim:
        out_len = tf.maximum(tf.reduce_max(lengths), 0)
        token_ids, attention = token_ids[:, :out_len], attention[:, :out_len]
    return {
        "token_ids": token_ids,
        "lengths": lengths,
        "scores": scores,
        "normalized_scores": tf.identity(scores),
        "attention": attention,
    }


def _greedy_phase(step_fn, max_length, end_id, compact_fraction):
    """One phase of :func:`greedy_decode` over the batch rows ``rows``: steps until
    ``compact_fraction`` of them (all, if ``None``) have ended or ``max_length``; then
    their lengths and scores go to ``results`` and the unfinished rows are kept."""

    def phase(t, rows, carried, buffers, results):
        prev_ids, state, consts = carried
        n = tf.size(rows)
        stop_at = n if compact_fraction is None else tf.maximum(
            1, tf.cast(tf.math.ceil(compact_fraction * tf.cast(n, tf.float32)), tf.int32))
        step = step_fn if consts is None else (lambda ids, s: step_fn(ids, s, consts))

        def cond(t, prev_ids, state, finished, lengths, scores, ids_buf, attn_buf):
            return tf.logical_and(
                t < max_length, tf.reduce_sum(tf.cast(finished, tf.int32)) < stop_at)

        def body(t, prev_ids, state, finished, lengths, scores, ids_buf, attn_buf):
            logits, state, attention = step(prev_ids, state)
            log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
            ids = tf.argmax(log_probs, axis=1, output_type=tf.int32)  # lowest id on ties
            best = scores + tf.reduce_max(log_probs, axis=1)
            keep = tf.logical_not(finished) & tf.not_equal(ids, end_id)
            at = tf.stack([tf.fill([n], t), rows], axis=1)
            ids_buf = tf.tensor_scatter_nd_update(ids_buf, at, tf.where(keep, ids, 0))
            attn_buf = tf.tensor_scatter_nd_update(
                attn_buf, at, tf.where(tf.expand_dims(keep, 1), tf.cast(attention, tf.float32), 0.0))
            scores = tf.where(finished, scores, best)
            lengths += tf.cast(keep, tf.int32)
            finished |= tf.equal(ids, end_id)
            return t + 1, ids, state, finished, lengths, scores, ids_buf, attn_buf

        lengths_all, scores_all = results
        index = rows[:, tf.newaxis]
        loop_vars = (t, prev_ids, state, tf.zeros([n], tf.bool),
                     tf.gather(lengths_all, rows), tf.gather(scores_all, rows), *buffers)
        invariants = (tf.TensorShape([]),) + tuple(
            tf.nest.map_structure(relaxed, v) for v in loop_vars[1:6]) + tuple(
            b.shape for b in buffers)
        t, prev_ids, state, finished, lengths, scores, ids_buf, attn_buf = tf.while_loop(
            cond, body, loop_vars, shape_invariants=invariants)
        results = (tf.tensor_scatter_nd_update(lengths_all, index, lengths),
                   tf.tensor_scatter_nd_update(scores_all, index, scores))
        if compact_fraction is None:
            return t, rows, (ids_buf, attn_buf), results
        live = tf.where(tf.logical_not(finished))[:, 0]
        carried = tf.nest.map_structure(lambda x: tf.gather(x, live), (prev_ids, state, consts))
        return t, tf.gather(rows, live), carried, (ids_buf, attn_buf), results

    return phase
