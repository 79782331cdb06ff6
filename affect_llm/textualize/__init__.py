"""Modality textualizers: speech (ASR + prosody), face (blendshapes + head pose) and lexical text cues.

Each turns a signal into `affect_llm.schema.Cue` phrases with evidence and time spans that an LLM can
cite. Entry point: `textualize_inputs(audio=[...], video=[...], image=[...], text=...)`. Heavy
dependencies (faster-whisper, librosa, mediapipe) load only when a modality is used; the extras are
`speech`, `whisper` (openai-whisper backend), `praat` (GPL voice quality) and `face`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from affect_llm import extras

if TYPE_CHECKING:  # pragma: no cover
    from affect_llm.textualize.core import TextualizedInput, textualize_inputs

__all__ = ["EXTRAS", "TextualizedInput", "missing_extras", "textualize_inputs"]

# textualizer -> (modules it needs, install hint), read from the one table in `affect_llm.extras`.
_EXTRA_OF = {"text": None, "speech": "speech", "openai-whisper": "whisper", "praat": "praat", "face": "face"}
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    name: (extras.EXTRAS[x], extras.install_hint(x)) if x else ((), "") for name, x in _EXTRA_OF.items()
}


def missing_extras(name: str) -> list[str]:
    """Modules of textualizer `name` that cannot be imported (empty when it is usable)."""
    from affect_llm.errors import lookup

    modules, _ = lookup(EXTRAS, "textualizer", name)
    return [m for m in modules if not extras.is_available(m)]


def __getattr__(name: str) -> Any:
    if name in ("TextualizedInput", "textualize_inputs"):
        from affect_llm.textualize import core

        return getattr(core, name)
    raise AttributeError(f"module 'affect_llm.textualize' has no attribute {name!r}")
