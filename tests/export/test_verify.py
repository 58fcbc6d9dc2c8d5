"""``tfseq2seq verify-export`` (``export.verify``): will TensorFlow Serving load and run it?

A tiny random-weight model is exported twice (truncating, then rejecting over-long
inputs); a hand-made SavedModel breaks one rule per signature, so each failing row of
the report is the one that rule predicts, and no other.
"""

import os
import re
import shutil
import types

import keras
import pytest
import tensorflow as tf

from tfseq2seq import Seq2Seq, export, text
from tfseq2seq.cli.app import main
from tfseq2seq.export import exporters, opcheck, verify

LETTERS = "abcdefghijklmnopqrstuvwxyz"
ODD = [odd.name for odd in verify.ODD_INPUTS]
LOADS = ["load: C API (TF Serving's LoadSavedModel)", "load: tf.saved_model.load"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    keras.utils.set_random_seed(0)
    tokenizer = text.CharTokenizer()
    source = text.Vocabulary(text.RESERVED_TOKENS + tuple(LETTERS) + ("▁", "早"))
    target = text.Vocabulary(text.RESERVED_TOKENS + tuple(LETTERS[::-1]) + ("▁",))
    vocab = (str(source.save(root / "source.txt")), str(target.save(root / "target.txt")))
    model = Seq2Seq(len(source), len(target), embedding_dim=8, units=16)
    base = str(root / "toy")

    def export_to(base_path, version=None, **options):
        return export.export_model(model, tokenizer, tokenizer, *vocab, base_path,
                                   version=version, **options)

    first = export_to(base, max_source_len=24, beam_width=3)
    second = export_to(base, max_source_len=8, overlong="reject")  # the newest version
    return types.SimpleNamespace(root=root, base=base, first=first, second=second,
                                 export_to=export_to)


def _outputs(text_out, rows, **changed):
    """Outputs of every key in OUTPUT_KEYS, of batch size ``rows`` unless ``changed``."""
    outputs = {"text": text_out, "tokens": tf.reshape(text_out, [-1, 1]),
               "token_ids": tf.zeros([rows, 1], tf.int32), "lengths": tf.ones([rows], tf.int32),
               "scores": tf.zeros([rows]), "attention": tf.zeros([rows, 1, 1])}
    outputs.update(changed)
    return outputs


def _valid_utf8(texts):
    return tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")


class Broken(tf.Module):
    """Signatures that each break one rule TF Serving's clients rely on."""

    @tf.function(input_signature=[export.TEXT_SPEC])
    def passthrough(self, text):  # serving_default: invalid UTF-8 out, `lengths` one row
        return _outputs(text, tf.shape(text)[0], lengths=tf.zeros([1], tf.int32))

    @tf.function(input_signature=[export.TEXT_SPEC])
    def clock_scores(self, text):  # beam_search: scores depend on the time of the request
        rows = tf.shape(text)[0]
        milliseconds = tf.cast(tf.math.floormod(tf.timestamp() * 1e3, 1.0), tf.float32)
        return _outputs(_valid_utf8(text), rows, scores=tf.fill([rows], milliseconds))

    @tf.function(input_signature=[export.TEXT_SPEC])
    def fine(self, text):
        return _outputs(_valid_utf8(text), tf.shape(text)[0])

    @tf.function(input_signature=[export.TEXT_SPEC])
    def strict(self, text):  # refuses empty strings (only over-long texts may be refused)
        tf.debugging.assert_greater(tf.strings.length(text), 0, message="empty input")
        return _outputs(_valid_utf8(text), tf.shape(text)[0])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="ids")])
    def ids(self, ids):  # not a text signature
        return {"ids": ids}


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("broken") / "1")
    module = Broken()
    tf.saved_model.save(module, path, signatures={
        "serving_default": module.passthrough.get_concrete_function(),
        "beam_search": module.clock_scores.get_concrete_function(),
        "strict": module.strict.get_concrete_function(),
        "ids": module.ids.get_concrete_function()})
    export.write_warmup_requests(path, [(["a"], "serving_default"),
                                        (["a", "b"], "serving_default")])
    return path


def rows(report):
    return {c.name: c for c in report.checks}


def failed(report):
    return sorted(c.name for c in report.failures)


