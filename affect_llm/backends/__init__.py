"""LLM backends, registered by name in one lazy table (as lm-evaluation-harness's `MODEL_MAPPING`).

The table maps a name to `"module:Class"`; the module (and its heavy dependency: torch, transformers,
vllm, httpx) is imported only when that backend is built, so listing or validating names costs nothing.
A third-party backend is one more entry: `BACKENDS["mine"] = "my_pkg.backend:MyBackend"`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from affect_llm.errors import lookup

if TYPE_CHECKING:  # pragma: no cover
    from affect_llm.backends.base import Backend

__all__ = ["BACKENDS", "backend_class", "backend_names", "make_backend"]

BACKENDS: dict[str, str] = {
    "openai": "affect_llm.backends.openai_backend:OpenAIBackend",
    "transformers": "affect_llm.backends.transformers_backend:TransformersBackend",
    "vllm": "affect_llm.backends.vllm_backend:VLLMBackend",
}


def backend_names() -> list[str]:
    return sorted(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The backend class for `name` (UnknownNameError listing the choices otherwise), imported on demand."""
    module, _, attr = lookup(BACKENDS, "backend", name).partition(":")
    return getattr(importlib.import_module(module), attr)


def make_backend(name: str, **kwargs: Any) -> Backend:
    return backend_class(name)(**kwargs)
