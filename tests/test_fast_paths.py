"""Speed-oriented code paths equal their reference paths (issue 5).

- scheduled sampling without input feeding: tokens from a forward-only step loop, then
  the teacher-forced pass == differentiating through the step loop (values and grads);
- the unmasked unroll (no selects) == the masked unroll with an all-True mask;
- reading the first layer's inputs from a projected-embedding table (small vocabularies)
  == embedding + matmul per token, in the encoder, the teacher-forced pass and ``step``
  (with input feeding too), values and gradients;
- greedy decoding with a larger buffer and ``trim=False`` == the trimmed default;
- greedy decoding that drops ended rows == keeping every row to the end;
- the XLA serving path (padded shapes, ``jit_compile``) == the default signature.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq import Seq2Seq, export, text
from tfseq2seq.decoder import Decoder
from tfseq2seq.decoding.greedy import greedy_decode
from tfseq2seq.encoder import Encoder
from tfseq2seq.layers import make_cell
from tfseq2seq.model import COMPACT_FRACTION
from tfseq2seq.unroll import unroll

SOURCE = np.array([[5, 7, 3, 9], [4, 2, 0, 0], [6, 6, 6, 0]])
TARGET_IN = np.array([[1, 6, 8, 3, 4], [1, 9, 2, 0, 0], [1, 5, 5, 5, 2]])


def _setup(**kwargs):
    keras.utils.set_random_seed(3)
    encoder = Encoder(12, 6, 8, "gru", num_layers=2)
    decoder = Decoder(10, 6, 8, num_layers=2, **kwargs)
    decoder.build()
    outputs, states, mask = encoder(SOURCE)
    return decoder, decoder.prepare_memory(outputs, states), mask, decoder.initial_state(states)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("sample", [False, True])
def test_scheduled_fast_path_equals_step_loop_values_and_gradients(p, sample):
    decoder, memory, mask, state = _setup(attention="general")
    target, p = tf.constant(TARGET_IN, tf.int32), tf.constant(p)
    results = []
    for fast in (True, False):
        seed = keras.random.SeedGenerator(11)  # same random stream for both paths
        with tf.GradientTape() as tape:
            if fast:
                logits = decoder.scheduled(target, state, memory, mask, p, sample, seed)
            else:
                logits = decoder._step_loop(target, state, memory, mask, p, sample, seed, False)
            loss = tf.reduce_sum(tf.square(logits))
        grads = tape.gradient(loss, decoder.trainable_variables)
        results.append((logits, [None if g is None else tf.convert_to_tensor(g) for g in grads]))
    (fast_logits, fast_grads), (ref_logits, ref_grads) = results
    np.testing.assert_allclose(fast_logits, ref_logits, atol=1e-5)
    assert sum(g is not None for g in ref_grads) >= 8
    for g_fast, g_ref in zip(fast_grads, ref_grads):
        assert (g_fast is None) == (g_ref is None)
        if g_ref is not None:
            np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4)


def test_scheduled_uses_reference_loop_with_input_feeding():
    decoder, memory, mask, state = _setup(attention="general", input_feeding=True)
    target = tf.constant(TARGET_IN, tf.int32)
    a = decoder.scheduled(target, state, memory, mask, tf.constant(0.0))
    b = decoder._step_loop(target, state, memory, mask, tf.constant(0.0), False, None, False)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_with_dropout_the_fed_tokens_are_the_dropout_free_predictions(monkeypatch):
    decoder, memory, mask, state = _setup(attention="general", dropout=0.5)
    target, p = tf.constant(TARGET_IN, tf.int32), tf.constant(0.0)
    expected = decoder.sampled_inputs(target, state, memory, mask, p).numpy()
    fed = []
    teacher_forced = decoder.teacher_forced
    monkeypatch.setattr(decoder, "teacher_forced", lambda ids, *a, **k: fed.append(ids.numpy())
                        or teacher_forced(ids, *a, **k))
    logits = decoder.scheduled(target, state, memory, mask, p, training=True)
    np.testing.assert_array_equal(fed[0], expected)  # p=0: all the model's own tokens
    assert (expected[:, 1:] != TARGET_IN[:, 1:]).any()
    assert dropout_was_applied(decoder, logits, target, state, memory, mask)


def dropout_was_applied(decoder, logits, target, state, memory, mask):
    """Dropout was applied in the teacher-forced pass (training logits != inference ones)."""
    fed = decoder.sampled_inputs(target, state, memory, mask, tf.constant(0.0))
    return not np.allclose(logits, decoder.teacher_forced(fed, state, memory, mask, False))


def test_sampled_inputs_are_the_tokens_the_step_loop_feeds():
    decoder, memory, mask, state = _setup(attention="dot")
    target = tf.constant(TARGET_IN, tf.int32)
    fed = decoder.sampled_inputs(target, state, memory, mask, tf.constant(0.0)).numpy()
    np.testing.assert_array_equal(fed[:, 0], TARGET_IN[:, 0])
    prev = tf.constant(TARGET_IN[:, 0])
    for t in range(1, TARGET_IN.shape[1]):
        logits, state, _ = decoder.step(prev, state, memory, mask)
        prev = tf.argmax(logits, -1, output_type=tf.int32)
        np.testing.assert_array_equal(fed[:, t], prev)
    np.testing.assert_array_equal(
        decoder.sampled_inputs(target, state, memory, mask, tf.constant(1.0)), TARGET_IN)


def test_unmasked_unroll_equals_all_true_mask():
    cell = make_cell("gru", 5)
    x = tf.random.normal([3, 4, 6])
    a, sa = unroll(cell, x)
    b, sb = unroll(cell, x, mask=tf.ones([3, 4], tf.bool))
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(sa[0], sb[0], atol=1e-6)


def test_untrimmed_greedy_with_bigger_buffer_equals_default():
    keras.utils.set_random_seed(0)
    model = Seq2Seq(12, 10, embedding_dim=6, units=8)
    memory, mask, state = model.encode(tf.constant(SOURCE, tf.int32))
    step = model.step_fn(memory, mask)
    want = greedy_decode(step, state, 3, 4, 7)
    got = greedy_decode(step, state, 3, 4, 7, buffer_length=15, trim=False)
    assert got["token_ids"].shape == (3, 15) and got["attention"].shape == (3, 15, 4)
    n = want["token_ids"].shape[1]
    np.testing.assert_array_equal(got["token_ids"][:, :n], want["token_ids"])
    assert not np.any(got["token_ids"][:, n:])
    np.testing.assert_allclose(got["attention"][:, :n], want["attention"], atol=1e-6)
    for key in ("lengths", "scores"):
        np.testing.assert_allclose(got[key], want[key], atol=1e-6)


def test_greedy_graph_dropping_ended_rows_equals_keeping_them():
    """The model's greedy decoding (which drops ended rows) == the loop over all rows."""
    keras.utils.set_random_seed(1)
    model = Seq2Seq(12, 10, embedding_dim=6, units=8, attention="general")
    rows = 40
    source = tf.constant(np.random.default_rng(0).integers(1, 12, (rows, 5)), tf.int32)
    model.greedy_decode(source.numpy(), max_length=1)  # builds the weights
    for w in model.weights:  # sharper logits and a likelier <end>: rows end at many steps
        w.assign(w * 8.0 + (2.0 * tf.one_hot(2, 10) if w.path == "decoder/logits/bias" else 0.0))
    memory, mask, state = model.encode(source)
    want = greedy_decode(model.step_fn(memory, mask), state, rows, 5, 12)
    got = model.greedy_decode(source.numpy(), max_length=12)
    lengths = want["lengths"].numpy()
    assert len(set(lengths)) > 5 and np.sum(lengths < 12) > rows * COMPACT_FRACTION  # 2+ phases
    for key in ("token_ids", "lengths", "scores", "attention"):
        np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg=key)


