"""A config file with a field of the wrong type (or value) fails on every loading route with a
:class:`jetfm.errors.ConfigError` naming the file, the field, the expected type and the value."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from transformers import AutoConfig, PretrainedConfig

from jetfm.config_checks import CheckedConfigMixin, check_config_fields, config_field_checks
from jetfm.configuration import JetFMConfig
from jetfm.errors import CheckpointError, ConfigError
from jetfm.modeling import JetFM, JetFMModel
from jetfm.modeling.tokenizer import ParticleTokenizerConfig

ROUTES = {
    "JetFMConfig.from_pretrained": JetFMConfig.from_pretrained,
    "AutoConfig.from_pretrained": AutoConfig.from_pretrained,
    "JetFMModel.from_pretrained": JetFMModel.from_pretrained,
    "JetFM.from_pretrained": JetFM.from_pretrained,
    "JetFMConfig.from_json_file": lambda folder: JetFMConfig.from_json_file(
        Path(folder) / "config.json"
    ),
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    JetFMModel(JetFMConfig.from_preset("tiny")).save_pretrained(folder)
    return folder


def _with_fields(saved: Path, tmp_path: Path, **fields) -> Path:
    folder = tmp_path / "ck"
    shutil.copytree(saved, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **fields}))
    return folder


BAD = [
    ({"hidden_size": "big"}, "field 'hidden_size' must be an int, got 'big' (str)"),
    ({"num_hidden_layers": True}, "field 'num_hidden_layers' must be an int, got True (bool)"),
    ({"mpm_target": ["flow"]}, "field 'mpm_target' must be a string, got ['flow'] (list)"),
    ({"layer_scale_init": "0.1"}, "field 'layer_scale_init' must be a float, got '0.1' (str)"),
    ({"ordered": 1}, "field 'ordered' must be a bool, got 1 (int)"),
    ({"head_hidden_size": 1.5}, "field 'head_hidden_size' must be an int or null, got 1.5"),
    ({"feature_groups": {"kinematics": "7"}}, "field 'feature_groups' must be a dict of ints"),
]


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(("fields", "message"), BAD, ids=[next(iter(f)) for f, _ in BAD])
def test_wrong_type_names_file_field_and_type(saved_model, tmp_path, route, fields, message):
    folder = _with_fields(saved_model, tmp_path, **fields)
    with pytest.raises(ConfigError) as info:
        ROUTES[route](str(folder))
    text = str(info.value)
    assert text.startswith(f"{folder / 'config.json'}: "), text
    assert message in text
    # existing handlers keep catching it
    assert isinstance(info.value, CheckpointError)
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("route", list(ROUTES))
def test_value_errors_of_a_loaded_config_name_the_file(saved_model, tmp_path, route):
    folder = _with_fields(saved_model, tmp_path, mpm_target="bert")
    with pytest.raises(ConfigError, match=re.escape(f"{folder / 'config.json'}: mpm_target")):
        ROUTES[route](str(folder))
    folder = _with_fields(saved_model, tmp_path / "b", hidden_size=30)
    with pytest.raises(ConfigError, match=re.escape(f"{folder / 'config.json'}: hidden_size")):
        ROUTES[route](str(folder))


@pytest.mark.parametrize("route", list(ROUTES))
def test_valid_config_still_loads(saved_model, tmp_path, route):
    # null where the default is None, an int for a float field (stored as a float)
    folder = _with_fields(saved_model, tmp_path, head_hidden_size=None, layer_scale_init=1)
    loaded = ROUTES[route](str(folder))
    config = getattr(loaded, "config", loaded)
    assert config.hidden_size == 32 and config.head_hidden_size is None
    assert config.layer_scale_init == 1.0 and isinstance(config.layer_scale_init, float)


def test_from_dict_names_the_class_and_keeps_plain_value_errors():
    with pytest.raises(ConfigError, match="^JetFMConfig: field 'hidden_size' must be an int"):
        JetFMConfig.from_dict({"hidden_size": "big"})
    with pytest.raises(ValueError, match="^mpm_target must be one of"):
        JetFMConfig.from_dict({"mpm_target": "bert"})
    assert JetFMConfig.from_dict({"hidden_size": 64}).hidden_size == 64


def test_every_simple_constructor_field_is_checked():
    checks = {name: check.expected for name, check in config_field_checks(JetFMConfig).items()}
    assert checks["hidden_size"] == "an int"
    assert checks["mask_fraction"] == "a float"
    assert checks["ordered"] == "a bool"
    assert checks["mpm_target"] == "a string"
    assert checks["size"] == "a string or null"
    assert checks["target_options"] == "a dict or null"
    assert checks["feature_groups"] == "a dict of ints or null"
    tokenizer = config_field_checks(ParticleTokenizerConfig)
    assert tokenizer["num_codes"].expected == "an int"
    assert tokenizer["commitment_cost"].expected == "a float"
    with pytest.raises(ConfigError, match="^t.json: field 'num_codes' must be an int, got '512'"):
        check_config_fields(ParticleTokenizerConfig, {"num_codes": "512"}, "t.json")


class _NewConfig(CheckedConfigMixin, PretrainedConfig):
    """A config with fields of other annotations: a new field is checked with no list to
    update."""

    model_type = "jetfm-test-new"

    def __init__(
        self,
        names: tuple[str, ...] = ("a",),
        tags: list[str] | None = None,
        anything=None,
        **kwargs,
    ):
        self.names, self.tags, self.anything = tuple(names), tags, anything
        super().__init__(**kwargs)


def test_new_fields_are_covered_from_the_signature(tmp_path):
    _NewConfig(names=("x", "y"), tags=["t"], anything={"free": [1, "x"]}).save_pretrained(tmp_path)
    assert _NewConfig.from_pretrained(tmp_path).names == ("x", "y")
    config = json.loads((tmp_path / "config.json").read_text())
    for bad, message in [
        ({"names": "x"}, "field 'names' must be a list of strings, got 'x' (str)"),
        ({"names": ["x", 1]}, "field 'names' must be a list of strings"),
        ({"tags": {"t": 1}}, "field 'tags' must be a list of strings or null"),
    ]:
        (tmp_path / "config.json").write_text(json.dumps({**config, **bad}))
        with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'config.json'}: {message}")):
            _NewConfig.from_pretrained(tmp_path)


def test_tokenizer_config_names_file_and_field(tmp_path):
    checked = ParticleTokenizerConfig
    ParticleTokenizerConfig(num_codes=8).save_pretrained(tmp_path)
    assert checked.from_pretrained(tmp_path).num_codes == 8
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_codes": [8]}))
    with pytest.raises(
        ConfigError,
        match=re.escape(f"{tmp_path / 'config.json'}: field 'num_codes' must be an int, got [8]"),
    ):
        checked.from_pretrained(tmp_path)
