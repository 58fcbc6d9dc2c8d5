"""Python-side decoding speed: ``Translator.translate`` (what ``evaluate``, ``translate``
and the dev metrics run) on CMUdict test words, greedy and beam, words/s.

The model is the decode benchmarks' (``common.trained_project_model``, cached). Runs
against any tfseq2seq version that has ``Translator(run).translate(texts, beam_width=...)``,
so an older checkout can be timed with the same script (``PYTHONPATH=<checkout>``).

    python benchmarks/translate_speed.py --words 4096 --rounds 3 > translate.json
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

from tfseq2seq.config import Config  # noqa: E402
from tfseq2seq.run_dir import Run  # noqa: E402

try:
    from tfseq2seq.inference.translator import Translator  # noqa: E402
except ImportError:  # 0.1.0's layout
    from tfseq2seq.translator import Translator  # noqa: E402


def main(argv=None):
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--words", type=int, default=4096, help="test words per timed pass")
    p.add_argument("--rounds", type=int, default=3, help="timed passes per strategy")
    p.add_argument("--beam-width", type=int, default=5)
    args = p.parse_args(argv)
    if args.quick:
        args.words, args.rounds = 256, 1
    data = common.G2PData()
    model = common.trained_project_model(data, args.embedding_dim, args.units, seed=args.seed)
    run = Run("<memory>", Config(), data.source_tokenizer, data.target_tokenizer,
              data.source_vocab, data.target_vocab, model)
    translator = Translator(run)
    words = data.test_words[: args.words]
    result = {**common.header(argv if argv is not None else sys.argv[1:]), "words": len(words),
              "rounds": args.rounds, "tfseq2seq": common_path()}
    for name, beam in (("greedy", None), (f"beam{args.beam_width}", args.beam_width)):
        translator.translate(words[:256], beam_width=beam)  # trace and warm up
        rates = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            translator.translate(words, beam_width=beam)
            rates.append(len(words) / (time.perf_counter() - start))
        result[name] = {"words_per_s": [round(r, 1) for r in rates],
                        "best": round(max(rates), 1)}
        common.log(name, result[name])
    common.print_json(result)


def common_path():
    import tfseq2seq

    return os.path.dirname(tfseq2seq.__file__)


if __name__ == "__main__":
    main()