def test_xla_serving_path_equals_default_signature():
    keras.utils.set_random_seed(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokenizer = text.CharTokenizer()
    source = text.Vocabulary(text.RESERVED_TOKENS + tuple(letters))
    target = text.Vocabulary(text.RESERVED_TOKENS + tuple(reversed(letters)))
    model = Seq2Seq(len(source), len(target), embedding_dim=8, units=16, attention="dot")
    pipeline = text.TextPipeline(tokenizer, tokenizer, source, target)
    plain = export.ServingModule(model, pipeline)
    xla = export.ServingModule(model, pipeline, greedy_graph=export.xla_greedy(model))
    for texts in (["hello world", "", "abc"], ["x"], ["abcdefghijklmnopq", "hi", "yo", "a", "bb"], []):
        want = plain.greedy(tf.constant(texts, tf.string))
        got = xla.greedy(tf.constant(texts, tf.string))
        for key, value in want.items():
            assert got[key].shape == value.shape, key
            if value.dtype == tf.string:
                np.testing.assert_array_equal(got[key], value)
            else:
                np.testing.assert_allclose(got[key], value, atol=1e-5)
    # The XLA program has the weights compiled in, as they were when it was made.
    hello = tf.constant(["hello"])
    before = xla.greedy(hello)["scores"].numpy()
    for v in model.weights:
        v.assign(v * 0.5)
    assert not np.allclose(plain.greedy(hello)["scores"], before)
    np.testing.assert_array_equal(xla.greedy(hello)["scores"], before)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("input_feeding, timing", [(False, "luong"), (True, "luong"),
                                                   (False, "bahdanau"), (True, "bahdanau")])
def test_input_table_equals_embedding_then_matmul(monkeypatch, bidirectional, input_feeding,
                                                  timing):
    keras.utils.set_random_seed(5)
    model = Seq2Seq(12, 10, 6, 8, encoder_layers=2, bidirectional=bidirectional,
                    attention="general", input_feeding=input_feeding, attention_timing=timing)
    for w in model.weights:  # non-zero biases, so the table's bias matters
        w.assign(np.random.default_rng(0).normal(0, 0.3, w.shape).astype("float32"))
    source, target = tf.constant(SOURCE), tf.constant(TARGET_IN)

    def run():
        with tf.GradientTape() as tape:
            logits = model((source, target), training=True)
            loss = tf.reduce_sum(tf.square(logits))
        grads = tape.gradient(loss, model.trainable_variables)
        memory, mask, state = model.encode(source)
        step_logits, _, _ = model.step_fn(memory, mask)(tf.constant([1, 3, 4]), state)
        return logits, [tf.convert_to_tensor(g) for g in grads], step_logits

    assert model.decoder.input_table() is not None
    with_table = run()
    monkeypatch.setattr("tfseq2seq.layers.embedding.INPUT_TABLE_MAX_VOCAB", 0)
    assert model.decoder.input_table() is None
    without = run()
    np.testing.assert_allclose(with_table[0], without[0], atol=1e-5)
    np.testing.assert_allclose(with_table[2], without[2], atol=1e-5)
    for a, b in zip(with_table[1], without[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_constant_one_trains_on_the_teacher_forcing_path(monkeypatch):
    """``constant p=1`` is teacher forcing: its train step never runs the scheduled loop,
    and one step from the same weights lands where pure teacher forcing lands."""
    from tfseq2seq import ScheduledSampling

    assert ScheduledSampling("constant", p=1.0).always_teacher_forcing
    assert not ScheduledSampling("constant", p=0.99).always_teacher_forcing
    assert not ScheduledSampling("linear", start=1.0, end=1.0, steps=5).always_teacher_forcing
    weights = []
    for sampling in (ScheduledSampling("constant", p=1.0), None):
        keras.utils.set_random_seed(5)
        model = Seq2Seq(12, 10, embedding_dim=6, units=8, sampling=sampling)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        monkeypatch.setattr(model.decoder, "scheduled", lambda *a, **k: pytest.fail("scheduled path"))
        target_out = np.concatenate([TARGET_IN[:, 1:], np.full((3, 1), 2)], axis=1)
        history = model.fit((SOURCE, TARGET_IN), target_out, epochs=1, verbose=0)
        assert history.history["teacher_forcing_p"] == [1.0]
        weights.append([w.numpy() for w in model.trainable_weights])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
