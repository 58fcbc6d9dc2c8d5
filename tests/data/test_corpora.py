import re

import pytest

from tfseq2seq.data.cedict import CJK, first_gloss
from tfseq2seq.data.cmudict import parse_cmudict
from tfseq2seq.data.corpora import Corpus, Example, export_corpus, load_corpus


@pytest.fixture(scope="module")
def cmudict():
    return load_corpus("cmudict")


@pytest.fixture(scope="module")
def cedict():
    return load_corpus("cedict")


def all_examples(corpus):
    return {split: {ex.source: ex.references for ex in exs} for split, exs in corpus.splits.items()}


# ---------------------------------------------------------------- CMUdict

def test_parse_cmudict_alternates_comments_and_stress():
    lines = ["hello HH AH0 L OW1", "hello(2) HH EH0 L OW1", "hello(3) HH AH1 L OW0  # same without stress",
             "", "aalborg AO1 L B AO0 R G # place, danish"]
    assert parse_cmudict(lines) == {"hello": ["HH AH L OW", "HH EH L OW"], "aalborg": ["AO L B AO R G"]}


def test_cmudict_split_follows_g2p_seq2seq(cmudict):
    stats = cmudict.stats()
    words = sum(s["examples"] for s in stats.values())
    assert words > 120_000 and sum(s["pairs"] for s in stats.values()) > 130_000
    assert stats["dev"]["examples"] == -(-words // 20)
    assert stats["test"]["examples"] == sum(i % 20 in (1, 2) for i in range(words))
    # the file starts 'bout, 'cause, 'course, 'cuse, 'em: word index i -> split
    assert cmudict.sources("dev")[0] == "'bout"
    assert cmudict.sources("test")[:2] == ["'cause", "'course"]
    assert cmudict.sources("train")[:2] == ["'cuse", "'em"]
    splits = all_examples(cmudict)
    assert not (splits["train"].keys() & splits["dev"].keys() or splits["train"].keys() & splits["test"].keys()
                or splits["dev"].keys() & splits["test"].keys())


def test_cmudict_references(cmudict):
    refs = {ex.source: ex.references for split in cmudict.splits.values() for ex in split}
    assert set(refs["read"]) == {"R EH D", "R IY D"}
    assert set(refs["tomato"]) == {"T AH M EY T OW", "T AH M AA T OW"}
    assert refs["hello"] == ("HH AH L OW", "HH EH L OW")
    phoneme = re.compile(r"^[A-Z]+( [A-Z]+)*$")
    assert all(phoneme.match(r) for rs in refs.values() for r in rs)  # no stress digits, single spaces
    assert all(len(set(rs)) == len(rs) for rs in refs.values())
    pairs = cmudict.pairs("test")
    assert len(pairs) == cmudict.stats()["test"]["pairs"] and len(pairs) > len(cmudict.sources("test"))


# ---------------------------------------------------------------- CC-CEDICT

def test_cedict_contains_good_morning(cedict):
    refs = {ex.source: ex.references for split in cedict.splits.values() for ex in split}
    assert refs["早上好"] == ("Good morning!",)
    assert "了" in refs and len(refs["了"]) > 1  # several entries -> several references
    assert not any(CJK.search(r) for rs in refs.values() for r in rs)
    assert not any(r.lower().startswith(("variant of", "see ", "surname ")) for rs in refs.values() for r in rs)


def test_cedict_splits_are_disjoint_and_sized(cedict):
    splits = all_examples(cedict)
    assert not (splits["train"].keys() & splits["dev"].keys() or splits["train"].keys() & splits["test"].keys())
    total = sum(len(s) for s in splits.values())
    assert total > 90_000
    assert 0.01 < len(splits["dev"]) / total < 0.03 and 0.01 < len(splits["test"]) / total < 0.03


def test_cedict_line_filter():
    assert first_gloss("早上好 早上好 [zao3 shang5 hao3] /Good morning!/\n") == ("早上好", "Good morning!")
    assert first_gloss("參 参 [can1] /variant of 參|参[can1]/") is None
    assert first_gloss("丁 丁 [Ding1] /surname Ding/fourth/") is None
    assert first_gloss("G友 G友 [G you3] /see 基友[ji1 you3]/") is None
    assert first_gloss("# comment") is None and first_gloss("garbage") is None


# ---------------------------------------------------------------- TSV + registry + export

def test_tsv_corpus_groups_references_and_exports(tmp_path):
    train = tmp_path / "in_train.tsv"
    train.write_text("read\tR EH D\nread\tR IY D\nread\tR EH D\ncat\tK AE T\nbad line\n", encoding="utf-8")
    dev = tmp_path / "in_dev.tsv"
    dev.write_text("dog\tD AO G\n", encoding="utf-8")
    corpus = load_corpus("tsv", train=train, dev=dev)
    assert corpus.splits["train"] == [Example("read", ("R EH D", "R IY D")), Example("cat", ("K AE T",))]
    assert corpus.pairs("train") == [("read", "R EH D"), ("read", "R IY D"), ("cat", "K AE T")]
    with pytest.raises(ValueError, match="test"):
        corpus.pairs("test")
    out = tmp_path / "out"
    paths = export_corpus(corpus, out)
    assert sorted(paths) == ["dev", "train"]
    assert (out / "train.tsv").read_text(encoding="utf-8") == "read\tR EH D\nread\tR IY D\ncat\tK AE T\n"
    assert load_corpus("tsv", train=out / "train.tsv").splits["train"] == corpus.splits["train"]
    with pytest.raises(ValueError, match="tab or newline"):
        export_corpus(Corpus("x", {"train": [Example("a\tb", ("c",))]}), out)


def test_load_corpus_lists_available_names():
    with pytest.raises(ValueError, match=r"'cedict', 'cmudict', 'reverse', 'tsv'"):
        load_corpus("wmt14")
