"""The projector route of the SFT recipe: multimodal rows, the collator feeding `AffectLM` slots through
TRL's SFTTrainer, and `prepare`, which returns everything `SFTTrainer` needs.

`affect_llm.train.recipes.train` stays the one code path for text and multimodal SFT. Projector weights are
written beside the adapter but in their own files (`projector.safetensors`, `projector_config.json`), so
either can be loaded or swapped alone.

Stage 1 (projector only) needs no captions: the target is what the textualizers say about the same clip
(`speaks higher than usual; tense, effortful voice`), so the projector learns to put into soft tokens what
the prosody/face analysers can put into words. Stage 2 is the explain task itself, rendered by the same
templates as inference with `<audio>` / `<face>` placeholders where the soft tokens go.

Rows are tokenized here (TRL's own preparation is skipped): `input_ids`, `labels` (-100 on the prompt and
the slots: completion-only loss, as in the text recipe), `affect_slots`, and `media_key` pointing at the
sample's precomputed frames, which the collator pads per encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from affect_llm.errors import AffectError
from affect_llm.projector.affect_lm import AffectLM
from affect_llm.train import data as text_data

__all__ = ["STAGE1_PROMPTS", "MultimodalCollator", "PreparedProjector", "cue_description", "encode_rows",
           "media_of", "prepare", "stage_rows", "tokenize_rows"]

STAGE1_PROMPTS = {
    "audio": "Listen: <audio>\nDescribe how the speaker's voice sounds (pitch, loudness, tempo, voice quality).",
    "face": "Look: <face>\nDescribe the person's facial expression and head movement.",
}
_CUE_MODALITY = {"audio": "speech", "face": "face"}
_NO_CUES = {"audio": "an ordinary voice, no notable vocal cues", "face": "a neutral face, no notable facial cues"}


def media_of(sample, modalities: list[str]) -> dict[str, str]:
    """{modality: path} for the sample's inputs the model has encoders for (video feeds the face)."""
    out: dict[str, str] = {}
    if "audio" in modalities and sample.audio:
        out["audio"] = sample.audio
    if "face" in modalities and (sample.video or sample.image):
        out["face"] = sample.video or sample.image
    return out


def cue_description(sample, modality: str) -> str:
    """The stage-1 target: the sample's textualized cues of that modality, as one line."""
    cues = [c.cue for c in sample.cues if c.modality == _CUE_MODALITY[modality]]
    return "; ".join(dict.fromkeys(cues)) if cues else _NO_CUES[modality]


def stage_rows(samples, stage: int, modalities: list[str], *, closed_label_space: bool | float = False,
               label_vocabulary: str = "emotions", explanation_from: str = "auto",
               use_cues: bool = True, label_model: Any = None) -> list[dict[str, Any]]:
    """Conversational rows with a `media` dict: stage 1 = describe the signal, stage 2 = explain."""
    rows: list[dict[str, Any]] = []
    if stage == 1:
        system = text_data.explain_task(label_vocabulary).system.render()
        for s in samples:
            for modality, path in media_of(s, modalities).items():
                rows.append({
                    "prompt": [{"role": "system", "content": system},
                               {"role": "user", "content": STAGE1_PROMPTS[modality]}],
                    "completion": [{"role": "assistant", "content": cue_description(s, modality)}],
                    "media": {modality: path},
                })
        return rows
    if stage != 2:
        raise AffectError(f"projector stage must be 1 or 2, got {stage}")
    medias = [media_of(s, modalities) for s in samples]
    reqs = []
    for s, media in zip(samples, medias):
        req = text_data.request_for(s, closed_label_space)
        reqs.append(req.model_copy(update={"media": media, "cues": req.cues if use_cues else []}))
    for s, prep, answer in text_data.prepared_targets(samples, label_vocabulary=label_vocabulary,
                                                      label_model=label_model, explanation_from=explanation_from,
                                                      requests=reqs):
        rows.append({"prompt": prep.messages, "completion": [{"role": "assistant", "content": answer}],
                     "media": dict(prep.request.media)})
    return rows


def tokenize_rows(rows: list[dict[str, Any]], model: AffectLM, max_length: int | None = None) -> list[dict[str, Any]]:
    """Chat-template each row as TRL would, expand placeholders into slots, mask the prompt in the labels."""
    tok = model.tokenizer
    out = []
    for i, row in enumerate(rows):
        prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
        if not full.startswith(prompt):
            raise AffectError("the chat template renders the prompt differently inside the full conversation")
        p_ids, p_slots = model.tokenize(prompt)
        c_ids = tok(full[len(prompt):], add_special_tokens=False)["input_ids"]
        ids = p_ids + c_ids
        slots = p_slots + [0] * len(c_ids)
        labels = [-100] * len(p_ids) + c_ids
        if max_length and len(ids) > max_length:
            if len(p_ids) >= max_length:
                continue  # nothing of the answer would survive truncation
            ids, slots, labels = ids[:max_length], slots[:max_length], labels[:max_length]
        out.append({"input_ids": ids, "labels": labels, "affect_slots": slots, "media_key": i})
    if not out:
        raise AffectError("no multimodal rows survived tokenization (prompts longer than max_length?)")
    return out


class MultimodalCollator:
    """Right-pads token rows and gathers each row's frames per encoder into `affect_<encoder>` tensors."""

    def __init__(self, model: AffectLM, features: list[dict[str, np.ndarray]]) -> None:
        self.model = model
        self.features = features  # indexed by media_key
        self.pad = model.tokenizer.pad_token_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        n = len(rows)
        ids = torch.full((n, width), self.pad, dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        slots = torch.zeros((n, width), dtype=torch.long)
        attn = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            labels[i, :k] = torch.tensor(r["labels"])
            slots[i, :k] = torch.tensor(r["affect_slots"])
            attn[i, :k] = 1
        batch = {"input_ids": ids, "attention_mask": attn, "labels": labels, "affect_slots": slots}
        per_sample = []
        for r in rows:
            present = {name for name, code in self.model.codes.items() if code in r["affect_slots"]}
            feats = self.features[r["media_key"]]
            per_sample.append({name: feats[name] for name in present})
        for name, (frames, mask) in self.model.batch_features(per_sample).items():
            batch[f"affect_{name}"] = frames.cpu()
            batch[f"affect_{name}_mask"] = mask.cpu()
        return batch


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
    from affect_llm.train.model import build_affect_lm

    model, affect = build_affect_lm(cfg, model, tokenizer, label)
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
