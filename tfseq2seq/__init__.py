"""tfseq2seq: recurrent sequence-to-sequence models with Luong attention for Keras 3.

    import tfseq2seq as ts
    model = ts.Seq2Seq(source_vocab_size=40, target_vocab_size=50,
                       sampling=ts.ScheduledSampling("inverse_sigmoid", k=2000.0))

Names are imported on first use, so ``tfseq2seq --help`` does not load TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Seq2Seq": "tfseq2seq.model", "load_model": "tfseq2seq.model",
    "ScheduledSampling": "tfseq2seq.schedules", "Encoder": "tfseq2seq.encoder",
    "Decoder": "tfseq2seq.decoder", "MaskedCrossEntropy": "tfseq2seq.losses",
    "Pretrained": "tfseq2seq.serving.pretrained",
}
__all__ = [*_EXPORTS, "layers", "__version__"]


def __getattr__(name):
    if name == "layers":
        return importlib.import_module("tfseq2seq.layers")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfseq2seq' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
