"""The bundled tuned adapter: where `"default"` resolves, and the CLI switches around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affect_llm.assets import DEFAULT_LLM, default_adapter_dir, resolve_adapter

REPO = Path(__file__).resolve().parents[1]


def test_resolution_rules():
    bundled = default_adapter_dir()
    want = str(bundled) if bundled else None
    for model in (None, "", "default", DEFAULT_LLM):
        assert resolve_adapter("default", model) == want
    assert resolve_adapter("default", "some-org/other-model") is None  # trained for the default model only
    assert resolve_adapter(None, None) is None
    assert resolve_adapter("/x/adapter", "some-org/other-model") == "/x/adapter"


def test_bundled_adapter_is_complete_and_documented():
    bundled = default_adapter_dir()
    if bundled is None:
        pytest.skip("this checkout ships no default adapter")
    cfg = json.loads((bundled / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["base_model_name_or_path"] == DEFAULT_LLM
    assert (bundled / "adapter_model.safetensors").stat().st_size < 8 * 2**20  # a few MB, fits a wheel
    card = json.loads((bundled / "run_card.json").read_text())
    assert card["recipe"] == "sft" and card["base_model"] == DEFAULT_LLM
    assert all("Apache-2.0" in lic for lic in card["data_licences"].values())


def test_cli_rejects_adapter_and_no_adapter(tmp_path):
    from test_cli_explain import assert_user_error, run

    assert_user_error(run("explain", "--text", "hi", "--adapter", str(tmp_path), "--no-adapter"),
                      "either --adapter or --no-adapter")
    assert_user_error(run("explain", "--text", "hi", "--projector", str(tmp_path)), "not a projector folder")
