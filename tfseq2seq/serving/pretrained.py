"""Ready models: exported SavedModels used with no training, by preset name or path.

    import tfseq2seq as ts
    g2p = ts.Pretrained.from_preset("cmudict-g2p")
    g2p.translate(["hello", "world"])   # ['HH AH L OW', 'W ER L D']

A preset is a TF Serving model base path (``<name>/<integer version>/saved_model.pb``)
under the project's ``models/`` folder or a folder named by ``$TFSEQ2SEQ_MODELS``; the
newest version is used. ``Pretrained`` calls the export's own signatures, so its outputs
are what TensorFlow Serving (or ``tfseq2seq serve``) answers for the same model.
"""

import os

import numpy as np

MODELS_ENV = "TFSEQ2SEQ_MODELS"
SIGNATURES = {"greedy": "serving_default", "beam": "beam_search"}


def model_folders():
    """Where presets are looked for, in order: ``$TFSEQ2SEQ_MODELS`` (``os.pathsep``
    separated), then the ``models/`` folder of this checkout."""
    folders = [p for p in os.environ.get(MODELS_ENV, "").split(os.pathsep) if p]
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "models")
    return folders + [checkout]


def list_presets():
    """Preset names found in ``model_folders()`` (folders holding a numbered version)."""
    from tfseq2seq.export.versions import existing_versions

    return sorted({name for folder in model_folders() if os.path.isdir(folder)
                   for name in os.listdir(folder)
                   if existing_versions(os.path.join(folder, name))})


def resolve(preset):
    """A preset name, a model base path or a version directory -> the SavedModel
    directory to load (the newest version of a base path)."""
    from tfseq2seq.export.versions import existing_versions

    if os.path.isfile(os.path.join(preset, "saved_model.pb")):
        return preset
    candidates = [preset] + [os.path.join(folder, preset) for folder in model_folders()]
    for base in candidates:
        versions = existing_versions(base)
        if versions:
            return os.path.join(base, str(versions[-1]))
    raise ValueError(f"no model {preset!r}: not a SavedModel directory, a model base path or "
                     f"a preset in {model_folders()} (presets: {list_presets() or 'none'})")


class Pretrained:
    """An exported tfseq2seq model, loaded with ``tf.saved_model.load``."""

    def __init__(self, path):
        import tensorflow as tf

        self.path = path
        self._loaded = tf.saved_model.load(path)
        missing = set(SIGNATURES.values()) - set(self._loaded.signatures)
        if missing:
            raise ValueError(f"{path}: not a tfseq2seq export (no signatures {sorted(missing)})")

    @classmethod
    def from_preset(cls, preset):
        """Loads a preset by name (e.g. ``"cmudict-g2p"``) or a path (see ``resolve``)."""
        return cls(resolve(preset))

    def predict(self, texts, beam=False):
        """The signature's outputs for ``texts`` (``str`` or ``bytes``) as numpy arrays:
        ``text``, ``tokens``, ``token_ids``, ``lengths``, ``scores``, ``attention``."""
        import tensorflow as tf

        signature = self._loaded.signatures[SIGNATURES["beam" if beam else "greedy"]]
        outputs = signature(text=tf.constant(list(texts), tf.string, shape=[len(texts)]))
        return {key: value.numpy() for key, value in outputs.items()}

    def translate(self, texts, beam=False):
        """Output texts for ``texts`` (greedy, or beam search with ``beam``)."""
        texts = list(texts)
        if not texts:
            return []
        return [t.decode("utf-8") for t in np.asarray(self.predict(texts, beam)["text"])]

    def translate_batches(self, texts, beam=False, batch_size=256):
        """``(inputs, outputs)`` per batch of at most ``batch_size`` of ``texts``, in order:
        one signature call each, so long inputs stream and memory stays bounded."""
        texts = list(texts)
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            yield batch, self.translate(batch, beam)
