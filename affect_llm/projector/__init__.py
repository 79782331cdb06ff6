"""Projector encoders: audio and face frames as soft tokens for any causal LM (AffectGPT / Emotion-LLaMA route).

- `encoders`: frozen frame encoders (Whisper tiny.en encoder, prosody descriptors, face blendshapes + pose);
- `projectors`: `linear`, `mlp`, `qformer` maps from frames to a fixed number of LM-sized tokens;
- `affect_lm`: `AffectLM`, the composition that splices projected tokens at `<audio>` / `<face>`;
- `vllm_embeds`: projected prompts as vLLM `prompt_embeds`.

Model code only: the training side (rows, collator, the SFT hook) lives in `affect_llm.train.multimodal` and
`affect_llm.train.model`, so `train` imports `projector` and never the reverse.

Heavy modules import lazily; `from affect_llm.projector import AffectLM` is cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PLACEHOLDERS", "AffectLM"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from affect_llm.projector import affect_lm

        return getattr(affect_lm, name)
    raise AttributeError(name)
