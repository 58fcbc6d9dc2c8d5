"""The synthetic reversal corpus: deterministic, disjoint splits, targets reversed."""

import pytest

from tfseq2seq.config import load_config
from tfseq2seq.data.corpora import load_config_corpus, load_corpus


def test_reverse_corpus_is_seeded_disjoint_and_reversed():
    corpus = load_corpus("reverse", train=300, dev=40, test=40, min_len=5, max_len=9, seed=3)
    assert {k: v["examples"] for k, v in corpus.stats().items()} == {"train": 300, "dev": 40, "test": 40}
    sources = [s for split in ("train", "dev", "test") for s in corpus.sources(split)]
    assert len(set(sources)) == len(sources)  # no source in two splits
    for ex in corpus.examples("dev"):
        assert 5 <= len(ex.source) <= 9 and set(ex.source) <= set("abcdefghij")
        assert ex.references == (" ".join(reversed(ex.source)),)
    again = load_corpus("reverse", train=300, dev=40, test=40, min_len=5, max_len=9, seed=3)
    assert again.splits == corpus.splits
    other = load_corpus("reverse", train=300, dev=40, test=40, min_len=5, max_len=9, seed=4)
    assert other.sources("dev") != corpus.sources("dev")


def test_the_bundled_config_reads_it_and_bad_sizes_are_named():
    corpus = load_config_corpus(load_config("reverse"))
    assert corpus.name == "reverse" and len(corpus.examples("train")) == 20000
    lengths = [len(s) for s in corpus.sources("train")]
    assert min(lengths) == 30 and max(lengths) == 60
    with pytest.raises(ValueError, match="max_len"):
        load_corpus("reverse", min_len=10, max_len=5)
    with pytest.raises(ValueError, match="alphabet"):
        load_corpus("reverse", alphabet="a")
