"""The config both engines share: the entropy band's switch and estimator."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import MISSING, fields

import pytest

from openvlthinker.method_config import ENTROPY_ESTIMATORS, EntropyBandConfig


def test_defaults_and_a_help_text_on_every_field():
    band = EntropyBandConfig()
    assert (band.enable, band.estimator) == (True, "sampled")
    assert ENTROPY_ESTIMATORS == ("sampled", "full")
    for f in fields(EntropyBandConfig):
        assert f.metadata["help"], f.name


def test_it_is_a_drop_in_for_the_engines_band_config():
    # same field names and defaults as actor.entropy_band, so the engine can hold this class
    from openvlthinker.engine.config import EntropyBandConfig as EngineBand

    def shape(cls):
        return {
            f.name: f.default if f.default is not MISSING else f.default_factory()
            for f in fields(cls)
        }

    assert shape(EntropyBandConfig) == shape(EngineBand)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"estimator": "vocab"},
            r"^entropy_band\.estimator 'vocab' is unknown; known: sampled, full$",
        ),
        ({"enable": "yes"}, r"^entropy_band\.enable: expected true or false, got 'yes'$"),
        ({"enable": 1}, r"^entropy_band\.enable: expected true or false, got 1$"),
    ],
)
def test_bad_values_name_the_key_relative_to_the_section(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EntropyBandConfig(**kwargs)


def test_the_module_imports_no_engine_verl_or_transformers():
    code = (
        "import sys, openvlthinker.method_config; "
        "bad = [m for m in ('transformers', 'verl', 'torch', 'openvlthinker.engine', "
        "'openvlthinker.verl_plugin') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
