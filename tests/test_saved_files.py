"""``.keras`` files saved by tfseq2seq 0.1.0 (before the package was regrouped by role)
still load and compute what they computed then."""

import json
import os

import numpy as np

import tfseq2seq as ts

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def test_a_model_saved_by_0_1_loads_and_computes_the_same():
    with open(os.path.join(FIXTURES, "legacy-0.1.json"), encoding="utf-8") as f:
        saved = json.load(f)
    model = ts.load_model(os.path.join(FIXTURES, "legacy-0.1.keras"))
    assert isinstance(model, ts.Seq2Seq) and model.decoder.input_feeding
    assert model.sampling.get_config() == {"schedule": "inverse_sigmoid", "mode": "argmax", "k": 50.0}
    source = np.array(saved["source_ids"], np.int32)
    logits = model((source, np.array(saved["target_in_ids"], np.int32))).numpy()
    np.testing.assert_allclose(logits, saved["logits"], atol=1e-5)
    out = model.greedy_decode(source, max_length=6)
    np.testing.assert_allclose(out["scores"], saved["scores"], atol=1e-5)
    assert out["token_ids"].tolist() == saved["token_ids"]
