"""benchmarks/count_params.py: one-hot inputs trade trained embeddings for fixed ones."""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import count_params  # noqa: E402

from smoke_runs import train_smoke_run  # noqa: E402


def test_one_hot_embeddings_count_as_untrained_and_their_width_is_the_vocabulary(
        tmp_path_factory, capsys):
    learned = train_smoke_run(tmp_path_factory, name="learned")
    one_hot = train_smoke_run(tmp_path_factory, "model.one_hot_inputs=true", name="onehot")
    count_params.main([learned, one_hot])
    counts = json.loads(capsys.readouterr().out)
    a, b = counts[learned], counts[one_hot]
    assert a["trainable_embeddings"] == a["embeddings"] > 0
    assert b["trainable_embeddings"] == 0 and b["trainable"] == b["total"] - b["embeddings"]

    from tfseq2seq.run_dir import load_run

    model = load_run(one_hot).model
    tables = (model.encoder.embedding, model.decoder.embedding)
    vocab = [table.weights[0].shape[0] for table in tables]
    assert b["embeddings"] == vocab[0] ** 2 + vocab[1] ** 2  # identity matrices, vocab x vocab
