"""The butterfly effect, measured: how often a decoder errs at each position after its
first mistake, against how often it errs anywhere.

Each hypothesis is aligned with its closest reference (minimum edit distance; ties: the
earlier reference) into a sequence of operations, one per aligned position: ``"="``
(match), ``"S"`` (substitution), ``"I"`` (an extra hypothesis token), ``"D"`` (a missing
one). For the words with at least one error, position 0 is the first error; the rate at
offset ``k`` is the fraction of those words, among the ones whose alignment reaches
``k``, with an error at ``k``. If one early mistake derails the rest, the rates just
after it are well above ``base_rate`` (errors per aligned position over all words).
Token sequences are whitespace-split strings (phonemes, symbols).
"""

from __future__ import annotations

from typing import Sequence


def alignment(hypothesis: Sequence[str], reference: Sequence[str]) -> list[str]:
    """One minimum-cost edit alignment of the two token lists, as operations."""
    n, m = len(hypothesis), len(reference)
    cost = [[i + j if i * j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + (hypothesis[i - 1] != reference[j - 1]),
                             cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    ops, i, j = [], n, m
    while i or j:  # walk back, preferring match/substitution, then insertion, then deletion
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (hypothesis[i - 1] != reference[j - 1]):
            ops.append("=" if hypothesis[i - 1] == reference[j - 1] else "S")
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append("I")
            i -= 1
        else:
            ops.append("D")
            j -= 1
    return ops[::-1]


def closest_alignment(hypothesis: str, references: Sequence[str]) -> list[str]:
    """The alignment with the fewest errors among ``references`` (the earlier on ties)."""
    tokens = hypothesis.split()
    best = None
    for ref in references:
        ops = alignment(tokens, ref.split())
        if best is None or sum(op != "=" for op in ops) < sum(op != "=" for op in best):
            best = ops
    return best


def errors_after_first_mistake(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
                               max_offset: int = 10) -> dict:
    """``{"base_rate", "words_with_errors", "by_offset": [{"offset", "rate", "words"}]}``
    (see the module docstring); offsets 1..``max_offset``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    alignments = [closest_alignment(h, refs) for h, refs in zip(hypotheses, references)]
    positions = sum(len(ops) for ops in alignments)
    errors = sum(op != "=" for ops in alignments for op in ops)
    wrong = [ops[ops.index(next(op for op in ops if op != "=")):] for ops in alignments
             if any(op != "=" for op in ops)]
    by_offset = []
    for k in range(1, max_offset + 1):
        reach = [ops for ops in wrong if len(ops) > k]
        if reach:
            by_offset.append({"offset": k, "words": len(reach),
                              "rate": sum(ops[k] != "=" for ops in reach) / len(reach)})
    return {"base_rate": errors / positions if positions else 0.0,
            "words_with_errors": len(wrong), "by_offset": by_offset}
