import keras
import numpy as np
import pytest
import tensorflow as tf

import tfseq2seq as ts

from reversal import VOCAB, exact_match, reversal_data


def _small(**kwargs):
    defaults = dict(embedding_dim=8, units=16, seed=0)
    defaults.update(kwargs)
    return ts.Seq2Seq(VOCAB, VOCAB, **defaults)


@pytest.fixture(scope="module")
def data():
    return reversal_data(96, 2, 6, seed=3)


def test_fit_reports_the_schedule_as_a_metric(data):
    source, target_in, target_out = data
    model = _small(sampling=ts.ScheduledSampling("linear", start=1.0, end=0.0, steps=6))
    model.compile(optimizer="adam")
    history = model.fit((source, target_in), target_out, batch_size=32, epochs=2, verbose=0,
                        validation_data=((source, target_in), target_out)).history
    # 3 steps per epoch: the mean of ε over steps 0..2 is 0.833, over steps 3..5 it is 0.333
    np.testing.assert_allclose(history["teacher_forcing_p"], [5 / 6, 2 / 6], atol=1e-5)
    assert history["val_teacher_forcing_p"] == [1.0, 1.0]
    assert all(np.isfinite(history["loss"])) and "val_loss" in history


def test_fit_accepts_tf_data_and_learns_something(data):
    source, target_in, target_out = data
    dataset = tf.data.Dataset.from_tensor_slices(((source, target_in), target_out)).batch(16)
    model = _small(cell="lstm", bidirectional=True, input_feeding=True,
                   sampling=ts.ScheduledSampling("inverse_sigmoid", k=10.0, mode="sample"))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(dataset, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


def test_jit_compile_train_step(data):
    source, target_in, target_out = data
    model = _small(sampling=ts.ScheduledSampling("inverse_sigmoid", k=5.0))
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit((source, target_in), target_out, batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]) and history["teacher_forcing_p"][0] < 1.0


