"""Per-position hidden-state and gradient norms of a trained run on its dev split
(``tfseq2seq.inference.dynamics.recurrent_norms``), as one JSON object on stdout.

    python benchmarks/probe_dynamics.py runs/reverse --limit 256
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--limit", type=int, default=256, help="dev pairs in the probed batch")
    args = p.parse_args(argv)
    from tfseq2seq.data.batching import make_dataset
    from tfseq2seq.data.corpora import load_config_corpus
    from tfseq2seq.inference.dynamics import recurrent_norms
    from tfseq2seq.run_dir import load_run
    from tfseq2seq.text.pipeline import TextPipeline

    run = load_run(args.run_dir)
    pairs = load_config_corpus(run.config).pairs("dev")[: args.limit]
    dataset, _ = make_dataset(pairs, TextPipeline.from_run(run), batch_size=len(pairs),
                              shuffle=False, max_source_len=run.config.data.max_source_len,
                              max_target_len=run.config.data.max_target_len, overlong="truncate")
    (source, target_in), target_out = next(iter(dataset))
    norms = recurrent_norms(run.model, source, target_in, target_out)
    print(json.dumps({"run_dir": args.run_dir, "pairs": int(source.shape[0]),
                      "hidden_norm": [float(v) for v in norms["hidden_norm"]],
                      "grad_norm": [float(v) for v in norms["grad_norm"]],
                      "loss": norms["loss"]}))


if __name__ == "__main__":
    main()
