"""Model builders for the recipes: the base LM (quantized when asked), LoRA, and the projector composition.

They live in `train/`, not beside the models they build, so the dependency runs one way: `train` imports
`projector` (model code), never the reverse. Heavy imports (torch, transformers, peft) happen inside the
functions.
"""

from __future__ import annotations

from typing import Any

from affect_llm.errors import AffectError

__all__ = ["build_affect_lm", "continue_adapter", "count_params", "load_model", "lora_config"]


def lora_config(cfg):
    from peft import LoraConfig

    targets = cfg.lora_target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM", bias="none")


def load_model(cfg):
    """(model, tokenizer, model label) for the config's base model, quantized when asked (QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from affect_llm.assets import resolve_model

    label, path = resolve_model(cfg.model)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, cfg.torch_dtype)}
    if cfg.quantization != "none":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_8bit=True) if cfg.quantization == "8bit"
            else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=getattr(torch, cfg.torch_dtype))
        )
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:
        raise AffectError(f"cannot load model {label!r}: {err}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if cfg.quantization != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    return model, tok, label


def continue_adapter(model, adapter_dir: str):
    """Wrap `model` with a saved LoRA adapter whose weights keep training (GRPO after SFT, stage 2 after 1)."""
    from peft import PeftModel

    from affect_llm.backends.base import check_adapter_dir

    check_adapter_dir(adapter_dir)
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)


def count_params(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def build_affect_lm(cfg, model, tokenizer, label: str):
    """(what the trainer optimises, AffectLM) with the stage's parts trainable.

    Stage 1 freezes the whole LM and trains the projectors; stage 2 adds LoRA (new, or continued from
    `init_adapter`) or, with `use_lora: false`, fine-tunes the LM fully, as the text recipe does.
    """
    from affect_llm.projector.affect_lm import AffectLM

    if cfg.projector_init:
        affect = AffectLM.from_pretrained(cfg.projector_init, model, tokenizer)
    else:
        affect = AffectLM.build(model, tokenizer, list(cfg.projector_encoders), kind=cfg.projector,
                                num_tokens=cfg.projector_tokens, hidden=cfg.projector_hidden, base_model=label)
    for p in model.parameters():
        p.requires_grad_(False)
    if cfg.projector_stage == 2 and cfg.use_lora:
        from peft import PeftModel, get_peft_model

        if isinstance(model, PeftModel):
            for name, p in model.named_parameters():
                p.requires_grad_("lora_" in name)
        else:
            model = get_peft_model(model, lora_config(cfg))
        affect.lm = model
    elif cfg.projector_stage == 2:
        for p in model.parameters():
            p.requires_grad_(True)
    for p in affect.projectors.parameters():
        p.requires_grad_(True)
    return model, affect
