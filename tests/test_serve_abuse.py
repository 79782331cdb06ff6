"""The HTTP half of issue 15's fuzz, kept as tests: hostile or careless requests on loopback get a JSON 4xx,
never a 500 or a reset connection; long work is bounded (413, timeouts that stop the decode loop, a
wedged engine reported by /healthz); SIGINT ends `serve` in seconds; and a soak of mixed valid and
garbage requests leaves the server healthy with bounded memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests._serve_util import need_serve, running_server


def _fake_engine(settings, *, answer_s: float = 0.0):
    from affect_llm.serve.engines import Engine

    from affect_llm.schema import EmotionReport

    class Fake(Engine):
        name = "fake"

        def start(self) -> None:
            pass

        async def explain(self, req, *, adapter, free_labels):
            self.busy_since = time.monotonic()
            try:
                await asyncio.sleep(answer_s)
            finally:
                self.busy_since = None
            return EmotionReport(labels=["joy"], explanation="x", cues=[], confidence=0.5, model="fake",
                                 template="explain@1", raw="{}")

    return Fake(settings)


GARBAGE: list[tuple[str, dict, int, str]] = [
    # (name, httpx request kwargs, expected status, expected error code)
    ("lone surrogate", {"content": b'{"text": "bad \\ud800 day"}'}, 400, "invalid_text"),
    ("surrogate in context", {"content": b'{"text": "hi", "context": [{"speaker": "A", "text": "\\udfff"}]}'},
     400, "invalid_text"),
    ("surrogate in a key", {"content": b'{"te\\ud800xt": "hi"}'}, 400, "invalid_text"),
    ("NUL", {"content": b'{"text": "a\\u0000b"}'}, 400, "invalid_text"),
    ("invalid UTF-8", {"content": b'{"text": "caf\xe9"}'}, 400, "malformed_json"),
    ("deep nesting", {"content": b"[" * 100_000 + b"]" * 100_000}, 400, "malformed_json"),
    ("not an object", {"json": ["hi"]}, 400, "invalid_body"),
    ("wrong type", {"json": {"text": 5}}, 400, "invalid_field"),
    ("unknown field", {"json": {"text": "hi", "tempreature": 2}}, 400, "invalid_field"),
    ("empty", {"json": {"text": "   "}}, 400, "empty_input"),
    ("empty body", {"content": b""}, 400, "invalid_body"),
    ("bad base64", {"json": {"text": "hi", "audio": "%%%"}}, 400, "bad_base64"),
    ("content type", {"content": b"text=hi", "headers": {"content-type": "text/plain"}}, 415,
     "unsupported_content_type"),
    ("too long", {"json": {"text": "word " * 20_000}}, 413, "input_too_long"),
    ("too long context", {"json": {"text": "hi", "context": [{"speaker": "A", "text": "x" * 40_000}] * 2}},
     413, "input_too_long"),
    ("body over the limit", {"content": b'{"text": "' + b"a" * (2 * 1024 * 1024) + b'"}'}, 413, "request_too_large"),
]


@pytest.fixture(scope="module")
def fake_server():
    need_serve()
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers", asr_backend="none", max_request_mb=1.0)
    with running_server(settings, _fake_engine(settings)) as (url, app):
        yield url, app


@pytest.mark.parametrize("name, kwargs, status, code", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_explain_gets_a_json_4xx(fake_server, name, kwargs, status, code):
    import httpx

    url, _app = fake_server
    kwargs = dict(kwargs)
    headers = kwargs.pop("headers", {"content-type": "application/json"} if "content" in kwargs else {})
    t0 = time.monotonic()
    r = httpx.post(url + "/v1/affect/explain", headers=headers, timeout=30, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert time.monotonic() - t0 < 10
    assert httpx.get(url + "/healthz").status_code == 200
    assert httpx.post(url + "/v1/affect/explain", json={"text": "fine"}).status_code == 200


def test_garbage_chat_gets_a_json_4xx(fake_server):
    import httpx

    url, _app = fake_server
    cases = [
        (b'{"messages": [{"role": "user", "content": "bad \\ud800"}]}', 400, "invalid_text"),
        (b'{"messages": []}', 400, "invalid_field"),
        (json.dumps({"messages": [{"role": "user", "content": "w " * 70_000}]}).encode(), 413, "input_too_long"),
        (json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "w " * 70_000}]}]}).encode(),
         413, "input_too_long"),
    ]
    for body, status, code in cases:
        r = httpx.post(url + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code


def test_multipart_strings_are_checked(fake_server):
    import httpx

    url, _app = fake_server
    r = httpx.post(url + "/v1/affect/explain", files={"text": (None, "hi"), "speaker": (None, "a\x00b")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_text"


def test_info_documents_the_limits(fake_server):
    import httpx

    from affect_llm.limits import MAX_INPUT_TOKENS

    url, _app = fake_server
    limits = httpx.get(url + "/v1/affect/info").json()["limits"]
    assert limits["max_input_tokens"] == MAX_INPUT_TOKENS


def test_wedged_engine_is_not_ok_and_recovers():
    need_serve()
    import httpx
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers", asr_backend="none", request_timeout_s=10, wedged_after_s=0.5)
    with running_server(settings, _fake_engine(settings, answer_s=2.0)) as (url, _app):
        done: dict = {}
        t = threading.Thread(target=lambda: done.update(r=httpx.post(url + "/v1/affect/explain",
                                                                      json={"text": "hi"}, timeout=30)))
        t.start()
        time.sleep(1.0)
        health = httpx.get(url + "/healthz", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "wedged", health.text
        t.join(timeout=30)
        assert done["r"].status_code == 200
        assert httpx.get(url + "/healthz").status_code == 200


# ---------------------------------------------------------------------------- the real engine (tiny model)
@pytest.fixture(scope="module")
def tiny_server(tiny_llama_dir):
    need_serve()
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers", model=str(tiny_llama_dir), dtype="float32", asr_backend="none",
                             label_model=None, request_timeout_s=5.0, max_new_tokens=64)
    with running_server(settings) as (url, app):
        yield url, app


def test_prompt_over_the_token_limit_is_413(tiny_server):
    import httpx

    url, _app = tiny_server
    text = "the quick brown fox jumps over the lazy dog " * 800  # ~32k characters, ~7k tokens
    r = httpx.post(url + "/v1/affect/explain", json={"text": text}, timeout=60)
    assert r.status_code == 413 and "prompt tokens" in r.json()["error"]["message"], r.text
    r = httpx.post(url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": text}]}, timeout=60)
    assert r.status_code == 413, r.text
    assert httpx.post(url + "/v1/affect/explain", json={"text": "fine"}, timeout=60).status_code == 200


def test_timeout_stops_the_generation(tiny_server):
    """A 504 must free the worker: the decode loop stops at its next token, not after 4000 of them."""
    import httpx

    url, app = tiny_server
    engine = app.state.engine
    body = {"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 4000,
            "temperature": 1.0}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 504, r.text[:200]
    deadline = time.monotonic() + 5
    while engine.busy_since is not None:
        assert time.monotonic() < deadline, "generation kept running after the timeout"
        time.sleep(0.05)
    t0 = time.monotonic()
    assert httpx.post(url + "/v1/affect/explain", json={"text": "fine"}, timeout=60).status_code == 200
    assert time.monotonic() - t0 < 30


def test_sigint_stops_serve_within_seconds(tiny_llama_dir, tmp_path):
    need_serve()
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "affect_llm.cli.app", "serve", "--engine", "transformers", "--model",
         str(tiny_llama_dir), "--dtype", "float32", "--port", "0", "--asr", "none", "--no-label-model",
         "--timeout", "120", "--log-level", "warning"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "listening on" in line:
                url = line.split("listening on ")[1].split()[0]
        assert url, "serve did not start"
        while httpx.get(url + "/healthz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        body = {"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 4000,
                "temperature": 1.0}
        threading.Thread(target=lambda: _quiet_post(url + "/v1/chat/completions", body), daemon=True).start()
        time.sleep(1.5)  # the generation is running
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        took = time.monotonic() - t0
        assert took < 8, f"shutdown took {took:.1f} s"
        assert rc in (0, 130, -signal.SIGINT), rc
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _quiet_post(url: str, body: dict) -> None:
    import httpx

    try:
        httpx.post(url, json=body, timeout=60)
    except httpx.HTTPError:
        pass


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_soak_mixed_valid_and_garbage_requests(tiny_llama_dir):
    """200 requests at concurrency 4, half of them garbage: every valid one answers 200, every garbage one
    a JSON 4xx; memory stays bounded and /healthz is ok afterwards."""
    need_serve()
    import httpx
    from affect_llm.serve.config import ServeSettings

    if not os.path.exists("/proc/self/status"):
        pytest.skip("RSS is read from /proc")
    settings = ServeSettings(engine="transformers", model=str(tiny_llama_dir), dtype="float32", asr_backend="none",
                             label_model=None, request_timeout_s=120, max_request_mb=1.0)
    valid = [
        ("/v1/affect/explain", {"json": {"text": "I can't believe you forgot my birthday again."}}),
        ("/v1/affect/explain", {"json": {"text": "Fine.", "speaker": "Mo",
                                         "context": [{"speaker": "Jo", "text": "You're late."}]}}),
        ("/v1/affect/explain", {"json": {"text": "We won!", "label_space": "anger,joy,neutral"}}),
        ("/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}}),
    ]
    garbage = [("/v1/affect/explain", {k: v for k, v in g[1].items()}) for g in GARBAGE]
    plan = [(True, *valid[i % len(valid)]) if i % 2 == 0 else (False, *garbage[i % len(garbage)])
            for i in range(200)]
    with running_server(settings) as (url, _app), httpx.Client(base_url=url, timeout=120) as client:
        client.post("/v1/affect/explain", json={"text": "warm up"})
        rss0 = _rss_mb()

        def send(item):
            ok, path, kwargs = item
            kwargs = dict(kwargs)
            if "content" in kwargs:
                kwargs.setdefault("headers", {"content-type": "application/json"})
            r = client.post(path, **kwargs)
            return ok, path, r.status_code, r.headers.get("content-type", "")

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(send, plan))
        for ok, path, status, ctype in results:
            if ok:
                assert status == 200, (path, status)
            else:
                assert 400 <= status < 500 and ctype.startswith("application/json"), (path, status)
        grown = _rss_mb() - rss0
        assert grown < 400, f"RSS grew by {grown:.0f} MB over 200 requests"
        assert client.get("/healthz").status_code == 200