# ----------------------------------------------------------------- the report
def test_a_good_export_passes_every_check(toy):
    report = verify.verify_export(toy.first)
    assert report.ok and report.path == toy.first, report.format_table()
    expected = LOADS + ["signature serving_default", "signature beam_search",
                        "ops: core TF + TF Text only", "warm-up records (C API)"]
    expected += [f"{name}: {odd}" for name in export.SIGNATURES for odd in ODD]
    assert [c.name for c in report.checks] == expected
    assert {c.status for c in report.checks} == {verify.PASS}
    checks = rows(report)
    assert checks["warm-up records (C API)"].detail.startswith("2 records replayed")
    assert "core TensorFlow ops" in checks["ops: core TF + TF Text only"].detail
    assert "= tf.saved_model.load" in checks["serving_default: mixed batch"].detail
    assert checks["beam_search: empty batch"].detail.startswith("0 rows")
    table = report.format_table().splitlines()
    assert table[0].split() == ["check", "result", "detail"] and len(table) == len(expected) + 2
    assert "0 failed, 0 skipped: TensorFlow Serving can load and run it" in report.summary()


def test_a_base_path_means_its_newest_version_and_overlong_may_be_refused(toy):
    assert verify.resolve_version_dir(toy.base) == toy.second
    report = verify.verify_export(toy.base, op_check=False)
    assert report.ok and report.path == toy.second, report.format_table()
    checks = rows(report)
    assert checks["ops: core TF + TF Text only"].status == verify.SKIP
    for name in export.SIGNATURES:  # max_source_len=8, overlong="reject"
        refused = checks[f"{name}: over-long text"]
        assert refused.status == verify.PASS and "refused: InvalidArgumentError" in refused.detail
        assert "max_source_len=8" in refused.detail


def test_each_broken_rule_fails_its_own_rows(broken):
    report = verify.verify_export(broken, op_check=False)
    assert not report.ok
    checks = rows(report)
    assert checks["signature ids"].status == verify.FAIL  # an int input: no odd inputs for it
    assert "one string input 'text'" in checks["signature ids"].detail
    assert not [n for n in checks if n.startswith("ids:")]
    assert failed(report) == sorted(
        ["signature ids", "warm-up records (C API)"]
        # passthrough: invalid UTF-8 comes back out; `lengths` has one row whatever the batch
        + [f"serving_default: {odd}" for odd in ("invalid UTF-8", "mixed batch", "empty batch")]
        # scores from the clock: the C API and tf.saved_model.load disagree wherever there is a row
        + [f"beam_search: {odd}" for odd in ODD if odd != "empty batch"]
        # refusing anything but an over-long text fails
        + [f"strict: {odd}" for odd in ("empty string", "mixed batch")])
    assert "record 2 of 2 (serving_default)" in checks["warm-up records (C API)"].detail
    assert "'lengths' has shape [1], not [2, ...]" in checks["warm-up records (C API)"].detail
    assert "invalid UTF-8" in checks["serving_default: invalid UTF-8"].detail
    assert "'lengths' has shape [1], not [0, ...]" in checks["serving_default: empty batch"].detail
    assert "'scores' differs from tf.saved_model.load" in checks["beam_search: mixed batch"].detail
    assert "C API: InvalidArgumentError" in checks["strict: empty string"].detail
    assert "empty input" in checks["strict: empty string"].detail
    assert checks["strict: whitespace only"].status == verify.PASS
    assert "NOT servable" in report.summary()


def test_missing_signatures_and_unknown_ops_are_named(tmp_path, monkeypatch):
    module = Broken()
    tf.saved_model.save(module, str(tmp_path), signatures=module.fine.get_concrete_function())
    names = opcheck.op_names(str(tmp_path))
    monkeypatch.setattr(opcheck, "op_names", lambda _: names | {"NoSuchOp"})
    report = verify.verify_export(str(tmp_path))
    checks = rows(report)
    assert failed(report) == ["ops: core TF + TF Text only", "signatures"]
    assert checks["signatures"].detail == "missing beam_search (have serving_default)"
    assert checks["ops: core TF + TF Text only"].detail.endswith("Text ops: ['NoSuchOp']")
    assert checks["warm-up records (C API)"].status == verify.SKIP  # TF Serving needs none


