"""affect-llm: explainable emotion reasoning with LLMs.

Importing the package is cheap: torch, transformers and friends load only when a model is used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

# bitsandbytes (the qlora extra; PEFT imports it whenever it is installed) warns on every import that it
# cannot fetch an optional CPU kernel from the Hugging Face hub. Its own fallback works; the line is noise.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__version__ = "0.1.0"

__all__ = ["Explainer", "EmotionReport", "Cue", "AffectError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from affect_llm.errors import AffectError
    from affect_llm.pipeline import Explainer
    from affect_llm.schema import Cue, EmotionReport

_LAZY = {
    "Explainer": "affect_llm.pipeline",
    "EmotionReport": "affect_llm.schema",
    "Cue": "affect_llm.schema",
    "AffectError": "affect_llm.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'affect_llm' has no attribute {name!r}")
