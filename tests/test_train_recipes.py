"""Each recipe runs a few steps on a tiny random Llama: LoRA weights change, the base stays frozen, and the
saved adapter reloads (also through the inference backend) and changes the model's outputs."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

SAMPLES = [
    ("I can't believe you forgot my birthday again.", ["anger"]),
    ("This is the best day of my life!", ["joy"]),
    ("I miss her so much.", ["sadness"]),
    ("Wow, I did not expect that at all.", ["surprise"]),
]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> str:
    from affect_llm.data_builders.schema import write_samples

    path = tmp_path_factory.mktemp("train") / "train.jsonl"
    write_samples(path, [
        dict(id=f"t/{i}", dataset="t", split="train", text=t, labels=lab, speaker="Ann",
             cues=[{"modality": "speech", "cue": "voice shaking", "evidence": "pitch jitter high"}] if i % 2 else [])
        for i, (t, lab) in enumerate(SAMPLES)
    ])
    return str(path)


class ParamWatch:
    """Snapshots parameters when training starts and compares them when it ends."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        watch = self

        class _CB(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kw):
                watch.before = {n: p.detach().clone() for n, p in model.named_parameters()}
                watch.trainable = {n for n, p in model.named_parameters() if p.requires_grad}

            def on_train_end(self, args, state, control, model=None, **kw):
                watch.after = {n: p.detach().clone() for n, p in model.named_parameters()}

        self.callback = _CB()

    def changed(self, names) -> list[str]:
        import torch

        return [n for n in names if not torch.equal(self.before[n], self.after[n])]


def _run(recipe: str, model_dir, train_file, out, **extra):
    from affect_llm.train.config import load_config
    from affect_llm.train.recipes import train

    over = dict(model=str(model_dir), train_file=train_file, output_dir=str(out), max_steps=2,
                per_device_train_batch_size=2, learning_rate=5e-2, logging_steps=1, save_strategy="no",
                report_to="none", lora_r=4, lora_alpha=8, lora_dropout=0.0, seed=0, max_length=400)
    if recipe == "grpo":
        del over["max_length"]
    over.update(extra)
    cfg = load_config(recipe, overrides=over)
    watch = ParamWatch()
    card = train(recipe, cfg, callbacks=[watch.callback])
    return card, watch


def _check_params(watch):
    lora = [n for n in watch.trainable if "lora_" in n]
    assert lora and set(watch.trainable) == set(lora)  # only LoRA weights train
    assert watch.changed([n for n in lora if "lora_B" in n])  # B starts at 0 and moves
    frozen = [n for n in watch.before if n not in watch.trainable]
    assert frozen and not watch.changed(frozen)


def _logits(model_dir, adapter=None):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    with torch.no_grad():
        return model(torch.tensor([[1, 2, 3, 4, 5]])).logits


def test_sft_trains_lora_saves_reloads_and_changes_outputs(tiny_llama_dir, train_file, tmp_path):
    import torch

    out = tmp_path / "sft"
    card, watch = _run("sft", tiny_llama_dir, train_file, out)
    _check_params(watch)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    run_card = json.loads((out / "run_card.json").read_text())
    assert run_card["recipe"] == "sft" and run_card["templates"]["explain"]
    assert run_card["data_sha256"] and run_card["packages"]["trl"]
    assert run_card["trainable_params"] < run_card["total_params"]
    assert (out / "run_card.md").is_file()
    assert not torch.allclose(_logits(tiny_llama_dir), _logits(tiny_llama_dir, out))
    # the inference backend loads the same folder (`explain --adapter DIR`)
    from affect_llm.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(model=str(tiny_llama_dir), adapter=str(out), dtype="float32")
    assert str(out) in backend.model_id


def test_sft_loss_is_completion_only(tiny_llama_dir, train_file):
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from affect_llm.train.config import load_config
    from affect_llm.train.recipes import _dataset, build_rows

    cfg = load_config("sft", overrides=dict(train_file=train_file, output_dir="unused", report_to="none"))
    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    from transformers import AutoModelForCausalLM

    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)), args=cfg,
                         train_dataset=_dataset(build_rows("sft", cfg, train_file), "sft"), processing_class=tok)
    row = trainer.train_dataset[0]
    mask = [lab != -100 for lab in row["labels"]]  # TRL builds labels with the prompt masked out
    n_prompt = mask.index(True)
    assert n_prompt > 50 and sum(mask) < len(mask)
    completion = tok.decode([t for t, m in zip(row["input_ids"], mask) if m])
    assert completion.lstrip().startswith('{"labels"')


def test_dpo_two_steps(tiny_llama_dir, train_file, tmp_path):
    card, watch = _run("dpo", tiny_llama_dir, train_file, tmp_path / "dpo", per_device_train_batch_size=1,
                       max_length=300,
                       negatives=["spurious_label", "text_only"])
    _check_params(watch)
    assert card["n_train_rows"] == 6  # 4 spurious-label + 2 text-only (samples with a speech cue)
    assert any("rewards/margins" in h for h in card["log_history"])


def test_grpo_two_steps_logs_each_reward(tiny_llama_dir, train_file, tmp_path):
    # a random model never writes valid JSON, so wheel_f1/format are 0; the length reward varies with the
    # completion's characters and gives the advantages GRPO needs to move the weights.
    card, watch = _run("grpo", tiny_llama_dir, train_file, tmp_path / "grpo", num_generations=2,
                       max_completion_length=12, rewards=["wheel_f1", "format", "length"], target_chars=60,
                       reward_weights=[1.0, 1.0, 1.0], beta=0.0)
    _check_params(watch)
    logged = {k for h in card["log_history"] for k in h}
    assert {"rewards/wheel_f1/mean", "rewards/format/mean", "rewards/length/mean"} <= logged


@pytest.mark.parametrize("quantization", ["8bit", "nf4"])
def test_qlora_sft_on_cpu(tiny_llama_dir, train_file, tmp_path, quantization):
    """QLoRA: bitsandbytes quantizes the frozen base (it has CPU kernels for 8-bit and nf4); LoRA trains."""
    pytest.importorskip("bitsandbytes")
    card, watch = _run("sft", tiny_llama_dir, train_file, tmp_path / quantization, quantization=quantization,
                       torch_dtype="float32")
    _check_params(watch)
    assert card["config"]["quantization"] == quantization
    assert (tmp_path / quantization / "adapter_model.safetensors").is_file()
