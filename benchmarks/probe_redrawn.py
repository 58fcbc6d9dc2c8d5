"""Greedy dev scores of a trained run decoded with re-drawn embedding matrices (the
note's claim: decode with another embedding matrix than the trained one and the output is
gibberish), as one JSON object on stdout: the trained model's scores and, for each of
``source``, ``target`` and ``both``, those of a copy whose matrix (or matrices) is drawn
anew from its initializer (``tfseq2seq.inference.dynamics.with_redrawn_embeddings``),
every other weight as trained.

    python benchmarks/probe_redrawn.py runs/g2p --limit 500
"""

import argparse
import dataclasses
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIDES = {"source": ("source",), "target": ("target",), "both": ("source", "target")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--limit", type=int, default=500, help="dev examples scored (the first N)")
    p.add_argument("--seed", type=int, default=0, help="seed of the re-drawn matrices")
    args = p.parse_args(argv)
    from tfseq2seq.data.corpora import load_config_corpus
    from tfseq2seq.inference.dynamics import with_redrawn_embeddings
    from tfseq2seq.inference.evaluation import evaluate
    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run

    run = load_run(args.run_dir)
    corpus = load_config_corpus(run.config)
    variants = {"trained": run.model}
    variants.update({name: with_redrawn_embeddings(run.model, sides, seed=args.seed)
                     for name, sides in SIDES.items()})
    result = {"run_dir": args.run_dir, "limit": args.limit, "seed": args.seed}
    for name, model in variants.items():
        translator = Translator(dataclasses.replace(run, model=model))
        metrics, translations = evaluate(translator, corpus, "dev", limit=args.limit,
                                         progress=False)
        result[name] = {**metrics, "samples": [
            {"source": t.source, "output": t.text} for t in translations[:3]]}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
