"""Parameter counts of trained runs, as one JSON object on stdout: for each run, the
total, the trainable part, and the embedding matrices (so a one-hot run's fixed identity
matrices show as untrained parameters, not as capacity).

    python benchmarks/count_params.py runs/ablate/note-claims/*/seed0
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def count(model):
    """``{"total", "trainable", "embeddings", "trainable_embeddings"}`` of a built model."""
    import numpy as np

    def size(weights):
        return int(sum(np.prod(w.shape) for w in weights))

    tables = [model.encoder.embedding, model.decoder.embedding]
    return {"total": size(model.weights), "trainable": size(model.trainable_weights),
            "embeddings": sum(size(t.weights) for t in tables),
            "trainable_embeddings": sum(size(t.trainable_weights) for t in tables)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    args = p.parse_args(argv)
    from tfseq2seq.run_dir import load_run

    print(json.dumps({run_dir: count(load_run(run_dir).model) for run_dir in args.run_dirs},
                     indent=1))


if __name__ == "__main__":
    main()
