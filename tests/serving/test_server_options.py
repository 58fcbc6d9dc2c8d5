"""``tfseq2seq serve`` and ``python -m tfseq2seq.serving.app`` take the same options (one
declaration, ``serving/options.py``), in TF Serving's and in dashed spelling."""

import pytest

from tfseq2seq.cli.app import build_parser
from tfseq2seq.serving.app import _parser as app_parser
from tfseq2seq.serving.options import serve_kwargs

BASE = ["--model_name", "g2p", "--model_base_path", "export/g2p"]
UNDERSCORED = BASE + ["--port", "-1", "--rest_api_port", "0", "--enable_batching",
                      "--max_batch_size", "8", "--num_batch_threads", "3",
                      "--file_system_poll_wait_seconds", "30",
                      "--tensorflow_intra_op_parallelism", "1", "--grace_seconds", "2"]
DASHED = ["--model-name", "g2p", "--model-base-path", "export/g2p", "--port", "-1",
          "--rest-api-port", "0", "--enable-batching", "--max-batch-size", "8",
          "--num-batch-threads", "3", "--poll-seconds", "30", "--intra-op-parallelism", "1",
          "--grace-seconds", "2"]


def cli(argv):
    return build_parser().parse_args(["serve", *argv])


@pytest.mark.parametrize("argv", [UNDERSCORED, DASHED], ids=["underscored", "dashed"])
def test_both_entry_points_parse_the_same_options(argv):
    ours, app = cli(argv), app_parser().parse_args(argv)
    assert serve_kwargs(ours) == serve_kwargs(app)
    kwargs = serve_kwargs(ours)
    assert kwargs["port"] is None and kwargs["rest_api_port"] == 0  # -1 = off, 0 = any free
    assert (kwargs["enable_batching"], kwargs["max_batch_size"], kwargs["num_batch_threads"],
            kwargs["poll_seconds"], kwargs["intra_op_parallelism"]) == (True, 8, 3, 30.0, 1)
    assert ours.grace_seconds == app.grace_seconds == 2.0


def test_defaults_are_tf_servings_ports_and_loopback():
    kwargs = serve_kwargs(cli(BASE))
    assert (kwargs["port"], kwargs["rest_api_port"], kwargs["host"]) == (8500, 8501, "127.0.0.1")
    assert kwargs == serve_kwargs(app_parser().parse_args(BASE))


@pytest.mark.parametrize("bad", [["--max_batch_size", "0"], ["--num_batch_threads", "-2"],
                                 ["--tensorflow_intra_op_parallelism", "-1"]])
def test_bad_values_are_refused_with_the_value_named(bad, capsys):
    with pytest.raises(SystemExit):
        cli(BASE + bad)
    err = capsys.readouterr().err
    assert f"argument {bad[0]}" in err and f"got {bad[1]}" in err
