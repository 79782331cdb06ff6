"""Recipe configs: validated before any model loads, all problems at once; YAML + --key overrides; CLI."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from affect_llm.train.config import ConfigError, load_config, parse_overrides


@pytest.fixture()
def train_file(tmp_path) -> str:
    p = tmp_path / "train.jsonl"
    p.write_text('{"id": "a", "dataset": "t", "split": "train", "text": "yay", "labels": ["joy"]}\n')
    return str(p)


def test_all_errors_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config("sft", overrides=dict(train_file=str(tmp_path / "missing.jsonl"), lora_r=0, lora_dropout=1.5,
                                          quantization="int3", torch_dtype="fp8", packing=True,
                                          output_dir=str(tmp_path / "o")))
    msg = str(err.value)
    for field in ("train_file", "lora_r", "lora_dropout", "quantization", "torch_dtype", "packing"):
        assert field in msg
    assert "6 problems" in msg


def test_grpo_reward_validation(train_file, tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config("grpo", overrides=dict(train_file=train_file, rewards=["wheel_f1", "nope"], reward_weights=[1.0],
                                           output_dir=str(tmp_path / "o")))
    assert "nope" in str(err.value) and "reward_weights" in str(err.value)
    cfg = load_config("grpo", overrides=dict(train_file=train_file, rewards=["wheel_f1", "format"],
                                             reward_weights=[1.0, 0.5], output_dir=str(tmp_path / "o")))
    assert cfg.rewards == ["wheel_f1", "format"]


def test_qlora_without_bitsandbytes_names_the_fix(train_file, tmp_path, monkeypatch):
    from affect_llm.train import config

    monkeypatch.setattr(config, "is_bitsandbytes_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install .affect-llm\[qlora\]"):
        load_config("sft", overrides=dict(train_file=train_file, quantization="nf4", output_dir=str(tmp_path)))


def test_unknown_key_suggests_close_match(train_file):
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        load_config("sft", overrides=dict(train_file=train_file, learnin_rate=1e-4))


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["--learning_rate", "1e-4", "--bf16=true", "--lora_target_modules", "[q_proj,v_proj]",
                            "--use-lora", "--save_strategy", "no"]) == {"save_strategy": "no", "learning_rate": 1e-4, "bf16": True,
                                               "lora_target_modules": ["q_proj", "v_proj"], "use_lora": True}
    with pytest.raises(ConfigError):
        parse_overrides(["lr"])


def test_yaml_then_overrides(tmp_path, train_file):
    y = tmp_path / "c.yaml"
    y.write_text(f"train_file: {train_file}\nlora_r: 4\nlearning_rate: 0.001\noutput_dir: {tmp_path / 'o'}\n")
    cfg = load_config("sft", y, {"lora_r": 2})
    assert (cfg.lora_r, cfg.learning_rate) == (2, 0.001)


@pytest.mark.parametrize("name", ["sft_default_cpu.yaml", "sft_7b_gpu.yaml", "dpo_cpu.yaml", "grpo_cpu.yaml",
                                  "grpo_7b_gpu.yaml"])
def test_shipped_configs_validate(name, train_file, tmp_path, monkeypatch):
    import yaml

    path = resources.files("affect_llm.train").joinpath("configs", name)
    recipe = name.split("_")[0]
    keys = yaml.safe_load(path.read_text())
    over = {"train_file": train_file, "output_dir": str(tmp_path / "o")}
    if "eval_file" in keys:
        over["eval_file"] = train_file
    if "pairs_file" in keys:
        over["pairs_file"] = train_file
    if keys.get("bf16") or keys.get("use_vllm"):  # GPU-only flags: validate the rest on this CPU host
        over.update(bf16=False, gradient_checkpointing=False)
        if recipe == "grpo":
            over["use_vllm"] = False
    cfg = load_config(recipe, Path(str(path)), over)
    assert cfg.output_dir == str(tmp_path / "o")


def test_accelerate_configs_ship():
    import yaml

    folder = resources.files("affect_llm.train").joinpath("accelerate")
    kinds = {yaml.safe_load(folder.joinpath(n).read_text())["distributed_type"]
             for n in ("ddp.yaml", "fsdp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml", "cpu_2proc.yaml")}
    assert kinds == {"MULTI_GPU", "FSDP", "DEEPSPEED", "MULTI_CPU"}


def test_cli_show_and_errors(train_file, tmp_path, capsys):
    from affect_llm.cli.app import main

    with pytest.raises(SystemExit) as ex:
        main(["train", "show", "sft", "--train_file", train_file, "--lora_r", "3", "--output_dir", str(tmp_path)])
    assert ex.value.code == 0
    assert '"lora_r": 3' in capsys.readouterr().out
    with pytest.raises(SystemExit) as ex:
        main(["train", "sft", "--train_file", str(tmp_path / "nope.jsonl"), "--output_dir", str(tmp_path)])
    assert ex.value.code == 2
    assert "train_file: no such file" in capsys.readouterr().err
