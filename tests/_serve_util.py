"""Helpers for the serving tests: an API server on a random loopback port, small media files."""

from __future__ import annotations

import importlib.util
import io
import math
import struct
import threading
import time
import wave
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def need_serve() -> None:
    missing = [m for m in ("fastapi", "uvicorn", "multipart", "prometheus_client", "httpx")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"serve extra missing: {', '.join(missing)} (pip install 'affect-llm[serve]')")


@contextmanager
def running_server(settings: Any, engine: Any = None, *, wait_ready: bool = True,
                   timeout: float = 120.0) -> Iterator[tuple[str, Any]]:
    """Run the affect API in a thread on 127.0.0.1:<free port>; yields (base URL, app)."""
    import uvicorn
    from affect_llm.serve.app import create_app, listening_url

    app = create_app(settings, engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    url = listening_url(server, "127.0.0.1")
    eng = app.state.engine
    while wait_ready and not eng.ready:
        if eng.state == "failed":
            raise RuntimeError(f"engine failed: {eng.error}")
        if time.monotonic() > deadline:
            raise RuntimeError("engine did not become ready")
        time.sleep(0.05)
    try:
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def in_threads(fn: Callable[[int], Any], n: int) -> list[Any]:
    """fn(0) … fn(n - 1) at the same time, one thread each (concurrent clients); the results in order."""
    results: list[Any] = [None] * n

    def go(i: int) -> None:
        results[i] = fn(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def wav_bytes(seconds: float = 1.0, sr: int = 16_000, f0: float = 180.0) -> bytes:
    """A voiced-like tone (harmonics, slow vibrato) as 16-bit mono WAV, stdlib only."""
    n = int(seconds * sr)
    frames = bytearray()
    phase = 0.0
    for i in range(n):
        f = f0 * (1 + 0.05 * math.sin(2 * math.pi * 3 * i / sr))
        phase += 2 * math.pi * f / sr
        y = sum((0.6 ** k) * math.sin((k + 1) * phase) for k in range(4)) * 0.25
        frames += struct.pack("<h", int(max(-1.0, min(1.0, y)) * 32767))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(bytes(frames))
    return buf.getvalue()


def png_bytes(width: int = 32, height: int = 32, rgb: tuple[int, int, int] = (200, 180, 160)) -> bytes:
    """A plain RGB PNG, stdlib only (no face in it: a cue-less image)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def tiny_adapter(base_dir: Path, out: Path, seed: int = 1) -> Path:
    """A rank-4 LoRA adapter with random (non-zero) weights on the tiny test Llama."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(str(out))
    return out


def sse_events(text: str) -> list[str]:
    """The `data:` payloads of a server-sent event stream, in order."""
    return [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
