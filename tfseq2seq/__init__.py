"""tfseq2seq: recurrent sequence-to-sequence models with Luong attention for Keras 3.

    import tfseq2seq as ts
    model = ts.Seq2Seq(source_vocab_size=40, target_vocab_size=50,
                       sampling=ts.ScheduledSampling("inverse_sigmoid", k=2000.0))
"""

from tfseq2seq import layers
from tfseq2seq.decoder import Decoder
from tfseq2seq.encoder import Encoder
from tfseq2seq.losses import MaskedCrossEntropy
from tfseq2seq.model import Seq2Seq, load_model
from tfseq2seq.schedules import ScheduledSampling

__version__ = "0.1.0"
__all__ = ["Seq2Seq", "ScheduledSampling", "Encoder", "Decoder", "MaskedCrossEntropy",
           "load_model", "layers", "__version__"]
