"""``tfseq2seq demo``: the whole path on real data — train a G2P model on CMUdict,
export it for TF Serving, serve it locally, query it over REST and gRPC, and show
predictions next to references, the dev error rate and an attention heatmap."""

import os
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_WORDS = 8


def _say(message):
    print(f"\n== {message}", flush=True)


def run_demo(args):
    from tfseq2seq.config import load_config
    from tfseq2seq.data.corpora import load_config_corpus
    from tfseq2seq.export.exporters import export_run
    from tfseq2seq.inference.evaluation import evaluate, format_table
    from tfseq2seq.inference.plotting import plot_attention
    from tfseq2seq.inference.translator import Translator
    from tfseq2seq.run_dir import load_run
    from tfseq2seq.serving.app import serve
    from tfseq2seq.serving.client import GrpcClient, RestClient
    from tfseq2seq.training.train import train

    started = time.time()
    config = load_config(args.config or os.path.join(ROOT, "configs", "demo.yaml"), args.set)
    _say(f"1/5 training on {config.data.corpus} into {args.run_dir} "
         f"({config.training.epochs} epochs; resumes if interrupted)")
    train(config, args.run_dir, verbose=2)
    run = load_run(args.run_dir)
    translator = Translator(run)
    corpus = load_config_corpus(config)

    _say("2/5 dev-set error rate (greedy decoding, first 1000 dev words)")
    metrics, _ = evaluate(translator, corpus, "dev", limit=1000, progress=False)
    print(format_table(metrics))

    _say(f"3/5 exporting a SavedModel under {args.base_path}")
    version_dir = export_run(run, args.base_path)
    print(f"exported {version_dir}")

    _say("4/5 serving it locally (TF Serving's REST and gRPC protocols) and querying")
    examples = corpus.examples("dev")[:DEMO_WORDS]
    words = [ex.source for ex in examples]
    with serve(args.base_path, "g2p", port=0, rest_api_port=0) as server:
        rest = RestClient(server.rest_url, "g2p").translate(words)
        with GrpcClient(server.grpc_target, "g2p") as grpc_client:
            grpc = grpc_client.translate(words, signature="beam_search")
    print(f"{'word':<14} {'REST greedy':<24} {'gRPC beam':<24} reference(s)")
    for ex, r, g in zip(examples, rest, grpc):
        mark = "✓" if r["text"] in ex.references else " "
        print(f"{ex.source:<14} {r['text']:<24} {g['text']:<24} {' | '.join(ex.references)} {mark}")

    _say("5/5 attention heatmap")
    translation = translator.translate([words[0]])[0]
    plot = plot_attention(translation, args.output or os.path.join(args.run_dir, "attention.png"))
    print(f"{translation.source} -> {translation.text}: written {plot}")
    print(f"\ndemo finished in {time.time() - started:.0f} s; dev WER {metrics['wer']:.1%}, "
          f"PER {metrics['per']:.1%}")
