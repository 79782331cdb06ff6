"""Hooks the projector route into the SFT recipe: data, features, trainable parts and what gets saved.

`prepare` returns everything `SFTTrainer` needs; the recipe itself (`affect_llm.train.recipes.train`) stays the
one code path for text and multimodal SFT. Stage 1 freezes the whole LM (no LoRA) and trains the projectors
on cue descriptions; stage 2 adds LoRA (new, or continued from `init_adapter`) and trains both on the
explain task. Projector weights are written beside the adapter but in their own files
(`projector.safetensors`, `projector_config.json`), so either can be loaded or swapped alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affect_llm.errors import AffectError
from affect_llm.projector.affect_lm import AffectLM
from affect_llm.projector.data import MultimodalCollator, media_of, stage_rows, tokenize_rows

__all__ = ["PreparedProjector", "encode_rows", "prepare"]


@dataclass
class PreparedProjector:
    model: Any  # what the trainer optimises: the LM (stage 1) or its PEFT wrapper (stage 2)
    affect: AffectLM
    train_dataset: Any
    eval_dataset: Any
    collator: MultimodalCollator
    hook: Any

    def save(self, output_dir: str) -> None:
        self.affect.save_projectors(output_dir)


def encode_rows(affect: AffectLM, rows: list[dict[str, Any]], desc: str = "features") -> list[dict[str, Any]]:
    """Frames for each row's media (cached on disk per file and encoder), with a progress bar."""
    from tqdm import tqdm

    return [affect.encode(row["media"]) for row in tqdm(rows, desc=desc, unit="input", leave=False)]


def _rows(cfg, file: str, affect: AffectLM) -> list[dict[str, Any]]:
    from affect_llm.train import data as text_data
    from affect_llm.train.recipes import label_model_for

    samples = text_data.load_samples(file, cfg.max_samples, cfg.data_seed_shuffle, cfg.seed)
    modalities = sorted(set(affect.modalities.values()))
    without = sum(1 for s in samples if not media_of(s, modalities))
    if without == len(samples):
        raise AffectError(f"{file}: no sample has {' or '.join(modalities)} input for the projector encoders")
    return stage_rows(samples, cfg.projector_stage, modalities, closed_label_space=cfg.closed_label_space,
                      label_vocabulary=cfg.label_vocabulary, explanation_from=cfg.explanation_from,
                      use_cues=cfg.projector_cues, label_model=label_model_for(cfg))


def _dataset(cfg, file: str, affect: AffectLM, what: str):
    from datasets import Dataset

    rows = _rows(cfg, file, affect)
    if not rows:
        raise AffectError(f"no {what} rows could be built from {file}")
    features = encode_rows(affect, rows, desc=f"{what} features")
    return Dataset.from_list(tokenize_rows(rows, affect, cfg.max_length)), features


def prepare(cfg, model, tokenizer, label: str) -> PreparedProjector:
    """Build (or load) the projectors on `model`, freeze what the stage freezes, tokenize and encode data."""
    from affect_llm.train.recipes import lora_config

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
    elif cfg.projector_stage == 2:  # use_lora: false means full fine-tuning, as in the text recipe
        for p in model.parameters():
            p.requires_grad_(True)
    for p in affect.projectors.parameters():
        p.requires_grad_(True)
    # TRL must not re-tokenize (rows carry slots) nor drop the columns the collator needs.
    cfg.dataset_kwargs = {**(cfg.dataset_kwargs or {}), "skip_prepare_dataset": True}
    cfg.remove_unused_columns = False
    train_ds, train_feats = _dataset(cfg, cfg.train_file, affect, "train")
    eval_ds = None
    collator = MultimodalCollator(affect, train_feats)
    if cfg.eval_file:
        eval_ds, eval_feats = _dataset(cfg, cfg.eval_file, affect, "eval")
        # One collator serves both: eval rows index their own feature list, offset past the train rows.
        offset = len(train_feats)
        eval_ds = eval_ds.map(lambda r: {"media_key": r["media_key"] + offset})
        collator.features = train_feats + eval_feats
    hook = affect.attach(model)
    return PreparedProjector(model, affect, train_ds, eval_ds, collator, hook)
