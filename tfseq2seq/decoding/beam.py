"""Beam search over a model-agnostic ``step_fn`` (the contract and the output dict are
in :mod:`tfseq2seq.decoding`'s docstring)."""

import tensorflow as tf

from tfseq2seq.decoding.loops import (
    check_max_length,
    gnmt_length_penalty,
    relaxed,
    tile_beams,
    write_step,
)
from tfseq2seq.util.checks import require_positive_int

NEG_INF = float("-inf")


def beam_search(step_fn, initial_state, batch_size, src_len, max_length, beam_width,
                length_penalty=0.0, start_id=1, end_id=2):
    """Beam search with a separate top-``beam_width`` set of finished hypotheses.

    ``initial_state`` has leading dim ``batch_size``; it is tiled here with
    :func:`tile_beams`. ``step_fn`` sees ``n = batch_size * beam_width`` rows (example
    ``i``'s beams are rows ``i*k .. i*k+k-1``), so the memory it closes over must be tiled
    by the caller with :func:`tile_beams`.

    Each step, the ``2k`` best expansions of the ``k`` alive hypotheses are taken (raw
    log-prob sums; all alive hypotheses have the same length, so this equals ranking by
    normalised score). ``<end>`` expansions ranked within the top ``k`` move to the finished
    set, which keeps the ``k`` best by ``logp / gnmt_length_penalty(len + 1, alpha)``;
    the ``k`` best non-``<end>`` expansions stay alive (there are always ≥ k, as each beam
    has one ``<end>``). With ``k = 1`` this is exactly greedy decoding. An example is done
    once its worst finished score is ≥ the best score any alive hypothesis could still
    reach (its log-prob over the most favourable length penalty up to ``max_length``):
    from then on its finished set cannot change, and it is frozen. The loop stops when all
    examples are done or after ``max_length`` steps. An example with no finished hypothesis
    returns its alive ones (``lengths == max_length``, ranked by ``logp / lp(max_length)``).

    Extra keys: ``beam_token_ids`` int32 [batch, k, beam_out_len], ``beam_lengths`` int32
    [batch, k] and ``beam_scores`` float32 [batch, k] (normalised, best first; ``-inf``
    and empty ids mark slots with no finished hypothesis when others did finish).
    ``beam_out_len = max(beam_lengths)``; the main keys use ``max(lengths)``.
    """
    k = require_positive_int("beam_width", beam_width)
    max_length = check_max_length(max_length)
    alpha = tf.cast(length_penalty, tf.float32)
    batch_size = tf.cast(batch_size, tf.int32)
    src_len = tf.cast(src_len, tf.int32)
    n = batch_size * k
    offsets = tf.range(batch_size)[:, tf.newaxis] * k                     # [b, 1]
    own_slots = tf.reshape(offsets + tf.range(k), [-1, k])                # [b, k]: i*k + j

    def cond(t, prev_ids, state, alive_logp, alive_ids, alive_attn, fin_score, fin_logp,
             fin_len, fin_ids, fin_attn, done):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(done)))

    def body(t, prev_ids, state, alive_logp, alive_ids, alive_attn, fin_score, fin_logp,
             fin_len, fin_ids, fin_attn, done):
        logits, new_state, attention = step_fn(prev_ids, state)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))             # [n, V]
        vocab = tf.shape(logp)[1]
        total = tf.reshape(tf.reshape(alive_logp, [-1, 1]) + logp, [-1, k * vocab])
        cand_logp, cand_idx = tf.math.top_k(total, 2 * k)                 # [b, 2k], sorted
        parent = cand_idx // vocab                                        # beam in example
        token = cand_idx % vocab
        is_end = tf.equal(token, end_id)

        # Finished set: merge the old k with the <end> expansions ranked in the top k.
        finish = is_end[:, :k] & tf.logical_not(done)[:, tf.newaxis]
        new_score = tf.where(finish, cand_logp[:, :k] / gnmt_length_penalty(t + 1, alpha),
                             NEG_INF)
        fin_score, sel = tf.math.top_k(tf.concat([fin_score, new_score], 1), k)
        fin_logp = tf.gather(tf.concat([fin_logp, cand_logp[:, :k]], 1), sel, batch_dims=1)
        fin_len = tf.gather(tf.concat([fin_len, tf.fill(tf.shape(fin_len), t)], 1), sel,
                            batch_dims=1)
        # Rows of concat([fin, alive], axis=1): old slot j -> i*k+j; new -> n + i*k + parent.
        # The alive buffers hold t tokens, so the <end> itself is (correctly) not written.
        src = tf.concat([own_slots, n + offsets + parent[:, :k]], 1)
        src = tf.reshape(tf.gather(src, sel, batch_dims=1), [-1])
        fin_ids = tf.gather(tf.concat([fin_ids, alive_ids], 1), src, axis=1)
        fin_attn = tf.gather(tf.concat([fin_attn, alive_attn], 1), src, axis=1)

        # Alive set: the k best non-<end> expansions, state and buffers gathered by parent.
        alive_logp, sel = tf.math.top_k(tf.where(is_end, NEG_INF, cand_logp), k)
        rows = tf.reshape(offsets + tf.gather(parent, sel, batch_dims=1), [-1])  # [n]
        next_ids = tf.reshape(tf.gather(token, sel, batch_dims=1), [-1])
        alive_ids = write_step(tf.gather(alive_ids, rows, axis=1), t, next_ids)
        alive_attn = write_step(tf.gather(alive_attn, rows, axis=1), t,
                                tf.gather(tf.cast(attention, tf.float32), rows))
        state = tf.nest.map_structure(lambda s: tf.gather(s, rows), new_state)

        # Best reachable score of an alive hypothesis: lp is monotone in the length, which
        # will be in [t + 2, max_length], so the bound is at one of the two ends.
        best = alive_logp[:, 0]
        bound = tf.maximum(best / gnmt_length_penalty(tf.minimum(t + 2, max_length), alpha),
                           best / gnmt_length_penalty(max_length, alpha))
        done = done | (fin_score[:, k - 1] >= bound)
        return (t + 1, next_ids, state, alive_logp, alive_ids, alive_attn, fin_score,
                fin_logp, fin_len, fin_ids, fin_attn, done)

    ids_buf = tf.zeros([max_length, n], tf.int32)
    attn_buf = tf.zeros([max_length, n, src_len], tf.float32)
    scores0 = tf.fill([batch_size, k], NEG_INF)
    first = tf.concat([tf.zeros([1]), tf.fill([k - 1], NEG_INF)], 0)   # one live beam
    loop_vars = (tf.constant(0), tf.fill([n], tf.cast(start_id, tf.int32)),
                 tile_beams(initial_state, k), tf.tile(first[tf.newaxis], [batch_size, 1]),
                 ids_buf, attn_buf, scores0, scores0, tf.zeros([batch_size, k], tf.int32),
                 ids_buf, attn_buf, tf.zeros([batch_size], tf.bool))
    axes = (0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0)
    invariants = (tf.TensorShape([]),) + tuple(
        tf.nest.map_structure(lambda x, a=a: relaxed(x, a), v)
        for v, a in zip(loop_vars[1:], axes[1:]))
    (steps, _, _, alive_logp, alive_ids, alive_attn, fin_score, fin_logp, fin_len, fin_ids,
     fin_attn, _) = tf.while_loop(cond, body, loop_vars, shape_invariants=invariants)

    has_fin = fin_score[:, 0] > NEG_INF                                   # [b]
    pick = has_fin[:, tf.newaxis]
    beam_scores = tf.where(pick, fin_score, alive_logp / gnmt_length_penalty(steps, alpha))
    beam_logp = tf.where(pick, fin_logp, alive_logp)
    beam_lengths = tf.where(pick, fin_len, steps)
    pick_rows = tf.repeat(has_fin, k)                                     # [n]
    ids = tf.where(pick_rows, fin_ids, alive_ids)                         # [T, n]
    ids = tf.transpose(tf.reshape(ids, [max_length, -1, k]), [1, 2, 0])   # [b, k, T]
    best_rows = tf.range(batch_size) * k                                  # slot 0 = best
    attn = tf.where(has_fin[:, tf.newaxis], tf.gather(fin_attn, best_rows, axis=1),
                    tf.gather(alive_attn, best_rows, axis=1))             # [T, b, S]
    lengths = beam_lengths[:, 0]
    out_len = tf.maximum(tf.reduce_max(lengths), 0)
    beam_out_len = tf.maximum(tf.reduce_max(beam_lengths), 0)
    return {
        "token_ids": ids[:, 0, :out_len],
        "lengths": lengths,
        "scores": beam_logp[:, 0],
        "normalized_scores": beam_scores[:, 0],
        "attention": tf.transpose(attn, [1, 0, 2])[:, :out_len],
        "beam_token_ids": ids[:, :, :beam_out_len],
        "beam_lengths": beam_lengths,
        "beam_scores": beam_scores,
    }
