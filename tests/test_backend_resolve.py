"""`--backend auto`: llama.cpp for the embedded GGUF model on a CPU host when installed, transformers otherwise."""

from __future__ import annotations

import pytest

from affect_llm.backends import resolve_backend
from affect_llm.extras import is_available


@pytest.fixture(autouse=True)
def cpu_host(monkeypatch):
    monkeypatch.setenv("AFFECT_LLM_DEVICE", "cpu")


def test_explicit_names_pass_through():
    for name in ("transformers", "llamacpp", "vllm", "openai"):
        assert resolve_backend(name) == name


def test_auto_for_the_embedded_model():
    want = "llamacpp" if is_available("llama_cpp") else "transformers"
    assert resolve_backend("auto") == want
    assert resolve_backend(None, "default") == want
    assert resolve_backend("auto", "smollm2-135m-instruct") == want


def test_auto_falls_back_to_transformers(tmp_path, monkeypatch):
    assert resolve_backend("auto", str(tmp_path)) == "transformers"  # a folder: no GGUF template
    assert resolve_backend("auto", "HuggingFaceTB/SmolLM2-360M-Instruct") == "transformers"
    assert resolve_backend("auto", projector="runs/proj") == "transformers"  # soft tokens need torch
    monkeypatch.setenv("AFFECT_LLM_DEVICE", "cuda")
    assert resolve_backend("auto") == "transformers"


def test_llamacpp_threads_skip_busy_cpus(monkeypatch):
    import os

    from affect_llm.backends.llamacpp_backend import engine_threads

    monkeypatch.delenv("AFFECT_LLM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(4)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert engine_threads() == 4  # idle: every CPU
    monkeypatch.setattr(os, "getloadavg", lambda: (2.7, 0.0, 0.0))
    assert engine_threads() == 1  # three CPUs busy elsewhere
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert engine_threads() == 1  # never fewer than one
    monkeypatch.setenv("AFFECT_LLM_THREADS", "3")
    assert engine_threads() == 3  # the user's choice wins
