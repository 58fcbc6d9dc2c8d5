
import numpy as np
import pytest

from tfseq2seq.data.batching import make_dataset
from tfseq2seq.data.tsv import DataError
from tfseq2seq.text import CharTokenizer, TextPipeline, Vocabulary, WhitespaceTokenizer


def g2p_pairs(n=120, seed=0):
    """Words of 1..30 letters with fake 'phonemes' (one upper-case letter each)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n):
        word = "".join(rng.choice(list("abcdefgh"), size=int(rng.integers(1, 31))))
        pairs.append((word, " ".join(word.upper())))
    return pairs


@pytest.fixture(scope="module")
def setup():
    pairs = g2p_pairs()
    src_tok, tgt_tok = CharTokenizer(), WhitespaceTokenizer()
    src_vocab = Vocabulary.build([list(s) for s, _ in pairs])
    tgt_vocab = Vocabulary.build([t.split() for _, t in pairs])
    return pairs, TextPipeline(src_tok, tgt_tok, src_vocab, tgt_vocab)


def batches(dataset):
    return [(s.numpy(), t_in.numpy(), t_out.numpy()) for (s, t_in), t_out in dataset]


def test_batches_have_the_contract(setup):
    pairs, *args = setup
    dataset, stats = make_dataset(pairs, *args, batch_size=16, shuffle=False)
    assert stats.examples == len(pairs) and stats.dropped_overlong == stats.truncated == 0
    seen = 0
    for source, t_in, t_out in batches(dataset):
        assert source.dtype == t_in.dtype == t_out.dtype == np.int32
        assert t_in.shape == t_out.shape and source.shape[0] == t_in.shape[0] <= 16
        assert (t_in[:, 0] == 1).all()
        assert not np.isin(source, [1, 2]).any() and not np.isin(t_out, [1]).any()
        for row_in, row_out in zip(t_in, t_out):
            n = int((row_out != 0).sum())
            assert row_out[n - 1] == 2 and (row_out[n:] == 0).all() and (row_in[n:] == 0).all()
            np.testing.assert_array_equal(row_in[1:n], row_out[:n - 1])  # shifted by one
        for row, (src_text, _) in zip(source, pairs[seen:]):
            assert int((row != 0).sum()) == len(src_text)
        seen += len(source)
    assert seen == len(pairs)


def padding_fraction(dataset):
    pad = total = 0
    for source, t_in, _ in batches(dataset):
        pad += (source == 0).sum() + (t_in == 0).sum()
        total += source.size + t_in.size
    return pad / total


def test_bucketing_groups_similar_lengths(setup):
    pairs, *args = setup
    plain, _ = make_dataset(pairs, *args, batch_size=8, seed=1)
    bucketed, stats = make_dataset(pairs, *args, batch_size=8, seed=1, bucket_boundaries="auto")
    assert len(stats.bucket_boundaries) >= 3
    assert padding_fraction(bucketed) < 0.5 * padding_fraction(plain)
    assert sum(len(s) for s, _, _ in batches(bucketed)) == len(pairs)
    explicit, stats = make_dataset(pairs, *args, batch_size=8, bucket_boundaries=[10, 20])
    for source, t_in, _ in batches(explicit):
        lengths = np.maximum((source != 0).sum(1), (t_in != 0).sum(1))
        assert len({int(np.digitize(n, [10, 20])) for n in lengths}) == 1


def test_shuffle_is_seeded_and_reshuffles_each_epoch(setup):
    pairs, *args = setup
    dataset, _ = make_dataset(pairs, *args, batch_size=200, seed=3)
    epoch1, epoch2 = (batches(dataset)[0][0] for _ in range(2))
    again = batches(make_dataset(pairs, *args, batch_size=200, seed=3)[0])[0][0]
    assert not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(epoch1, again)


def test_overlong_pairs_are_dropped_or_truncated(setup):
    pairs, *args = setup
    long_src = sum(len(s) > 10 for s, _ in pairs)
    long_any = sum(len(s) > 10 or len(t.split()) > 20 for s, t in pairs)
    _, dropped = make_dataset(pairs, *args, batch_size=8, max_source_len=10, max_target_len=20)
    assert dropped.dropped_overlong == long_any and dropped.examples == len(pairs) - long_any
    dataset, cut = make_dataset(pairs, *args, batch_size=8, max_source_len=10, overlong="truncate")
    assert cut.truncated == long_src and cut.examples == len(pairs) and cut.dropped_overlong == 0
    for source, _, t_out in batches(dataset):
        assert source.shape[1] <= 10 and ((t_out == 2).sum(1) == 1).all()


def test_empty_and_bad_input_fail_clearly(setup):
    _, *args = setup
    with pytest.raises(DataError, match="no training pairs"):
        make_dataset([], *args, batch_size=4)
    with pytest.raises(DataError, match="no usable pairs"):
        make_dataset([("ab", "   ")], *args, batch_size=4)
    _, stats = make_dataset([("ab", "   "), ("ab", "A B")], *args, batch_size=4)
    assert stats.dropped_empty == 1 and stats.examples == 1
    with pytest.raises(DataError, match="pair 1"):
        make_dataset([("a", "A"), ("b",)], *args, batch_size=4)
    with pytest.raises(DataError, match="overlong"):
        make_dataset([("a", "A")], *args, batch_size=4, overlong="cut")
    with pytest.raises(DataError, match="batch_size"):
        make_dataset([("a", "A")], *args, batch_size=0)


def test_drop_remainder(setup):
    pairs, *args = setup
    dataset, _ = make_dataset(pairs[:50], *args, batch_size=16, drop_remainder=True)
    assert [len(s) for s, _, _ in batches(dataset)] == [16, 16, 16]
