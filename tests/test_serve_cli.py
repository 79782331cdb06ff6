"""`affect-llm serve` as a real process: start on a random port, answer, stop gracefully on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests._serve_util import need_serve


def _start(*args: str) -> tuple[subprocess.Popen, list[str]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "affect_llm.cli.app", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []

    def pump() -> None:
        lines.extend(proc.stdout)  # type: ignore[arg-type]  # one line at a time, as they come

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _wait_for(lines: list[str], pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            m = re.search(pattern, line)
            if m:
                return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in output:\n{''.join(lines)}")


def _terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM; uvicorn finishes its graceful shutdown, then re-raises the signal it caught (exit status -15)."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=timeout) in (0, -signal.SIGTERM)


def _kill(proc: subprocess.Popen) -> None:
    """Leave no server behind, whatever failed."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_serve_starts_answers_and_shuts_down_gracefully(tiny_llama_dir):
    need_serve()
    import httpx

    proc, lines = _start("--engine", "transformers", "--model", str(tiny_llama_dir), "--port", "0", "--dtype",
                         "float32", "--asr", "none", "--api-key", "k")
    try:
        url = _wait_for(lines, r"listening on (http://127\.0\.0\.1:\d+)", proc, 60).group(1)
        deadline = time.monotonic() + 60
        while httpx.get(url + "/healthz").status_code != 200:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        models = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer k"})
        assert models.status_code == 200 and models.json()["data"][0]["id"] == str(tiny_llama_dir)
        _terminate(proc, 30)
    finally:
        _kill(proc)
    out = "".join(lines)
    assert "engine stopped" in out and "Application shutdown complete" in out


def test_serve_reports_an_engine_that_cannot_start(tmp_path):
    need_serve()
    proc, lines = _start("--engine", "transformers", "--model", str(tmp_path / "missing-model"), "--port", "0")
    try:
        assert proc.wait(timeout=90) == 2
    finally:
        _kill(proc)
    out = "".join(lines)
    assert "error: engine failed to start" in out and "missing-model" in out and "Traceback" not in out


@pytest.mark.parametrize("args, message", [
    (["--engine", "tgi"], "engine 'tgi' is unknown; choose one of: vllm, transformers"),
    (["--adapter", "calm=/nonexistent"], "has no adapter_config.json"),
])
def test_serve_rejects_bad_options_before_starting(args, message):
    need_serve()
    proc = subprocess.run([sys.executable, "-m", "affect_llm.cli.app", "serve", *args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
