"""``data.lowercase``: true lower-cases both sides, ``source`` the inputs only (a G2P
model then reads "Hello" as "hello" while its phonemes stay upper-case), false neither."""

import pytest
import tensorflow as tf

from tfseq2seq.config import load_config
from tfseq2seq.training.train import make_tokenizers

PAIRS = [("hello", "HH AH L OW")]


def tokens(tokenizer, text):
    return [t.decode() for t in tokenizer.tokenize(tf.constant([text])).to_list()[0]]


@pytest.mark.parametrize("value, source, target", [
    ("source", list("hello"), ["HH", "AH"]),
    ("true", list("hello"), ["hh", "ah"]),
    ("false", list("HeLLo"), ["HH", "AH"]),
])
def test_lowercase_sides(value, source, target):
    config = load_config("g2p", [f"data.lowercase={value}"])
    src, tgt = make_tokenizers(config, PAIRS)
    assert tokens(src, "HeLLo") == source
    assert tokens(tgt, "HH AH") == target


def test_other_values_are_refused_with_the_value_named():
    config = load_config("g2p", ["data.lowercase=target"])
    with pytest.raises(ValueError, match="'target'"):
        make_tokenizers(config, PAIRS)
