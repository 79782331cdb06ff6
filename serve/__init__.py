"""The HTTP service: the affect API (FastAPI + uvicorn) in front of an LLM engine.

`affect-llm serve` starts it. The engine is either a vLLM OpenAI-compatible server run as a managed
child process on an internal loopback port (`--engine vllm`, the default) or the in-process
transformers backend with a small dynamic batcher (`--engine transformers`, for tests and machines
without vLLM). Public endpoints: `POST /v1/affect/explain`, `POST /v1/chat/completions`,
`GET /v1/models`, `GET /healthz`, `GET /metrics` and the web demo at `/demo/`.

Needs the `serve` extra (fastapi, uvicorn, python-multipart, prometheus-client); nothing here is imported
by `import affect_llm`.
"""

from __future__ import annotations

from affect_llm.extras import is_serve_available, is_vllm_available, require

__all__ = ["is_serve_available", "is_vllm_available", "require_serve"]


def require_serve() -> None:
    require("serve", "the HTTP service")
