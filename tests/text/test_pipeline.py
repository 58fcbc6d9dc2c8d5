"""TextPipeline: text -> (ids, counts) with the length rule, decoded ids -> outputs."""

import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.text import (RESERVED_TOKENS, UNK_ID, CharTokenizer, TextPipeline, Vocabulary,
                            WhitespaceTokenizer)

SOURCE = Vocabulary(RESERVED_TOKENS + tuple("abc\ufffd"))
TARGET = Vocabulary(RESERVED_TOKENS + ("AH", "B", "K"))


def pipeline(**kwargs):
    return TextPipeline(CharTokenizer(), WhitespaceTokenizer(), SOURCE, TARGET, **kwargs)


def test_source_ids_pad_count_and_map_unknown_symbols():
    ids, counts = pipeline().source_ids(tf.constant(["ab", "", "c\u4e16", b"\xffa"]))
    a, b, c, bad = SOURCE.ids("abc\ufffd")
    np.testing.assert_array_equal(ids, [[a, b], [0, 0], [c, UNK_ID], [bad, a]])
    np.testing.assert_array_equal(counts, [2, 0, 2, 2])
    ids, counts = pipeline().source_ids(tf.constant(["", ""]))
    assert ids.shape == (2, 1) and not counts.numpy().any()  # always one column


def test_over_long_inputs_are_cut_or_rejected_eagerly_and_in_graphs():
    ids, counts = pipeline(max_source_len=2).source_ids(tf.constant(["abcab", "a"]))
    np.testing.assert_array_equal(ids, [SOURCE.ids("ab"), SOURCE.ids("a") + [0]])
    np.testing.assert_array_equal(counts, [2, 1])
    strict = pipeline(max_source_len=2, overlong="reject")
    np.testing.assert_array_equal(strict.source_ids(tf.constant(["ab"]))[0], [SOURCE.ids("ab")])
    graph = tf.function(lambda t: strict.source_ids(t)[1], input_signature=[tf.TensorSpec([None], tf.string)])
    for run in (lambda t: strict.source_ids(t)[1], graph):
        with pytest.raises(tf.errors.InvalidArgumentError, match="max_source_len=2"):
            run(tf.constant(["ab", "abc"]))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_source_len": 0}, "max_source_len"), ({"max_source_len": True}, "max_source_len"),
    ({"overlong": "cut"}, "overlong")])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipeline(**kwargs)


def test_outputs_blank_rows_without_input_and_cut_to_the_longest_output():
    ah, b, k = TARGET.ids(["AH", "B", "K"])
    decoded = {"token_ids": tf.constant([[ah, b, 0, 0], [k, k, k, 0], [b, 0, 0, 0]]),
               "lengths": tf.constant([2, 3, 1]), "scores": tf.constant([-1.0, -2.0, -3.0]),
               "attention": tf.ones([3, 4, 2])}
    out = {key: v.numpy() for key, v in pipeline().outputs(decoded, tf.constant([2, 0, 1])).items()}
    assert [t.decode() for t in out["text"]] == ["AH B", "", "B"]
    np.testing.assert_array_equal(out["lengths"], [2, 0, 1])
    np.testing.assert_array_equal(out["token_ids"], [[ah, b], [0, 0], [b, 0]])
    assert out["tokens"].tolist() == [[b"AH", b"B"], [b"", b""], [b"B", b""]]
    np.testing.assert_array_equal(out["scores"], [-1.0, 0.0, -3.0])
    np.testing.assert_array_equal(out["attention"].sum(axis=2), [[2, 2], [0, 0], [2, 0]])


def test_target_ids_for_training():
    ids = pipeline().target_ids(tf.constant(["AH  B", "K X", ""]))
    assert ids.to_list() == [TARGET.ids(["AH", "B"]), TARGET.ids(["K"]) + [UNK_ID], []]
