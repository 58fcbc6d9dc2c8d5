import pytest

from tfseq2seq.inference.metrics import bleu_chrf, edit_distance, exact_match, wer_per


@pytest.mark.parametrize("a, b, expected", [
    ("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3), ("flaw", "lawn", 2), ("same", "same", 0),
    (["HH", "AH", "L", "OW"], ["HH", "EH", "L", "OW"], 1), (["R", "IY", "D"], ["R", "EH", "D", "Z"], 2),
])
def test_edit_distance(a, b, expected):
    assert edit_distance(a, b) == expected == edit_distance(b, a)


def test_wer_counts_a_word_right_if_any_reference_matches():
    hyps = ["R IY D", "HH AH L OW", "T AH M EY T OW"]
    refs = [("R EH D", "R IY D"), ("HH EH L OW",), ("T AH M AA T OW", "T AH M EY T OW")]
    scores = wer_per(hyps, refs)
    assert scores["wer"] == pytest.approx(1 / 3) and scores["word_errors"] == 1
    assert exact_match(hyps, refs) == pytest.approx(2 / 3)
    assert exact_match(["R  IY D "], [("R IY D",)]) == 1.0  # whitespace-normalized


def test_per_uses_the_closest_reference_and_its_length():
    # closest is the 2nd reference (distance 1, length 2), not the 1st (distance 2, length 5)
    scores = wer_per(["K AE"], [("K AE T S Z", "K AH")])
    assert scores["phoneme_errors"] == 1 and scores["reference_phonemes"] == 2
    assert scores["per"] == pytest.approx(0.5)
    scores = wer_per(["A B C", "X"], [("A B D",), ("X", "Y")])
    assert scores["per"] == pytest.approx((1 + 0) / (3 + 1))
    assert scores["wer"] == pytest.approx(0.5)


def test_bleu_chrf_with_variable_reference_counts():
    hyps = ["the cat sat on the mat today", "a dog ran in the big park now"]
    refs = [("the cat sat on the mat today",), ("one dog ran in a park", "a dog ran in the big park now")]
    scores = bleu_chrf(hyps, refs)
    assert scores["bleu"] == pytest.approx(100.0) and scores["chrf"] == pytest.approx(100.0)
    worse = bleu_chrf(hyps, [refs[0], refs[1][:1]])
    assert worse["bleu"] < 100.0 and worse["chrf"] < 100.0


def test_metrics_reject_mismatched_input():
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        wer_per(["a", "b"], [("a",)])
    with pytest.raises(ValueError, match="references\\[0\\]"):
        exact_match(["a"], ["a"])  # a bare string is not a reference list
    with pytest.raises(ValueError, match="no hypotheses"):
        bleu_chrf([], [])


def test_wer_by_source_length_buckets():
    from tfseq2seq.inference.metrics import wer_by_source_length

    sources = ["cat", "dog", "elephant", "hippopotamus", "rhinoceroses"]
    hyps = ["K AE T", "D AA", "EH L AH F AH N T", "X", "Y"]
    refs = [["K AE T"], ["D AO G"], ["EH L AH F AH N T"], ["H IH P"], ["R AY N"]]
    rows = wer_by_source_length(sources, hyps, refs, edges=(4, 8))
    assert rows == [{"lengths": "≤4", "words": 2, "wer": 0.5},
                    {"lengths": "5–8", "words": 1, "wer": 0.0},
                    {"lengths": ">8", "words": 2, "wer": 1.0}]
