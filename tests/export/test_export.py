"""SavedModel export: layout, versions, signatures == eager decoding, op checks, C API.

One tiny random-weight model is exported twice (module fixture); the vocabulary files
are then moved away, so every load below proves the assets are self-contained.
"""

import os
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq import Seq2Seq, export, text
from tfseq2seq.export import exporters, opcheck
from tfseq2seq.export.capi import CApiSavedModel

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SOURCE_TOKENS = list(LETTERS) + ["▁", "早", "上", "好", "👍"]
TARGET_TOKENS = list(reversed(LETTERS)) + ["▁", "好"]  # different order and size: no mixups
MAX_SOURCE_LEN, BEAM_WIDTH, LENGTH_PENALTY = 24, 3, 0.6
# 世, 界, H: not in the vocabulary; b"\xff": invalid UTF-8; the 10k-char text is truncated.
TEXTS = ["hello world", "早上好 👍", "hi 世界", "", "abc xyz " * 1250, b"\xffhi\xfe", "Hello"]
WARMUP = ("hello", "早上好")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    tokenizer = text.CharTokenizer()
    source_vocab = text.Vocabulary(text.RESERVED_TOKENS + tuple(SOURCE_TOKENS))
    target_vocab = text.Vocabulary(text.RESERVED_TOKENS + tuple(TARGET_TOKENS))
    source_vocab.save(root / "vocab" / "source.txt")
    target_vocab.save(root / "vocab" / "target.txt")
    model = Seq2Seq(len(source_vocab), len(target_vocab), embedding_dim=8, units=16)
    base = str(root / "models" / "toy")
    paths = (str(root / "vocab" / "source.txt"), str(root / "vocab" / "target.txt"))
    first = export.export_model(model, tokenizer, tokenizer, *paths, base,
                                max_source_len=MAX_SOURCE_LEN, beam_width=BEAM_WIDTH,
                                length_penalty=LENGTH_PENALTY, warmup_texts=WARMUP)
    second = export.export_model(model, tokenizer, tokenizer, *paths, base, max_source_len=8,
                                 overlong="reject", max_output_len=5)
    os.rename(root / "vocab", root / "vocab-moved")  # the exports must not need them
    moved = tuple(p.replace(os.sep + "vocab" + os.sep, os.sep + "vocab-moved" + os.sep)
                  for p in paths)
    return types.SimpleNamespace(
        model=model, tokenizer=tokenizer, source_vocab=source_vocab, target_vocab=target_vocab,
        base=base, first=first, second=second, vocab_paths=moved,
        loaded=tf.saved_model.load(first))


def source_ids(texts, vocab, limit=MAX_SOURCE_LEN):
    """The id matrix the signature should build, computed in plain Python."""
    rows = []
    for t in texts:
        s = t.decode("utf-8", "replace") if isinstance(t, bytes) else t
        rows.append(vocab.ids(["▁" if c.isspace() else c for c in s][:limit]))
    ids = np.zeros((len(rows), max([1] + [len(r) for r in rows])), np.int32)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
    return ids


def serve(fn, texts):
    return {k: v.numpy() for k, v in fn(text=tf.constant(texts, tf.string)).items()}


def assert_matches_eager(served, eager, ids, vocab):
    lengths, width = served["lengths"], max(served["lengths"], default=0)
    assert served["token_ids"].shape == served["tokens"].shape == (len(ids), width)
    assert served["attention"].shape == served["token_ids"].shape + (ids.shape[1],)
    for i, n in enumerate(lengths):
        if not ids[i].any():  # empty input: defined empty output
            assert (n, served["text"][i], served["scores"][i]) == (0, b"", 0.0)
            continue
        assert n == eager["lengths"][i]
        ids_i = eager["token_ids"][i, :n]
        np.testing.assert_array_equal(served["token_ids"][i], np.pad(ids_i, (0, width - n)))
        np.testing.assert_allclose(served["scores"][i], eager["scores"][i], rtol=1e-5)
        np.testing.assert_allclose(served["attention"][i, :n], eager["attention"][i, :n], atol=1e-6)
        assert not served["attention"][i, n:].any()
        tokens = vocab.tokens(ids_i)
        assert [t.decode() for t in served["tokens"][i]] == tokens + [""] * (width - n)
        expected = "".join(t for t in tokens if t not in ("<pad>", "<start>")).replace("▁", " ")
        assert served["text"][i].decode() == expected


# ----------------------------------------------------------------- layout and versions
def test_layout_assets_and_warmup(env):
    entries = os.listdir(env.base)
    assert {"1", "2"} <= set(entries) and all(e.isdigit() for e in entries)  # no temp dir
    assert env.first == os.path.join(env.base, "1") and env.second == os.path.join(env.base, "2")
    assert {"saved_model.pb", "variables", "assets", "assets.extra"} <= set(os.listdir(env.first))
    assets = os.path.join(env.first, "assets")
    assert sorted(os.listdir(assets)) == ["source.txt", "target.txt"]
    with open(os.path.join(assets, "target.txt"), encoding="utf-8") as f:
        assert f.read().split("\n")[:-1] == list(env.target_vocab.token_list)
    requests = export.read_warmup_requests(env.first)
    assert [r.model_spec.signature_name for r in requests] == list(export.SIGNATURES)
    for r in requests:
        assert [t.decode() for t in tf.make_ndarray(r.inputs["text"])] == list(WARMUP)
    assert set(env.loaded.signatures) == set(export.SIGNATURES)
    for fn in env.loaded.signatures.values():
        assert set(fn.structured_outputs) == set(export.OUTPUT_KEYS)


