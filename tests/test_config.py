import os

import pytest

from tfseq2seq.config import Config, ConfigError, from_dict, load_config, save_config


def test_defaults_and_nested_values():
    config = from_dict({"model": {"units": 32, "attention": None}, "training": {"learning_rate": 1}})
    assert config.model.units == 32 and config.model.attention is None
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)
    assert config.data.corpus == Config().data.corpus


@pytest.mark.parametrize("data,match", [
    ({"model": {"unitz": 3}}, "model.unitz"),
    ({"trainig": {}}, "trainig"),
    ({"model": {"units": "big"}}, "model.units"),
    ({"model": {"bidirectional": "yes"}}, "model.bidirectional"),
    ({"training": {"epochs": True}}, "training.epochs"),
    ({"model": 3}, "model"),
])
def test_bad_keys_and_types_are_named(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(data)


def test_yaml_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  units: 16\nsampling:\n  schedule: linear\n  steps: 10\n")
    config = load_config(path, ["training.epochs=2", "model.attention=null", "sampling.k=3"])
    assert config.training.epochs == 2 and config.model.attention is None
    assert config.sampling.params() == {"steps": 10, "k": 3.0}
    save_config(config, tmp_path / "out.yaml")
    assert load_config(tmp_path / "out.yaml") == config
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["epochs=2"])
    with pytest.raises(ConfigError, match="model.nope"):
        load_config(path, ["model.nope=1"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_every_unknown_key_is_reported_in_one_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  unitz: 16\n  cel: gru\ntrainig:\n  epochs: 2\n"
                    "decoding:\n  beam: 4\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, ["data.corpuss=tsv"])
    message = str(error.value)
    for key in ("'model.unitz'", "'model.cel'", "'trainig'", "'decoding.beam'", "'data.corpuss'"):
        assert key in message
    assert message.startswith("unknown config keys ") and "model takes" in message


def test_bundled_configs_load_by_name_from_any_directory(tmp_path, monkeypatch):
    from tfseq2seq.config import BUNDLED_CONFIGS, bundled_configs

    monkeypatch.chdir(tmp_path)
    assert {"g2p", "smoke", "demo", "cmudict-g2p"} <= set(bundled_configs())
    smoke = load_config("smoke")  # its TSV paths resolve next to the bundled file
    assert smoke.data.train == os.path.join(BUNDLED_CONFIGS, "data", "tiny_train.tsv")
    assert os.path.isfile(smoke.data.train)
    assert load_config("g2p.yaml") == load_config(os.path.join(BUNDLED_CONFIGS, "g2p.yaml"))
    (tmp_path / "smoke").mkdir()  # a directory of that name is not a config file
    with pytest.raises(ConfigError, match="bundled configs: .*smoke"):
        load_config("nosuch")
