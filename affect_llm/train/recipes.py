"""The three recipes: build the dataset with the inference templates, load the model, hand both to TRL.

No training loop lives here: `SFTTrainer`, `DPOTrainer` and `GRPOTrainer` do the work; this module only
turns a validated config into their arguments (model, LoRA config, dataset, reward functions) and writes
the adapter plus a run card when TRL is done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError
from affect_llm.train.model import continue_adapter, count_params, load_model, lora_config

__all__ = ["build_rows", "label_model_for", "train"]


def _dataset(rows: list[dict[str, Any]], what: str):
    from datasets import Dataset

    if not rows:
        raise AffectError(f"no {what} rows could be built from the data (labels outside the vocabulary?)")
    return Dataset.from_list(rows)


def build_rows(recipe: str, cfg, file: str | None) -> list[dict[str, Any]]:
    from affect_llm.train import data

    samples = data.load_samples(file, cfg.max_samples, cfg.data_seed_shuffle, cfg.seed) if file else []
    lm = label_model_for(cfg)
    if recipe == "sft":
        return data.sft_rows(samples, closed_label_space=cfg.closed_label_space, label_model=lm,
                             label_vocabulary=cfg.label_vocabulary, explanation_from=cfg.explanation_from)
    if recipe == "grpo":
        return data.grpo_rows(samples, closed_label_space=cfg.closed_label_space, label_vocabulary=cfg.label_vocabulary,
                              label_model=lm)
    pairs = []
    if getattr(cfg, "pairs_file", None) and file is cfg.train_file:
        from affect_llm.data_builders.schema import read_pairs

        pairs = read_pairs(cfg.pairs_file)
        if cfg.max_samples:
            pairs = pairs[: cfg.max_samples]
    return data.dpo_rows(samples, pairs, kinds=cfg.negatives, closed_label_space=cfg.closed_label_space,
                         label_vocabulary=cfg.label_vocabulary, label_model=lm, seed=cfg.seed)


def label_model_for(cfg):
    """The label model whose prior the training prompts carry (the one inference will use with this LM)."""
    from affect_llm.label_model import resolve_label_model

    choice = None if cfg.label_model in (None, "none") else cfg.label_model
    return resolve_label_model(choice, cfg.model)


def train(recipe: str, cfg, callbacks: list | None = None) -> dict[str, Any]:
    """Run one recipe end to end; returns the run card dict (also written to `cfg.output_dir`)."""
    from affect_llm.threads import configure_threads

    configure_threads(cfg.threads)
    import trl

    from affect_llm.hashing import sha256_file
    from affect_llm.train.config import config_to_dict
    from affect_llm.train.data import data_licences
    from affect_llm.train.runcard import write_run_card

    projector = getattr(cfg, "projector", None) if recipe == "sft" else None
    if not projector:
        rows = build_rows(recipe, cfg, cfg.train_file)
        train_ds = _dataset(rows, recipe)
        eval_ds = _dataset(build_rows(recipe, cfg, cfg.eval_file), recipe + " eval") if cfg.eval_file else None
    model, tok, label = load_model(cfg)
    peft_config = lora_config(cfg) if cfg.use_lora else None
    if cfg.init_adapter:
        model = continue_adapter(model, cfg.init_adapter)
        peft_config = None
    prepared = None
    if projector:
        from affect_llm.train.multimodal import prepare

        prepared = prepare(cfg, model, tok, label)
        model, train_ds, eval_ds, peft_config = prepared.model, prepared.train_dataset, prepared.eval_dataset, None
    common = dict(model=model, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tok,
                  peft_config=peft_config, callbacks=callbacks)
    if recipe == "sft":
        trainer = trl.SFTTrainer(**common, data_collator=prepared.collator if prepared else None)
    elif recipe == "dpo":
        trainer = trl.DPOTrainer(**common)
    elif recipe == "grpo":
        from affect_llm.train.rewards import make_reward_funcs

        funcs = make_reward_funcs(cfg.rewards, level1_credit=cfg.level1_credit, think=cfg.think_format,
                                  target_chars=cfg.target_chars)
        trainer = trl.GRPOTrainer(reward_funcs=funcs, **common)
    else:
        raise AffectError(f"unknown recipe {recipe!r}; valid: sft, dpo, grpo")
    trainable, total = count_params(trainer.model)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    lm_trained = not (prepared and cfg.projector_stage == 1)  # stage 1 leaves the LM untouched: save no copy
    if lm_trained:
        trainer.save_model(cfg.output_dir)
    if trainer.is_world_process_zero():
        if lm_trained and not cfg.use_lora:
            tok.save_pretrained(cfg.output_dir)
        if prepared:
            prepared.save(cfg.output_dir)
    metrics: dict[str, Any] = dict(result.metrics)
    metrics["wall_s"] = round(seconds, 2)
    logged = [h for h in trainer.state.log_history if "loss" in h or any(k.startswith("rewards/") for k in h)]
    if logged:
        metrics.update({f"last_{k}": v for k, v in logged[-1].items() if isinstance(v, (int, float))})
    data_files = [f for f in (cfg.train_file, cfg.eval_file, getattr(cfg, "pairs_file", None)) if f]
    card = {
        "recipe": recipe,
        "base_model": label,
        "data": data_files,
        "data_sha256": {str(Path(f).name): sha256_file(f) for f in data_files},
        "data_licences": data_licences(cfg.train_file) if cfg.train_file else {},
        "n_train_rows": len(train_ds),
        "init_adapter": cfg.init_adapter,
        "projector": prepared.affect.config_dict() if prepared else None,
        "world_size": cfg.world_size,
        "trainable_params": trainable,
        "total_params": total,
        "metrics": metrics,
        "log_history": trainer.state.log_history,
        "config": config_to_dict(cfg),
    }
    if trainer.is_world_process_zero():
        write_run_card(cfg.output_dir, card)
    return card
