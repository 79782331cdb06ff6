"""Multimodal SFT rows and the collator that feeds `AffectLM` slots through TRL's SFTTrainer.

Stage 1 (projector only) needs no captions: the target is what the textualizers say about the same clip
(`speaks higher than usual; tense, effortful voice`), so the projector learns to put into soft tokens what
the prosody/face analysers can put into words. Stage 2 is the explain task itself, rendered by the same
templates as inference with `<audio>` / `<face>` placeholders where the soft tokens go.

Rows are tokenized here (TRL's own preparation is skipped): `input_ids`, `labels` (-100 on the prompt and
the slots: completion-only loss, as in the text recipe), `affect_slots`, and `media_key` pointing at the
sample's precomputed frames, which the collator pads per encoder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from affect_llm.errors import AffectError
from affect_llm.projector.affect_lm import AffectLM

__all__ = ["STAGE1_PROMPTS", "MultimodalCollator", "cue_description", "media_of", "stage_rows", "tokenize_rows"]

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
    from affect_llm.train import data as text_data

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