class TinyModule(tf.Module):
    """Stands in for ServingModule where only the directory handling is under test."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    @tf.function(input_signature=[export.TEXT_SPEC])
    def echo(self, text):
        return {"text": text}

    def signatures(self):
        return {name: self.echo.get_concrete_function() for name in export.SIGNATURES}


def disk_full(*args, **kwargs):
    raise OSError("disk full")


def test_versions_refuse_overwrite_and_failed_exports_leave_nothing(env, monkeypatch):
    args = (env.model, env.tokenizer, env.tokenizer, *env.vocab_paths, env.base)
    with pytest.raises(FileExistsError, match="version 1 already exists"):
        export.export_model(*args, version=1)
    monkeypatch.setattr(exporters, "ServingModule", TinyModule)
    before = set(os.listdir(env.base))
    with monkeypatch.context() as m:
        m.setattr(exporters, "write_warmup_requests", disk_full)
        with pytest.raises(OSError, match="disk full"):
            export.export_model(*args)
    assert set(os.listdir(env.base)) == before
    latest = max(export.existing_versions(env.base))
    path = export.export_model(*args)
    assert path == os.path.join(env.base, str(latest + 1))
    assert set(os.listdir(env.base)) == before | {str(latest + 1)}
    assert os.stat(path).st_mode & 0o755 == 0o755  # readable by a server running as another user
    assert export.export_model(*args, version=latest + 10).endswith(str(latest + 10))
    assert export.export_model(*args).endswith(str(latest + 11))


def test_vocabulary_must_match_the_model(env, tmp_path):
    small = text.Vocabulary(text.RESERVED_TOKENS + ("a",)).save(tmp_path / "small.txt")
    with pytest.raises(ValueError, match="source_vocab_size"):
        export.export_model(env.model, env.tokenizer, env.tokenizer, small, env.vocab_paths[1],
                            str(tmp_path / "m"))


# ----------------------------------------------------------------- signatures == eager
def test_serving_default_equals_eager_greedy_decode(env):
    ids = source_ids(TEXTS, env.source_vocab)
    assert ids[2, 3] == text.UNK_ID and ids[5, 0] == text.UNK_ID  # 世, invalid UTF-8
    served = serve(env.loaded.signatures["serving_default"], TEXTS)
    eager = env.model.greedy_decode(ids, max_length=2 * ids.shape[1] + 10)
    assert_matches_eager(served, eager, ids, env.target_vocab)
    assert not any(np.isnan(v).any() for v in served.values() if v.dtype.kind == "f")


def test_beam_search_equals_eager_beam_search(env):
    ids = source_ids(TEXTS, env.source_vocab)
    served = serve(env.loaded.signatures["beam_search"], TEXTS)
    eager = env.model.beam_search(ids, beam_width=BEAM_WIDTH, length_penalty=LENGTH_PENALTY,
                                  max_length=2 * ids.shape[1] + 10)
    assert_matches_eager(served, eager, ids, env.target_vocab)


@pytest.mark.parametrize("name", export.SIGNATURES)
def test_empty_batch_gives_empty_outputs(env, name):
    served = serve(env.loaded.signatures[name], [])
    assert {k: v.shape[0] for k, v in served.items()} == {k: 0 for k in export.OUTPUT_KEYS}


def test_overlong_inputs_are_truncated(env):
    long_text = TEXTS[4]
    greedy = env.loaded.signatures["serving_default"]
    assert serve(greedy, [long_text])["text"] == serve(greedy, [long_text[:MAX_SOURCE_LEN]])["text"]


# ----------------------------------------------------------------- op checks
def test_check_ops_accepts_core_and_text_ops_and_names_unknown_ones(env, monkeypatch):
    names = export.op_names(env.first)
    assert {"UnicodeTranscode", "LookupTableFindV2", "InitializeTableFromTextFileV2"} <= names
    assert not names & export.FORBIDDEN_OPS
    fake = names | {"NoSuchOp", "FastWordpieceTokenizeWithOffsets"}  # the latter is TF Text's
    monkeypatch.setattr(opcheck, "op_names", lambda _: fake)
    with pytest.raises(ValueError, match=r"Text ops: \['NoSuchOp'\]$"):  # all others pass
        export.check_ops(env.first)


def test_check_ops_rejects_py_function(tmp_path):
    module = tf.Module()
    module.f = tf.function(lambda x: tf.py_function(lambda v: v * 2, [x], tf.float32),
                           input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path), signatures=module.f.get_concrete_function())
    assert "EagerPyFunc" in export.op_names(str(tmp_path))
    with pytest.raises(ValueError, match="EagerPyFunc"):
        export.check_ops(str(tmp_path))


# ----------------------------------------------------------------- C API (C++ loader)
@pytest.fixture(scope="module")
def capi(env):
    with CApiSavedModel(env.first) as model:
        yield model


def assert_same_outputs(actual, expected):
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert actual[key].shape == value.shape, key
        if value.dtype.kind == "f":
            np.testing.assert_allclose(actual[key], value, rtol=1e-6, atol=1e-7, err_msg=key)
        else:
            np.testing.assert_array_equal(actual[key], value, err_msg=key)


def test_capi_replays_the_warmup_requests(env, capi):
    for request in export.read_warmup_requests(env.first):
        expected = serve(env.loaded.signatures[request.model_spec.signature_name], list(WARMUP))
        assert_same_outputs(capi.predict(request.SerializeToString()), expected)


@pytest.mark.parametrize("name", export.SIGNATURES)
def test_capi_matches_python_loader(env, capi, name):
    signature = capi.signatures[name]
    assert set(signature.outputs) == set(export.OUTPUT_KEYS)
    assert signature.inputs["text"].dtype == tf.string.as_datatype_enum
    for texts in (TEXTS, []):
        wire = export.predict_request(texts, name).SerializeToString()
        assert_same_outputs(capi.predict(wire), serve(env.loaded.signatures[name], texts))


def test_overlong_inputs_are_rejected_through_the_capi(env):
    with CApiSavedModel(env.second) as model:  # max_source_len=8, "reject", max_output_len=5
        ids = source_ids(["abcdefgh", ""], env.source_vocab)
        eager = env.model.greedy_decode(ids, max_length=5)
        for name in export.SIGNATURES:
            ok = model.predict(export.predict_request(["abcdefgh", ""], name))
            assert ok["lengths"][1] == 0 and ok["token_ids"].shape[1] <= 5
            if name == "serving_default":
                assert_matches_eager(ok, eager, ids, env.target_vocab)
            with pytest.raises(tf.errors.InvalidArgumentError, match="max_source_len=8"):
                model.predict(export.predict_request(["abcdefgh", "abcdefghi"], name))


def test_xla_export_runs_through_the_capi_like_the_default_export(env, tmp_path):
    """The opt-in XLA export (``--xla``): same outputs as the default export, through TF
    Serving's C++ loader, for every input kind of TEXTS (padded shapes inside)."""
    path = export.export_model(env.model, env.tokenizer, env.tokenizer, *env.vocab_paths,
                               str(tmp_path / "toy_xla"), max_source_len=MAX_SOURCE_LEN,
                               beam_width=BEAM_WIDTH, length_penalty=LENGTH_PENALTY,
                               jit_compile=True, xla_warmup_rows=4)
    requests = export.read_warmup_requests(path)
    warm = [(len(r.inputs["text"].string_val), r.model_spec.signature_name) for r in requests[2:]]
    assert warm == [(rows, "serving_default") for rows in (1, 2, 4) for _ in range(3)]  # 8-24 tokens
    with CApiSavedModel(path) as model:
        assert model.predict(requests[-1])["text"].shape == (4,)  # 4 texts of 24 tokens
        for texts in (TEXTS, TEXTS[:1], []):
            got = model.predict(export.predict_request(texts))
            want = serve(env.loaded.signatures["serving_default"], texts)
            assert set(got) == set(want)
            for key, value in want.items():
                assert got[key].shape == value.shape, key
                if value.dtype.kind == "f":
                    np.testing.assert_allclose(got[key], value, atol=1e-5, err_msg=key)
                else:
                    np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_capi_load_errors_are_tensorflow_errors(tmp_path):
    with pytest.raises(tf.errors.OpError, match="SavedModel"):
        CApiSavedModel(tmp_path)


@pytest.mark.parametrize("tokenizer", [text.CharTokenizer(), text.WhitespaceTokenizer()])
def test_xla_warmup_batches_cover_every_compiled_shape(tokenizer):
    """The XLA export compiles one program per (rows → power of two, tokens → multiple of
    8); its warm-up batches hit each program that requests of <= max_rows texts of <=
    max_tokens tokens can reach, and no other."""
    def padded(rows, tokens):
        return 1 << (rows - 1).bit_length(), -(-tokens // export.XLA_LENGTH_MULTIPLE) * 8

    batches = export.xla_warmup_batches(tokenizer, max_tokens=20, max_rows=5)
    shapes = []
    for batch in batches:
        lengths = tokenizer.tokenize(tf.constant(batch)).row_lengths().numpy()
        assert len(set(lengths)) == 1, batch
        shapes.append(padded(len(batch), int(lengths[0])))
    reachable = {padded(r, n) for r in range(1, 6) for n in range(1, 21)}
    assert sorted(shapes) == sorted(reachable) and len(shapes) == len(set(shapes)) == 12
    assert [len(b) for b in export.xla_warmup_batches(tokenizer, 8, max_rows=1)] == [1]
    assert export.xla_warmup_batches(tokenizer, 8, max_rows=0) == []
