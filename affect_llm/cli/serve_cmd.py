"""`affect-llm serve` (the affect API + OpenAI-compatible endpoints) and `affect-llm demo` (same, demo page)."""

from __future__ import annotations

import typer

from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError


def _settings(**kw):
    from affect_llm.serve import require_serve
    from affect_llm.serve.config import ServeSettings, parse_adapters

    require_serve()
    kw["adapters"] = parse_adapters(kw.pop("adapter") or [])
    kw["vllm_args"] = list(kw.pop("vllm_arg") or [])
    return ServeSettings(**kw)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="interface of the public API"),
    port: int = typer.Option(8000, "--port", "-p", help="port of the public API (0: any free port)"),
    model: str | None = typer.Option(None, "--model", "-m", help="asset name, checkpoint folder or HF id"),
    adapter: list[str] | None = typer.Option(None, "--adapter", help="LoRA adapter NAME=DIR (repeatable)"),  # noqa: B008
    engine: str = typer.Option("vllm", "--engine", "-e", help="vllm | transformers"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="AFFECT_LLM_API_KEY",
                                          help="require 'Authorization: Bearer KEY' on /v1/*"),
    max_request_mb: float = typer.Option(25.0, help="largest request body (MiB)"),
    max_audio_seconds: float = typer.Option(60.0, help="longest audio/video accepted (s)"),
    request_timeout: float = typer.Option(120.0, "--timeout", help="seconds a request may take"),
    engine_start_timeout: float = typer.Option(900.0, help="seconds the engine may take to start"),
    max_batch: int = typer.Option(8, help="transformers engine: explain requests decoded together"),
    max_new_tokens: int = typer.Option(DECODING["max_new_tokens"], help="token budget of one explain answer"),
    demo_index: str | None = typer.Option(None, "--demo-index", help="demonstration index folder"),
    label_model: str | None = typer.Option(None, "--label-model", help="label model folder (default: the bundled one "
                                           "for the embedded model)"),
    no_label_model: bool = typer.Option(False, "--no-label-model", help="answer without a label-model prior"),
    no_default_adapter: bool = typer.Option(False, "--no-default-adapter", help="serve the bare model, without the "
                                            "bundled tuned adapter the CLI uses for the embedded model"),
    asr: str = typer.Option("faster-whisper", "--asr", help="faster-whisper | openai-whisper | none"),
    dtype: str | None = typer.Option(None, help="weights dtype (default: bfloat16 on a GPU, float32 on a CPU "
                                     "without native bf16)"),
    max_model_len: int = typer.Option(2048, help="vLLM: context length"),
    kv_cache_gib: float = typer.Option(1.0, help="vLLM on CPU: KV-cache size (GiB)"),
    engine_log: str | None = typer.Option(None, help="vLLM: write the engine's log here (default: a temp file)"),
    vllm_arg: list[str] | None = typer.Option(None, "--vllm-arg", help="extra argument for vLLM (repeatable)"),  # noqa: B008
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Serve the affect API, OpenAI-compatible chat completions, /healthz, /metrics and the web demo."""
    from affect_llm.serve.app import run

    if label_model is not None and no_label_model:
        raise AffectError("give either --label-model or --no-label-model, not both")
    settings = _settings(
        label_model=None if no_label_model else (label_model or "default"),
        base_adapter=None if no_default_adapter else "default",
        host=host, port=port, model=model, adapter=adapter, engine=engine, api_key=api_key,
        max_request_mb=max_request_mb, max_audio_seconds=max_audio_seconds, request_timeout_s=request_timeout,
        engine_start_timeout_s=engine_start_timeout, max_batch=max_batch, max_new_tokens=max_new_tokens,
        demo_index=demo_index, asr_backend=asr, dtype=dtype, max_model_len=max_model_len,
        kv_cache_gib=kv_cache_gib, engine_log=engine_log, vllm_arg=vllm_arg, log_level=log_level,
    )
    if settings.engine == "vllm":
        from affect_llm.serve import is_vllm_available
        from affect_llm.serve.vllm_engine import VLLM_HINT

        if not is_vllm_available():
            raise AffectError(VLLM_HINT)

    def listening(url: str) -> None:
        typer.echo(f"affect-llm serve: listening on {url} (engine {settings.engine}; demo {url}/demo/; "
                   f"health {url}/healthz)", err=True)

    run(settings, on_listening=listening)


def demo(
    port: int = typer.Option(8000, "--port", "-p"),
    model: str | None = typer.Option(None, "--model", "-m"),
    engine: str = typer.Option("vllm", "--engine", "-e", help="vllm | transformers"),
    asr: str = typer.Option("faster-whisper", "--asr", help="faster-whisper | openai-whisper | none"),
) -> None:
    """The web demo on 127.0.0.1: enter text or upload audio/image/video; see labels, cues and the wheel."""
    from affect_llm.serve.app import run

    settings = _settings(host="127.0.0.1", port=port, model=model, adapter=None, engine=engine,
                         asr_backend=asr, vllm_arg=None)
    run(settings, on_listening=lambda url: typer.echo(f"affect-llm demo: open {url}/demo/", err=True))