def test_masked_loss_ignores_padding():
    loss = ts.MaskedCrossEntropy()
    y_true = np.array([[4, 2, 0], [5, 0, 0]])
    logits = np.random.default_rng(0).normal(size=(2, 3, 7)).astype("float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_probs[0, 0, 4], log_probs[0, 1, 2], log_probs[1, 0, 5]])
    assert float(loss(y_true, logits)) == pytest.approx(expected, rel=1e-5)
    padded_logits = np.concatenate([logits, np.zeros((2, 4, 7), "float32")], axis=1)
    assert float(loss(np.pad(y_true, [(0, 0), (0, 4)]), padded_logits)) == pytest.approx(expected, rel=1e-5)


def test_label_smoothing_matches_keras_on_the_real_tokens():
    import keras

    y_true = np.array([[4, 2, 0], [5, 0, 0]])
    logits = np.random.default_rng(1).normal(size=(2, 3, 7)).astype("float32")
    real = y_true != 0
    reference = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    expected = float(reference(np.eye(7)[y_true[real]], logits[real]))
    got = float(ts.MaskedCrossEntropy(label_smoothing=0.2)(y_true, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != pytest.approx(float(ts.MaskedCrossEntropy()(y_true, logits)), rel=1e-3)
    restored = ts.MaskedCrossEntropy.from_config(ts.MaskedCrossEntropy(label_smoothing=0.2).get_config())
    assert restored.label_smoothing == 0.2
    with pytest.raises(ValueError, match="label_smoothing"):
        ts.MaskedCrossEntropy(label_smoothing=1.0)


def test_greedy_output_is_the_argmax_of_its_own_forward_pass(data):
    source = data[0][:5]
    model = _small(attention="concat", combine="mlp", encoder_layers=2)
    out = model.greedy_decode(source, max_length=7)
    assert out["token_ids"].shape[0] == 5 and out["attention"].shape[1:] == (out["token_ids"].shape[1], 6)
    for i in range(5):
        length = out["lengths"][i]
        ids = out["token_ids"][i, :length]
        target_in = np.concatenate([[1], ids])[None]
        logits = model((source[i:i + 1], target_in)).numpy()[0]
        logits[:, [0, 1]] = -1e9  # decoding never emits <pad> or <start>
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        chosen = list(ids) + ([2] if length < 7 else [])
        np.testing.assert_array_equal(logits.argmax(-1)[: len(chosen)], chosen)
        assert out["scores"][i] == pytest.approx(
            sum(log_probs[t, tok] for t, tok in enumerate(chosen)), abs=1e-4)
        np.testing.assert_array_equal(out["token_ids"][i, length:], 0)


def test_attention_rows_are_distributions_over_the_real_source(data):
    source = data[0][:8]
    out = _small().greedy_decode(source, max_length=5)
    attention = out["attention"]
    for i in range(8):
        length, src_len = out["lengths"][i], int((source[i] != 0).sum())
        np.testing.assert_allclose(attention[i, :length].sum(-1), 1.0, rtol=1e-5)
        assert np.all(attention[i, :, src_len:] == 0) and np.all(attention[i, length:] == 0)


def test_beam_width_one_equals_greedy(data):
    model = _small(cell="lstm", input_feeding=True)
    greedy = model.greedy_decode(data[0][:6], max_length=8)
    beam = model.beam_search(data[0][:6], beam_width=1, length_penalty=0.0, max_length=8)
    for key in ("token_ids", "lengths"):
        np.testing.assert_array_equal(beam[key], greedy[key])
    np.testing.assert_allclose(beam["scores"], greedy["scores"], atol=1e-5)
    np.testing.assert_allclose(beam["attention"], greedy["attention"], atol=1e-6)


def test_beam_search_scores_are_the_model_log_probabilities(data):
    # (beam >= greedy per row is not guaranteed: greedy's prefix can fall out of the beam)
    source = data[0][:4]
    model = _small(encoder_layers=2)
    out = model.beam_search(source, beam_width=4, length_penalty=0.0, max_length=8)
    nbest = out["beam_scores"]
    assert np.all(nbest[:, :-1] >= nbest[:, 1:]), "n-best list sorted best first"
    for i in range(4):
        length = out["lengths"][i]
        ids = out["token_ids"][i, :length]
        logits = model((source[i:i + 1], np.concatenate([[1], ids])[None])).numpy()[0]
        logits[:, [0, 1]] = -1e9
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        chosen = list(ids) + ([2] if length < 8 else [])
        assert out["scores"][i] == pytest.approx(
            sum(log_probs[t, tok] for t, tok in enumerate(chosen)), abs=1e-4)


def test_save_and_load_decode_identically(tmp_path, data):
    source, target_in, target_out = data
    model = _small(bidirectional=True, bidirectional_merge="concat", attention="dot",
                   sampling=ts.ScheduledSampling("exponential", k=0.99))
    model.compile(optimizer="adam")
    model.fit((source, target_in), target_out, batch_size=48, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    for loaded in (ts.load_model(path), keras.models.load_model(path)):
        assert loaded.get_config() == model.get_config()
        for method, kwargs in (("greedy_decode", {}), ("beam_search", {"beam_width": 3})):
            a = getattr(model, method)(source[:4], max_length=6, **kwargs)
            b = getattr(loaded, method)(source[:4], max_length=6, **kwargs)
            for key in a:
                np.testing.assert_allclose(a[key], b[key], atol=1e-6)
    loaded = ts.load_model(path)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
    loaded.fit((source, target_in), target_out, batch_size=48, epochs=1, verbose=0)


def test_bad_input_is_named(data):
    model = _small()
    source = data[0]
    with pytest.raises(ValueError, match="rank 2"):
        model.greedy_decode(source[0])
    with pytest.raises(ValueError, match="integer"):
        model.greedy_decode(source.astype("float32"))
    with pytest.raises(ValueError, match=f"id {VOCAB}"):
        model.greedy_decode(np.array([[3, VOCAB]]))
    with pytest.raises(ValueError, match="max_length"):
        model.greedy_decode(source, max_length=0)
    with pytest.raises(ValueError, match="beam_width"):
        model.beam_search(source, beam_width=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch sizes"):
        model((source[:3], data[1][:2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size"):
        model((np.array([[3, 99]]), data[1][:1]))
    with pytest.raises(ValueError, match="inputs"):
        model(source)
    empty = model.greedy_decode(np.zeros((0, 4), np.int32))
    assert empty["token_ids"].shape[0] == 0 and empty["lengths"].shape == (0,)
    no_tokens = model.greedy_decode(np.zeros((2, 0), np.int32), max_length=3)
    assert no_tokens["attention"].shape[::2] == (2, 1) and np.all(no_tokens["attention"] == 0)
    assert np.all(np.isfinite(no_tokens["scores"]))


def test_decoding_never_emits_pad_or_start(data):
    model = _small()
    bias = model.decoder.output_layer.bias
    bias.assign(bias.numpy() + 50.0 * (np.arange(VOCAB) < 2))  # make <pad>/<start> the argmax
    for out in (model.greedy_decode(data[0][:8], max_length=6),
                model.beam_search(data[0][:8], beam_width=3, max_length=6)):
        for ids, length in zip(out["token_ids"], out["lengths"]):
            assert np.all(ids[:length] >= 2)


@pytest.mark.parametrize("kwargs,match", [
    ({"cell": "transformer"}, "cell"), ({"attention": "bahdanau"}, "attention"),
    ({"combine": "max"}, "combine"), ({"units": 0}, "units"), ({"dropout": 1.5}, "dropout"),
    ({"end_id": VOCAB}, "end_id"), ({"sampling": "linear"}, "sampling"),
    ({"encoder_layers": 0}, "encoder_layers")])
def test_bad_constructor_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _small(**kwargs)


def _learn(model, train, test, epochs, target=0.95):
    accuracy = 0.0
    for _ in range(epochs):
        model.fit((train[0], train[1]), train[2], batch_size=64, epochs=1, verbose=0)
        accuracy = exact_match(model.greedy_decode(test[0]), test[2])
        if accuracy >= target:
            break
    return accuracy


@pytest.mark.slow
def test_learns_to_reverse_digits_with_scheduled_sampling():
    keras.utils.set_random_seed(0)
    train, test = reversal_data(8000, 3, 10, seed=1), reversal_data(500, 3, 10, seed=2)
    model = ts.Seq2Seq(VOCAB, VOCAB, embedding_dim=16, units=64, attention="general", seed=0,
                       sampling=ts.ScheduledSampling("linear", start=1.0, end=0.5, steps=600))
    model.compile(optimizer=keras.optimizers.Adam(0.005))
    assert _learn(model, train, test, epochs=6) >= 0.95


@pytest.mark.slow
def test_learns_short_reversals_without_attention():
    keras.utils.set_random_seed(0)
    train, test = reversal_data(8000, 3, 5, seed=1), reversal_data(500, 3, 5, seed=2)
    model = ts.Seq2Seq(VOCAB, VOCAB, embedding_dim=16, units=128, attention=None, seed=0,
                       sampling=ts.ScheduledSampling("linear", start=1.0, end=0.5, steps=600))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    assert _learn(model, train, test, epochs=8) >= 0.95


def test_elman_activation_reaches_every_cell_and_decode_path(data):
    source, target_in, target_out = data
    model = _small(cell="elman", activation="relu", encoder_layers=2, bidirectional=True)
    cells = model.encoder.forward_cells + model.encoder.backward_cells + model.decoder.cells
    assert {c.activation for c in cells} == {"relu"}
    model.compile(optimizer="adam")
    history = model.fit((source, target_in), target_out, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    restored = ts.Seq2Seq.from_config(model.get_config())
    assert restored.get_config()["activation"] == "relu"
    restored.set_weights(model.get_weights())
    for decode in (lambda m: m.greedy_decode(source[:4], max_length=6),
                   lambda m: m.beam_search(source[:4], beam_width=3, max_length=6)):
        np.testing.assert_allclose(decode(restored)["scores"], decode(model)["scores"], atol=1e-5)
    with pytest.raises(ValueError, match="activation"):
        _small(cell="gru", activation="relu")


def test_bahdanau_timing_trains_decodes_and_serves(data):
    import tensorflow as tf

    from tfseq2seq import export, text

    source, target_in, target_out = data
    model = _small(attention_timing="bahdanau", input_feeding=True,
                   sampling=ts.ScheduledSampling("constant", p=0.5))
    model.compile(optimizer="adam")
    history = model.fit((source, target_in), target_out, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert ts.Seq2Seq.from_config(model.get_config()).decoder.attention_timing == "bahdanau"
    tokens = tuple("abcdefghijklmnopqrstuvwxyz")[: VOCAB - 4]
    vocab = text.Vocabulary(text.RESERVED_TOKENS + tokens)
    pipeline = text.TextPipeline(text.CharTokenizer(), text.CharTokenizer(), vocab, vocab)
    module = export.ServingModule(model, pipeline)
    words = ["abc", "hello", ""]
    ids, _ = pipeline.source_ids(tf.constant(words))
    for served, eager in ((module.greedy, model.greedy_decode(ids.numpy()[:2])),
                          (module.beam_search, model.beam_search(ids.numpy()[:2]))):
        out = served(tf.constant(words))
        np.testing.assert_allclose(out["scores"][:2], eager["scores"], atol=1e-5)
        assert out["lengths"][2] == 0


def test_one_hot_inputs_are_fixed_identity_embeddings(data):
    source, target_in, target_out = data
    model = _small(one_hot_inputs=True)
    for embedding in (model.encoder.embedding, model.decoder.embedding):
        np.testing.assert_array_equal(embedding.embeddings.numpy(), np.eye(VOCAB))
        assert not embedding.trainable
    learned = _small()
    assert len(model.trainable_weights) == len(learned.trainable_weights) - 2
    model.compile(optimizer="adam")
    model.fit((source, target_in), target_out, batch_size=32, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.encoder.embedding.embeddings.numpy(), np.eye(VOCAB))
    restored = ts.Seq2Seq.from_config(model.get_config())
    assert restored.get_config() == model.get_config() and restored.one_hot_inputs
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(restored.greedy_decode(source[:3])["scores"],
                               model.greedy_decode(source[:3])["scores"], atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"attention_timing": "bahdanau"}, {"input_feeding": True},
                                    {"cell": "lstm", "bidirectional": True}])
def test_scheduled_sampling_trains_on_a_batch_of_one(data, kwargs):
    """A batch whose static size is 1 (``train_on_batch`` of one example): the fed tokens
    keep their shape through the sampling loop (a [None] coin flip once made it [None] after
    the first step, and the loop refused the batch)."""
    source, target_in, target_out = data
    model = _small(sampling=ts.ScheduledSampling("constant", p=0.5), **kwargs)
    model.compile(optimizer="adam")
    for rows in (slice(0, 1), slice(0, 3)):
        logs = model.train_on_batch((source[rows], target_in[rows]), target_out[rows],
                                    return_dict=True)
        assert np.isfinite(logs["loss"]) and logs["teacher_forcing_p"] == pytest.approx(0.5)
