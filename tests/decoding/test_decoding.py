"""Decoding loops driven by stub step functions (no model): exact expected outputs."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.decoding import beam_search, gnmt_length_penalty, greedy_decode, tile_beams

PAD, START, END = 0, 1, 2
MAIN_KEYS = {"token_ids", "lengths", "scores", "normalized_scores", "attention"}


# --------------------------------------------------------------------------- stubs

def script_step_fn(script, vocab=10, src_len=4, calls=None):
    """Row r emits ``script[r][step]`` (one-hot-ish logits); the state holds row and step.

    Attention of a step is ``step + 1 + row / 10`` everywhere, so rows are identifiable.
    """
    table = tf.constant(script, tf.int32)

    def step_fn(prev_ids, state):
        if calls is not None:
            calls.assign_add(1)
        row, step = state["row"], state["step"]
        nxt = tf.gather_nd(table, tf.stack([row, tf.minimum(step, table.shape[1] - 1)], 1))
        logits = 10.0 * tf.one_hot(nxt, vocab)
        att = tf.cast(step + 1, tf.float32) + tf.cast(row, tf.float32) / 10.0
        att = tf.tile(att[:, None], [1, src_len])
        return logits, {"row": row, "step": step + 1}, att

    return step_fn


def script_state(batch):
    return {"row": tf.range(batch), "step": tf.zeros([batch], tf.int32)}


def transition_step_fn(probs):
    """Logits ``log(probs[prev_id])``: a bigram table (state is just a step counter)."""
    logits_table = tf.math.log(tf.constant(probs, tf.float32))

    def step_fn(prev_ids, state):
        logits = tf.gather(logits_table, prev_ids)
        return logits, state + 1, tf.ones([tf.shape(prev_ids)[0], 1])

    return step_fn


def bigram(rows, vocab=8, floor=1e-4):
    probs = np.full([vocab, vocab], floor)
    for prev, dist in rows.items():
        for tok, p in dist.items():
            probs[prev, tok] = p
    return probs / probs.sum(1, keepdims=True)


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


class TinyRNN:
    """h' = tanh(h W + emb[ids]); logits = h' V + end bias; attention = softmax(mem h')."""

    def __init__(self, vocab=7, units=5, seed=0, end_bias=0.0):
        rng = np.random.default_rng(seed)
        self.emb = rng.normal(size=[vocab, units]).astype(np.float32)
        self.w = rng.normal(size=[units, units]).astype(np.float32) * 0.7
        self.v = rng.normal(size=[units, vocab]).astype(np.float32) * 2.0
        self.v_bias = np.zeros([vocab], np.float32)
        self.v_bias[END] = end_bias

    def step_fn(self, memory):
        def step_fn(prev_ids, state):
            h = tf.tanh(tf.matmul(state, self.w) + tf.gather(self.emb, prev_ids))
            att = tf.nn.softmax(tf.einsum("nsu,nu->ns", memory, h))
            return tf.matmul(h, self.v) + self.v_bias, h, att
        return step_fn

    def rescore(self, memory, h0, ids, ended=True):
        """Numpy teacher forcing of ``ids (+ [END])``: (log-prob sum, attention rows)."""
        h, prev, total, rows = h0, START, 0.0, []
        for tok in list(ids) + [END] * ended:
            h = np.tanh(h @ self.w + self.emb[prev])
            total += log_softmax(h @ self.v + self.v_bias)[tok]
            s = memory @ h
            rows.append(np.exp(s - s.max()) / np.exp(s - s.max()).sum())
            prev = tok
        return total, np.array(rows[:len(ids)]).reshape(len(ids), len(memory))


def rnn_inputs(batch=3, src_len=4, units=5, seed=1):
    rng = np.random.default_rng(seed)
    memory = rng.normal(size=[batch, src_len, units]).astype(np.float32)
    h0 = rng.normal(size=[batch, units]).astype(np.float32)
    return memory, h0


# --------------------------------------------------------------------------- greedy

def test_greedy_follows_script_and_stops_early():
    script = [[3, 4, 5, END, 7, 7, 7],
              [6, END, 3, 3, 3, 3, 3],
              [3, 3, 3, 3, END, 8, 8]]
    calls = tf.Variable(0)
    out = greedy_decode(script_step_fn(script, calls=calls), script_state(3), 3, 4,
                        max_length=10)
    assert set(out) == MAIN_KEYS
    np.testing.assert_array_equal(out["token_ids"], [[3, 4, 5, 0], [6, 0, 0, 0], [3, 3, 3, 3]])
    np.testing.assert_array_equal(out["lengths"], [3, 1, 4])
    assert int(calls.numpy()) == 5                       # stopped once row 2 emitted <end>
    att = out["attention"].numpy()
    assert att.shape == (3, 4, 4)
    for r, length in enumerate([3, 1, 4]):
        expected = np.arange(1, length + 1)[:, None] + r / 10.0
        np.testing.assert_allclose(att[r, :length], np.broadcast_to(expected, (length, 4)))
        assert not att[r, length:].any()
    # One-hot logits 10: every chosen token (incl. <end>) has the same log-prob.
    lp = log_softmax(10.0 * np.eye(10)[3])[3]
    np.testing.assert_allclose(out["scores"], lp * np.array([4, 2, 5]), rtol=1e-3)
    np.testing.assert_array_equal(out["normalized_scores"], out["scores"])


def test_dropping_ended_rows_gives_the_same_results_with_fewer_step_rows():
    """``compact_fraction``: rows that ended leave the loop at the end of their phase;
    outputs are identical and the steps see only the rows still running."""
    script = [[3, 4, 5, END, 7, 7, 7, 7],
              [6, END, 3, 3, 3, 3, 3, 3],
              [3, 3, 3, 3, 3, 3, END, 8],
              [END, 3, 3, 3, 3, 3, 3, 3],
              [4, 4, 4, 4, 4, 4, 4, 4]]         # never ends: stops at max_length
    rows_seen = []

    def step_fn(prev_ids, state, constants):
        rows_seen.append(int(tf.size(prev_ids)))
        np.testing.assert_array_equal(constants["row"], state["row"])  # gathered alike
        return script_step_fn(script)(prev_ids, state)

    want = greedy_decode(script_step_fn(script), script_state(5), 5, 4, max_length=8)
    got = greedy_decode(step_fn, script_state(5), 5, 4, max_length=8,
                        constants={"row": tf.range(5)}, compact_fraction=0.5)
    for key in MAIN_KEYS:
        np.testing.assert_allclose(got[key], want[key], err_msg=key)
    # rows 3 and 1 end at steps 0 and 1 (phase 1 ends when 3 of 5 have ended: step 3);
    # then rows 2 and 4 run on, and phase 2 ends when row 2 ends (step 6).
    assert rows_seen == [5, 5, 5, 5, 2, 2, 2, 1]
    with pytest.raises(ValueError, match="compact_fraction"):
        greedy_decode(step_fn, script_state(5), 5, 4, 8, compact_fraction=0.5)
    with pytest.raises(ValueError, match="compact_fraction"):
        greedy_decode(step_fn, script_state(5), 5, 4, 8, constants={"row": tf.range(5)},
                      compact_fraction=1.5)


def test_never_ending_sequences_stop_at_max_length():
    script = [[3, 4, 5, 6], [END, 3, 3, 3]]
    for decode in (greedy_decode, lambda *a, **kw: beam_search(*a, beam_width=2, **kw)):
        out = decode(script_step_fn(script), script_state(2), 2, 4, max_length=6)
        np.testing.assert_array_equal(out["lengths"], [6, 0])
        np.testing.assert_array_equal(out["token_ids"], [[3, 4, 5, 6, 6, 6], [0] * 6])
        assert out["attention"].shape == (2, 6, 4)


# --------------------------------------------------------------------------- beam search

A, B, C, D, E = 3, 4, 5, 6, 7


def test_beam_finds_better_sequence_than_greedy():
    probs = bigram({START: {A: 0.5, B: 0.4, C: 0.1}, A: {C: 0.3, D: 0.3, E: 0.4},
                    B: {END: 0.99}, C: {END: 1.0}, D: {END: 1.0}, E: {END: 1.0}})
    step_fn, state = transition_step_fn(probs), tf.zeros([1], tf.int32)
    lp = np.log(probs)
    greedy = greedy_decode(step_fn, state, 1, 1, max_length=5)
    np.testing.assert_array_equal(greedy["token_ids"], [[A, E]])
    beam = beam_search(step_fn, state, 1, 1, max_length=5, beam_width=2)
    np.testing.assert_array_equal(beam["token_ids"], [[B]])
    np.testing.assert_array_equal(beam["lengths"], [1])
    np.testing.assert_allclose(beam["scores"], [lp[START, B] + lp[B, END]], rtol=1e-5)
    np.testing.assert_allclose(greedy["scores"], [lp[START, A] + lp[A, E] + lp[E, END]],
                               rtol=1e-5)
    assert beam["scores"][0] > greedy["scores"][0]
    np.testing.assert_array_equal(beam["beam_token_ids"], [[[B, 0], [A, E]]])
    np.testing.assert_array_equal(beam["beam_lengths"], [[1, 2]])
    assert beam["beam_scores"][0, 0] > beam["beam_scores"][0, 1] > -np.inf


@pytest.mark.parametrize("alpha, best", [(0.0, [A]), (2.0, [B, C])])
def test_length_penalty_prefers_longer_when_alpha_large(alpha, best):
    probs = bigram({START: {A: 0.5, B: 0.45}, A: {END: 0.99}, B: {C: 0.95}, C: {END: 0.99}})
    out = beam_search(transition_step_fn(probs), tf.zeros([1], tf.int32), 1, 1, 5,
                      beam_width=2, length_penalty=alpha)
    np.testing.assert_array_equal(out["lengths"], [len(best)])
    np.testing.assert_array_equal(out["token_ids"][0, :len(best)], best)
    lp = np.log(probs)
    path = [START] + best + [END]
    raw = sum(lp[p, q] for p, q in zip(path, path[1:]))
    np.testing.assert_allclose(out["scores"], [raw], rtol=1e-5)
    np.testing.assert_allclose(out["normalized_scores"],
                               [raw / ((5 + len(best) + 1) / 6) ** alpha], rtol=1e-5)


def test_beam_width_one_equals_greedy():
    rnn, (memory, h0) = TinyRNN(end_bias=1.0), rnn_inputs()
    greedy = greedy_decode(rnn.step_fn(memory), h0, 3, 4, max_length=8)
    beam = beam_search(rnn.step_fn(tile_beams(memory, 1)), h0, 3, 4, max_length=8,
                       beam_width=1)
    assert MAIN_KEYS <= set(beam)
    assert len(set(greedy["lengths"].numpy())) > 1          # rows end at different steps
    for key in MAIN_KEYS:
        np.testing.assert_array_equal(beam[key], greedy[key], err_msg=key)


def test_beam_hypotheses_rescore_exactly():
    """Every n-best entry's ids, score and attention agree with teacher forcing them."""
    rnn, (memory, h0) = TinyRNN(end_bias=0.5), rnn_inputs()
    out = beam_search(rnn.step_fn(tile_beams(memory, 3)), h0, 3, 4, max_length=7,
                      beam_width=3, length_penalty=0.6)
    ids, lengths = out["beam_token_ids"].numpy(), out["beam_lengths"].numpy()
    scores = out["beam_scores"].numpy()
    assert ids.shape[:2] == (3, 3) and ids.shape[2] == lengths.max()
    # This seed covers: no hypothesis finished (row 0), an empty n-best slot (row 1), and
    # an immediate <end> (row 2).
    assert (lengths[0] == 7).all() and scores[1, 2] == -np.inf and lengths[2, 0] == 0
    for i in range(3):
        assert np.all(np.diff(scores[i]) <= 0)
        for j in range(3):
            length = lengths[i, j]
            assert not ids[i, j, length:].any()
            if scores[i, j] == -np.inf:                  # slot without a hypothesis
                assert length == 0
                continue
            ended = bool(length < 7)                     # unfinished ones have max_length
            toks = ids[i, j, :length]
            total, att = rnn.rescore(memory[i], h0[i], toks, ended)
            penalty = ((5 + length + ended) / 6) ** 0.6
            np.testing.assert_allclose(scores[i, j], total / penalty, rtol=1e-4)
            if j == 0:
                np.testing.assert_allclose(out["scores"][i], total, rtol=1e-4)
                np.testing.assert_array_equal(out["lengths"][i], length)
                np.testing.assert_array_equal(out["token_ids"][i, :length], toks)
                np.testing.assert_allclose(out["attention"][i, :length], att, atol=1e-5)
                assert not out["attention"][i, length:].numpy().any()


def test_ended_examples_are_frozen():
    # Row 0 ends at once; row 1 runs on. Row 0's script continues after <end>.
    script = [[END, 5, 5, 5, 5], [3, 4, 5, 6, END]]
    out = beam_search(script_step_fn(script), script_state(2), 2, 4, max_length=8,
                      beam_width=2)
    np.testing.assert_array_equal(out["lengths"], [0, 4])
    np.testing.assert_array_equal(out["token_ids"], [[0, 0, 0, 0], [3, 4, 5, 6]])


# --------------------------------------------------------------------------- graph / API

def test_dynamic_shapes_in_tf_function_and_saved_model(tmp_path):
    rnn = TinyRNN(end_bias=0.5)
    spec = [tf.TensorSpec([None, None, 5], tf.float32), tf.TensorSpec([None, 5], tf.float32),
            tf.TensorSpec([], tf.int32)]

    class Decoders(tf.Module):
        @tf.function(input_signature=spec)
        def greedy(self, memory, h0, max_length):
            b, s = tf.shape(memory)[0], tf.shape(memory)[1]
            return greedy_decode(rnn.step_fn(memory), h0, b, s, max_length)

        @tf.function(input_signature=spec)
        def beam(self, memory, h0, max_length):
            b, s = tf.shape(memory)[0], tf.shape(memory)[1]
            return beam_search(rnn.step_fn(tile_beams(memory, 2)), h0, b, s, max_length,
                               beam_width=2, length_penalty=0.5)

    tf.saved_model.save(Decoders(), str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    for batch, src_len, max_length in [(2, 3, 4), (3, 5, 6)]:
        memory, h0 = rnn_inputs(batch, src_len)
        want_g = greedy_decode(rnn.step_fn(memory), h0, batch, src_len, max_length)
        want_b = beam_search(rnn.step_fn(tile_beams(memory, 2)), h0, batch, src_len,
                             max_length, beam_width=2, length_penalty=0.5)
        args = (tf.constant(memory), tf.constant(h0), tf.constant(max_length))
        for got, want in [(loaded.greedy(*args), want_g), (loaded.beam(*args), want_b)]:
            assert set(got) == set(want)
            for key in want:
                np.testing.assert_allclose(got[key], want[key], atol=1e-5, err_msg=key)


def test_tile_beams_layout_and_nesting():
    x = {"a": tf.constant([[0, 1], [2, 3]]), "b": (tf.constant([7, 8]),)}
    y = tile_beams(x, 3)
    np.testing.assert_array_equal(y["a"], [[0, 1]] * 3 + [[2, 3]] * 3)
    np.testing.assert_array_equal(y["b"][0], [7, 7, 7, 8, 8, 8])


def test_gnmt_length_penalty():
    assert float(gnmt_length_penalty(3, 0.0)) == 1.0
    assert math.isclose(float(gnmt_length_penalty(7, 1.0)), 2.0, rel_tol=1e-6)
    assert gnmt_length_penalty(tf.constant([1, 2]), 0.5).dtype == tf.float32


def test_bad_arguments_name_the_argument():
    step_fn, state = script_step_fn([[END]]), script_state(1)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(step_fn, state, 1, 4, max_length=3, beam_width=0)
    with pytest.raises(ValueError, match="max_length"):
        beam_search(step_fn, state, 1, 4, max_length=0, beam_width=2)
    with pytest.raises(ValueError, match="max_length"):
        greedy_decode(step_fn, state, 1, 4, max_length=0)
    with pytest.raises(ValueError, match="beam_width"):
        tile_beams(tf.zeros([2, 1]), 0)