def test_what_the_loaders_refuse_is_a_failed_row_not_a_crash(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a SavedModel")
    report = verify.verify_export(str(tmp_path), op_check=False)
    checks = rows(report)
    assert failed(report) == LOADS
    assert all("Error: " in checks[name].detail for name in LOADS)
    assert checks["warm-up records (C API)"].status == verify.SKIP
    with pytest.raises(FileNotFoundError, match="no such export directory"):
        verify.resolve_version_dir(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a SavedModel directory"):
        verify.resolve_version_dir(str(tmp_path / "empty"))


# ----------------------------------------------------------------- export, then publish
def test_export_verified_publishes_only_what_passes(toy, broken, tmp_path):
    base = tmp_path / "g2p"
    staged = []

    def good(staging_base, version):
        staged.append(staging_base)
        return toy.export_to(staging_base, version, max_source_len=24)

    path, report = verify.export_verified(good, str(base), op_check=False)
    assert path == str(base / "1") and report.ok and report.path == path
    assert os.listdir(base) == ["1"]  # the staging directory is gone
    assert os.path.basename(staged[0]) == "g2p"  # warm-up records keep the model name
    assert os.path.basename(os.path.dirname(staged[0])).startswith(verify.STAGING_PREFIX)
    assert os.path.dirname(os.path.dirname(staged[0])) == str(base)
    assert {r.model_spec.name for r in export.read_warmup_requests(path)} == {"g2p"}

    def bad(staging_base, version):
        target = os.path.join(staging_base, str(version))
        shutil.copytree(broken, target)
        return target

    path, report = verify.export_verified(bad, str(base), op_check=False)
    assert path is None and not report.ok
    assert report.path == f"{base / '2'} (not written)"
    assert os.listdir(base) == ["1"]

    def failing(staging_base, version):
        os.makedirs(os.path.join(staging_base, "partial"))
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        verify.export_verified(failing, str(base))
    assert os.listdir(base) == ["1"]
    with pytest.raises(FileExistsError, match="version 1 already exists"):
        verify.export_verified(good, str(base), version=1)


# ----------------------------------------------------------------- the command line
def test_verify_export_command_exit_status(toy, broken, capsys):
    assert main(["verify-export", toy.base, "--skip-op-check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"verifying {toy.second}\ncheck ")
    assert "serving_default: invalid UTF-8" in out and "FAIL" not in out
    assert out.rstrip().endswith("TensorFlow Serving can load and run it")
    with pytest.raises(SystemExit) as exit_info:
        main(["verify-export", broken, "--skip-op-check"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 1 and "FAIL" in captured.out
    assert re.fullmatch(r"tfseq2seq: verify-export: 13 of \d+ checks failed", captured.err.strip())
    assert main(["verify-export", os.path.join(toy.base, "nope")]) == 2
    assert "no such export directory" in capsys.readouterr().err


def test_verify_export_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify-export", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "usage: tfseq2seq verify-export" in out
    assert "TensorFlow" in out


@pytest.fixture
def fake_run(toy, broken, monkeypatch):
    """``tfseq2seq export`` on a stand-in run: ``export_run`` copies ``source.path`` (the toy
    export, or the broken one) to the version it is asked for."""
    import tfseq2seq.run_dir

    calls = []
    source = types.SimpleNamespace(path=toy.first, calls=calls)

    def export_run(run, base_path, version=None, **options):
        version = version if version is not None else export.choose_version(base_path)
        calls.append((base_path, version))
        target = os.path.join(base_path, str(version))
        shutil.copytree(source.path, target)
        return target

    monkeypatch.setattr(tfseq2seq.run_dir, "load_run", lambda run_dir: object())
    monkeypatch.setattr(exporters, "export_run", export_run)
    return source


def test_export_command_verifies_before_publishing(fake_run, broken, tmp_path, capsys):
    base = tmp_path / "g2p"
    assert main(["export", "runs/x", "--base-path", str(base), "--skip-op-check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"exported: {base / '1'}\ncheck ")  # the table follows
    assert "beam_search: empty batch" in out and f"verified: {base / '1'}: " in out
    staging_base, version = fake_run.calls[-1]
    assert version == 1 and os.path.dirname(os.path.dirname(staging_base)) == str(base)
    assert os.listdir(base) == ["1"]

    fake_run.path = broken
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "runs/x", "--base-path", str(base), "--skip-op-check"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 1 and "exported:" not in captured.out
    assert "FAIL" in captured.out and "not exported" in captured.err
    assert os.listdir(base) == ["1"]  # a server polling the base path never sees it

    assert main(["export", "runs/x", "--base-path", str(base), "--skip-op-check",
                 "--skip-verify"]) == 0  # written as it is, unchecked
    assert capsys.readouterr().out == f"exported: {base / '2'}\n"
    assert fake_run.calls[-1] == (str(base), 2)
    assert sorted(os.listdir(base)) == ["1", "2"]
