"""Corpora with fixed train/dev/test splits: CMUdict, CC-CEDICT, users' TSV files.

Every example is one source with all its acceptable references; training uses
each reference as a separate pair, evaluation accepts any of them.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Iterable

from tfseq2seq.util.files import write_text_atomic

SPLITS = ("train", "dev", "test")
_LOADERS = {
    "cmudict": ("tfseq2seq.data.cmudict", "load_cmudict"),
    "cedict": ("tfseq2seq.data.cedict", "load_cedict"),
    "tsv": ("tfseq2seq.data.tsv", "load_tsv_corpus"),
    "reverse": ("tfseq2seq.data.synthetic", "load_reverse"),
}


@dataclasses.dataclass(frozen=True)
class Example:
    source: str
    references: tuple[str, ...]


@dataclasses.dataclass
class Corpus:
    """A named corpus; ``splits`` maps a split name ("train", "dev", "test") to examples."""

    name: str
    splits: dict[str, list[Example]]

    def examples(self, split: str) -> list[Example]:
        if split not in self.splits:
            raise ValueError(f"corpus {self.name!r} has no split {split!r}; it has {sorted(self.splits)}")
        return self.splits[split]

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """One (source, reference) pair per reference."""
        return [(ex.source, ref) for ex in self.examples(split) for ref in ex.references]

    def sources(self, split: str) -> list[str]:
        return [ex.source for ex in self.examples(split)]

    def references(self, split: str) -> list[tuple[str, ...]]:
        return [ex.references for ex in self.examples(split)]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per split: number of sources ("examples") and of (source, reference) pairs."""
        return {name: {"examples": len(exs), "pairs": sum(len(ex.references) for ex in exs)}
                for name, exs in self.splits.items()}


def group_pairs(pairs: Iterable[tuple[str, str]]) -> list[Example]:
    """Groups pairs by source (first-occurrence order); duplicate references are dropped."""
    grouped: dict[str, list[str]] = {}
    for source, reference in pairs:
        refs = grouped.setdefault(source, [])
        if reference not in refs:
            refs.append(reference)
    return [Example(source, tuple(refs)) for source, refs in grouped.items()]


def load_corpus(name: str, **kwargs) -> Corpus:
    """Loads a registered corpus: "cmudict", "cedict", "tsv" or the synthetic "reverse"
    (kwargs go to its loader)."""
    if name not in _LOADERS:
        raise ValueError(f"unknown corpus {name!r}; available: {sorted(_LOADERS)}")
    module, function = _LOADERS[name]
    return getattr(importlib.import_module(module), function)(**kwargs)


def export_corpus(corpus: Corpus, out_dir: str | os.PathLike) -> dict[str, str]:
    """Writes ``<split>.tsv`` (one ``source<TAB>reference`` line per reference) atomically."""
    paths = {}
    for split, examples in corpus.splits.items():
        lines = []
        for ex in examples:
            for ref in ex.references:
                if any(c in s for s in (ex.source, ref) for c in "\t\n\r"):
                    raise ValueError(f"{split}: tab or newline in pair {(ex.source, ref)!r}")
                lines.append(f"{ex.source}\t{ref}\n")
        paths[split] = os.path.join(os.fspath(out_dir), f"{split}.tsv")
        write_text_atomic(paths[split], "".join(lines))
    return paths


def load_config_corpus(config):
    """The corpus a config names (TSV paths come from ``data.train/dev/test``)."""
    data = config.data
    if data.corpus == "tsv":
        if not data.train:
            raise ValueError("data.corpus is 'tsv' but data.train is not set")
        return load_corpus("tsv", train=data.train, dev=data.dev, test=data.test, strict=data.strict)
    return load_corpus(data.corpus)
