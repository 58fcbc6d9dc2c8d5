"""Errors by position after the first mistake."""

import pytest

from tfseq2seq.inference.butterfly import alignment, closest_alignment, errors_after_first_mistake


def test_alignment_operations():
    assert alignment("a b c".split(), "a b c".split()) == ["=", "=", "="]
    assert alignment("a x c".split(), "a b c".split()) == ["=", "S", "="]
    assert alignment("a b b c".split(), "a b c".split()).count("I") == 1
    assert alignment("a c".split(), "a b c".split()) == ["=", "D", "="]
    assert alignment([], "a b".split()) == ["D", "D"]


def test_the_closest_reference_is_used():
    assert closest_alignment("a b c", ["x y z", "a b d"]) == ["=", "=", "S"]


def test_a_derailed_decoder_errs_after_its_first_mistake():
    refs = [["a b c d e f"]] * 4
    # one word right; three go wrong at position 1 and never recover
    hyps = ["a b c d e f", "a x y z w v", "a q r s t u", "a b c d e f"]
    result = errors_after_first_mistake(hyps, refs, max_offset=3)
    assert result["words_with_errors"] == 2
    assert [row["rate"] for row in result["by_offset"]] == [1.0, 1.0, 1.0]
    assert result["base_rate"] == pytest.approx(10 / 24)
    isolated = errors_after_first_mistake(["a x c d e f", "a b c d e f"], [["a b c d e f"]] * 2)
    assert all(row["rate"] == 0.0 for row in isolated["by_offset"])
    with pytest.raises(ValueError, match="reference sets"):
        errors_after_first_mistake(["a"], [])
