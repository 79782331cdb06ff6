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

__all__ = ["AUTO", "BACKENDS", "backend_class", "backend_names", "make_backend", "resolve_backend"]

AUTO = "auto"

BACKENDS: dict[str, str] = {
    "llamacpp": "affect_llm.backends.llamacpp_backend:LlamaCppBackend",
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


def resolve_backend(name: str | None, model: str | None = None, *, projector: str | None = None) -> str:
    """`auto` (or None) -> the fastest in-process engine for `model` on this host.

    llama.cpp when it is installed, the model is an asset shipped as GGUF (the embedded default), and
    neither a GPU nor a projector asks for torch; transformers otherwise. Other names pass through."""
    import os

    from affect_llm.extras import is_available

    if name not in (None, "", AUTO):
        return name
    from affect_llm.assets import DEFAULT_LLM, REGISTRY

    spec = REGISTRY.get(DEFAULT_LLM if model in (None, "", "default") else model)
    if projector or spec is None or not spec.convert_options.get("gguf_file") or not is_available("llama_cpp"):
        return "transformers"
    device = os.environ.get("AFFECT_LLM_DEVICE", "")
    if device.startswith("cuda"):
        return "transformers"
    if not device and _nvidia_gpu():
        import torch  # only on a GPU host: this import costs ~2 s that the llama.cpp path never pays

        if torch.cuda.is_available():
            return "transformers"
    return "llamacpp"


def _nvidia_gpu() -> bool:
    """Whether the NVIDIA driver shows a GPU (without importing torch)."""
    import glob

    return bool(glob.glob("/proc/driver/nvidia/gpus/*") or glob.glob("/dev/nvidia[0-9]*"))


def make_backend(name: str, **kwargs: Any) -> Backend:
    return backend_class(name)(**kwargs)
