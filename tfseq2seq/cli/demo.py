"""``tfseq2seq demo``: the whole path on real data.

Part A (no training): serve the ready CMUdict G2P model that ships in ``models/`` over TF
Serving's REST and gRPC protocols, query dev words, show them beside their references
and score the whole dev split through the server.

Part B: train a small G2P model on CMUdict (progress bars, the scheduled-sampling ε),
score it, export it for TF Serving, serve and query it, and plot its attention.
"""

import os
import time

from tfseq2seq.cli.errors import CliError

DEMO_WORDS = 8
READY_MODEL = "cmudict-g2p"


def _demo_config(args):
    from tfseq2seq.config import bundled_configs, config_path

    path = config_path(args.config or "demo")
    if not os.path.isfile(path):
        raise CliError(f"config file not found: {path} (bundled configs: "
                       f"{', '.join(bundled_configs()) or 'none'})")
    return path


def _say(message):
    print(f"\n== {message}", flush=True)


def run_demo(args):
    started = time.time()
    _demo_config(args)  # a wrong --config fails now, not after part A
    ready = None if args.skip_ready else serve_ready_model(READY_MODEL)
    trained = train_export_serve(args)
    print(f"\ndemo finished in {time.time() - started:.0f} s; "
          + (f"ready model dev WER {ready['wer']:.1%}, PER {ready['per']:.1%}; " if ready else "")
          + f"the model just trained: dev WER {trained['wer']:.1%}, PER {trained['per']:.1%} "
          f"(first 1000 dev words)")


def serve_ready_model(name):
    """Part A: serves the preset ``name``, queries it, scores the dev split through REST."""
    from tfseq2seq.data.corpora import load_corpus
    from tfseq2seq.inference.evaluation import format_table, score
    from tfseq2seq.serving.app import serve
    from tfseq2seq.serving.client import RestClient
    from tfseq2seq.serving.pretrained import resolve

    try:
        version_dir = resolve(name)
    except ValueError as e:
        _say(f"A: no ready model to serve ({e}); skipping to the training demo")
        return None
    _say(f"A1/2 serving the ready model {version_dir} (no training) over REST and gRPC")
    examples = load_corpus("cmudict").examples("dev")
    with serve(os.path.dirname(version_dir), name, port=0, rest_api_port=0) as server:
        _show_queries(server, name, examples[:DEMO_WORDS])
        _say(f"A2/2 scoring all {len(examples)} dev words through REST (greedy)")
        with RestClient(server.rest_url, name) as client:
            outputs = [r["text"] for start in range(0, len(examples), 256)
                       for r in client.translate([ex.source for ex in examples[start:start + 256]])]
    metrics = score("g2p", outputs, [ex.references for ex in examples])
    print(format_table(metrics))
    return metrics


def _show_queries(server, name, examples):
    """Prints REST (greedy) and gRPC (beam search) answers beside the references."""
    from tfseq2seq.serving.client import GrpcClient, RestClient

    words = [ex.source for ex in examples]
    with RestClient(server.rest_url, name) as rest_client:
        rest = rest_client.translate(words)
    with GrpcClient(server.grpc_target, name) as grpc_client:
        grpc = grpc_client.translate(words, signature="beam_search")
    print(f"{'word':<14} {'REST greedy':<24} {'gRPC beam':<24} reference(s)")
    for ex, r, g in zip(examples, rest, grpc):
        mark = "✓" if r["text"] in ex.references else " "
        print(f"{ex.source:<14} {r['text']:<24} {g['text']:<24} {' | '.join(ex.references)} {mark}")


def train_export_serve(args):
    """Part B: trains the demo config, scores, exports, serves, queries, plots."""
    from tfseq2seq.config import load_config
    from tfseq2seq.data.corpora import load_config_corpus
    from tfseq2seq.export.exporters import export_run
    from tfseq2seq.inference.evaluation import evaluate, format_table
    from tfseq2seq.inference.plotting import plot_attention
    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run
    from tfseq2seq.serving.app import serve
    from tfseq2seq.training.train import train

    config = load_config(_demo_config(args), args.set)
    _say(f"B1/5 training on {config.data.corpus} into {args.run_dir} "
         f"({config.training.epochs} epochs; resumes if interrupted)")
    train(config, args.run_dir, verbose=2)
    run = load_run(args.run_dir)
    translator = Translator(run)
    corpus = load_config_corpus(config)
    _say("B2/5 dev-set error rate (greedy decoding, first 1000 dev words)")
    metrics, _ = evaluate(translator, corpus, "dev", limit=1000, progress=False)
    print(format_table(metrics))
    _say(f"B3/5 exporting a SavedModel under {args.base_path}")
    print(f"exported {export_run(run, args.base_path)}")
    _say("B4/5 serving it locally (TF Serving's REST and gRPC protocols) and querying")
    with serve(args.base_path, "g2p", port=0, rest_api_port=0) as server:
        _show_queries(server, "g2p", corpus.examples("dev")[:DEMO_WORDS])
    _say("B5/5 attention heatmap")
    translation = translator.translate([corpus.examples("dev")[0].source])[0]
    plot = plot_attention(translation, args.output or os.path.join(args.run_dir, "attention.png"))
    print(f"{translation.source} -> {translation.text}: written {plot}")
    return metrics
