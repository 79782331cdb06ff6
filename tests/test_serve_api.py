"""The affect API on a random loopback port, transformers engine on a tiny random Llama built in the test."""

from __future__ import annotations

import base64
import json

import pytest

from tests._serve_util import (
    in_threads,
    need_serve,
    png_bytes,
    running_server,
    sse_events,
    tiny_adapter,
    wav_bytes,
)

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TINY_SCHEMA = {"type": "object", "properties": {"mood": {"type": "string", "enum": ["calm", "tense"]}},
               "required": ["mood"], "additionalProperties": False}


@pytest.fixture(scope="module")
def server(tiny_llama_dir):
    need_serve()
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers", model=str(tiny_llama_dir), dtype="float32", api_key=KEY,
                             max_request_mb=1.0, max_audio_seconds=2.0, asr_backend="none", max_new_tokens=400,
                             max_batch=4, batch_wait_ms=300)
    with running_server(settings) as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    import httpx

    with httpx.Client(base_url=server[0], headers=AUTH, timeout=120) as c:
        yield c


def _err(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["message"]
    if code:
        assert err["code"] == code, err
    return err


def test_health_models_and_auth(server, client):
    import httpx

    url = server[0]
    health = httpx.get(url + "/healthz")  # open: no key
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["engine"] == "transformers"
    missing = httpx.get(url + "/v1/models")
    _err(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    _err(httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    _err(httpx.post(url + "/v1/affect/explain", json={"text": "hi"}), 401, "unauthorized")
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == server[1].state.engine.model_id
    info = client.get("/v1/affect/info").json()
    assert set(info["media"]) == {"audio", "image", "video"} and info["limits"]["max_request_mb"] == 1.0
    page = httpx.get(url + "/demo/")
    assert page.status_code == 200 and "affect-llm" in page.text
    assert httpx.get(url + "/", follow_redirects=False).headers["location"] == "/demo/"


def test_bad_requests_get_json_errors_and_server_stays_up(client):
    post = client.post
    ex = "/v1/affect/explain"
    hdr = {"content-type": "application/json"}
    assert "line 1 column 15" in _err(post(ex, content=b'{"text": "hi",', headers=hdr), 400, "malformed_json")["message"]
    _err(post(ex, content=b"", headers=hdr), 400, "invalid_body")
    _err(post(ex, content=b"[1, 2]", headers=hdr), 400, "invalid_body")
    _err(post(ex, content=b"\xff\xfe", headers=hdr), 400, "malformed_json")
    assert _err(post(ex, json={"txt": "hi"}), 400, "invalid_field")["param"] == "txt"
    assert _err(post(ex, json={"text": "hi", "demos": 99}), 400, "invalid_field")["param"] == "demos"
    assert _err(post(ex, json={"text": "hi", "audio": "@@not base64@@"}), 400, "bad_base64")["param"] == "audio"
    not_image = base64.b64encode(b"hello, I am not an image").decode()
    assert "PNG" in _err(post(ex, json={"text": "hi", "image": not_image}), 415, "unsupported_media")["message"]
    _err(post(ex, json={"text": "hi", "video": base64.b64encode(png_bytes()).decode()}), 415, "unsupported_media")
    _err(post(ex, content=b"text=hi", headers={"content-type": "text/plain"}), 415, "unsupported_content_type")
    big = {"text": "x" * (1024 * 1024 + 10)}
    assert "1 MiB" in _err(post(ex, json=big), 413, "request_too_large")["message"]
    _err(post(ex, json={"text": "   "}), 400, "empty_input")
    _err(post(ex, json={"text": "hi", "adapter": "nope"}), 404, "model_not_found")
    _err(post(ex, json={"text": "hi", "demos": 2}), 400, "demos_unavailable")
    _err(post(ex, json={"text": "hi", "label_space": ","}), 400, "invalid_field")
    _err(post(ex, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}), 400)
    ch = "/v1/chat/completions"
    _err(post(ch, content=b"{", headers=hdr), 400, "malformed_json")
    _err(post(ch, json={"messages": []}), 400, "invalid_field")
    _err(post(ch, json={"messages": [{"role": "user", "content": "hi"}], "n": 2}), 400, "invalid_field")
    _err(post(ch, json={"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}), 404, "model_not_found")
    remote = [{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]
    _err(post(ch, json={"messages": [{"role": "user", "content": remote}]}), 400, "unsupported_url")
    odd = [{"type": "file", "file": {}}]
    _err(post(ch, json={"messages": [{"role": "user", "content": odd}]}), 400, "unsupported_content")
    bad_audio = [{"type": "input_audio", "input_audio": {"data": "!!", "format": "wav"}}]
    _err(post(ch, json={"messages": [{"role": "user", "content": bad_audio}]}), 400, "bad_base64")
    _err(client.get("/v1/nothing-here"), 404, "not_found")
    assert client.get("/healthz").status_code == 200


def test_audio_limits(client):
    from affect_llm.textualize import missing_extras

    if missing_extras("speech"):
        pytest.skip("speech extra missing")
    long_clip = base64.b64encode(wav_bytes(seconds=3.0)).decode()
    err = _err(client.post("/v1/affect/explain", json={"text": "hi", "audio": long_clip}), 413, "media_too_long")
    assert "audio" in err["message"] and "2 s" in err["message"] and "/tmp" not in err["message"]


def test_concurrent_explains_are_batched_and_complete(server, client):
    bodies = [
        {"text": "I can't believe you forgot my birthday again."},
        {"text": "We won the final!", "speaker": "Ana", "context": [{"speaker": "Bo", "text": "Did you see?"}]},
        {"text": "Fine.", "free_labels": True},
    ]
    results = in_threads(lambda i: client.post("/v1/affect/explain", json=bodies[i]), len(bodies))
    for r in results:
        assert r.status_code == 200, r.text
        out = r.json()
        assert {"labels", "explanation", "cues", "confidence", "model", "template", "timings", "raw",
                "inputs", "timeline", "wheel"} <= set(out)
        assert 1 <= len(out["labels"]) <= 3 and out["template"].startswith("explain@")
        assert out["confidence"] is None or 0.0 <= out["confidence"] <= 1.0
        assert len(out["wheel"]["sectors"]) == 7 and len(out["wheel"]["labels"]) == len(out["labels"])
    # The two vocabulary-constrained requests share one schema: decoded together in one batch.
    t0, t1 = (results[i].json()["timings"] for i in (0, 1))
    assert t0["batch_s"] == t1["batch_s"] and t0["batch_s"] > t0["generate_s"]
    metrics = client.get("/metrics").text
    assert 'affect_http_requests_total{route="/v1/affect/explain",status="200"}' in metrics
    assert "affect_engine_ready 1.0" in metrics and "affect_completion_tokens_total" in metrics


def test_explain_multipart_with_audio_upload(client):
    from affect_llm.textualize import missing_extras

    if missing_extras("speech"):
        pytest.skip("speech extra missing")
    files = {"audio": ("clip.wav", wav_bytes(seconds=1.5), "audio/wav")}
    data = {"label_space": "anger,joy,neutral,sadness", "speaker": "Kim",
            "context": json.dumps([{"speaker": "Lee", "text": "How was it?"}])}
    r = client.post("/v1/affect/explain", files=files, data=data)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["labels"][0] in {"anger", "joy", "neutral", "sadness"} and len(out["labels"]) == 1
    assert out["inputs"][0]["kind"] == "audio" and out["inputs"][0]["source"] == "audio"
    assert "prosody" in out["inputs"][0] and out["timings"]["textualize_s"] > 0
    assert all(c["source"] == "audio" for c in out["timeline"])


def test_chat_completions_stream_equals_non_stream(client):
    msg = [{"role": "user", "content": "How do you feel today?"}]
    plain = client.post("/v1/chat/completions", json={"messages": msg, "max_tokens": 8, "temperature": 0,
                                                      "logprobs": True})
    assert plain.status_code == 200, plain.text
    body = plain.json()
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and choice["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] == len(choice["logprobs"]["content"]) <= 8
    assert "".join(t["token"] for t in choice["logprobs"]["content"]) == choice["message"]["content"]
    with client.stream("POST", "/v1/chat/completions",
                       json={"messages": msg, "max_tokens": 8, "temperature": 0, "stream": True,
                             "stream_options": {"include_usage": True}}) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        events = sse_events(resp.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == choice["message"]["content"]
    assert [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert chunks[-1]["usage"]["completion_tokens"] == body["usage"]["completion_tokens"]
    structured = client.post("/v1/chat/completions", json={
        "messages": msg, "max_tokens": 40, "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "m", "schema": TINY_SCHEMA}}})
    assert json.loads(structured.json()["choices"][0]["message"]["content"])["mood"] in {"calm", "tense"}


def test_chat_image_part_is_textualized(client):
    from affect_llm.textualize import missing_extras

    if missing_extras("face"):
        pytest.skip("face extra missing")
    url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    text_only = [{"role": "user", "content": [{"type": "text", "text": "How do they feel?"}]}]
    with_image = [{"role": "user", "content": [{"type": "text", "text": "How do they feel?"},
                                               {"type": "image_url", "image_url": {"url": url}}]}]
    a = client.post("/v1/chat/completions", json={"messages": text_only, "max_tokens": 2})
    b = client.post("/v1/chat/completions", json={"messages": with_image, "max_tokens": 2})
    assert a.status_code == 200 and b.status_code == 200, b.text
    # The image became a bracketed description of its (absent) face cues in the prompt.
    assert b.json()["usage"]["prompt_tokens"] > a.json()["usage"]["prompt_tokens"] + 5


def test_adapters_are_listed_and_selectable(tiny_llama_dir, tmp_path):
    need_serve()
    pytest.importorskip("peft")
    import httpx
    from affect_llm.serve.config import ServeSettings

    adapter = tiny_adapter(tiny_llama_dir, tmp_path / "calm")
    settings = ServeSettings(engine="transformers", model=str(tiny_llama_dir), dtype="float32",
                             adapters={"calm": str(adapter)}, asr_backend="none")
    with running_server(settings) as (url, app):
        ids = [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
        assert ids == [app.state.engine.model_id, "calm"]
        msg = [{"role": "user", "content": "Hello there"}]

        def ask(model: str | None) -> str:
            body = {"messages": msg, "max_tokens": 6, "temperature": 0}
            if model:
                body["model"] = model
            r = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
            assert r.status_code == 200, r.text
            return r.json()["choices"][0]["message"]["content"]

        base, tuned, base_again = ask(None), ask("calm"), ask(app.state.engine.model_id)
        assert tuned != base and base == base_again  # the adapter changes the output and is switched off again


def test_explain_with_retrieved_demonstrations(tiny_llama_dir, tmp_path):
    need_serve()
    from affect_llm.extras import is_retrieval_available

    if not is_retrieval_available():
        pytest.skip("retrieval extra missing")
    from affect_llm import assets

    if not assets.is_cached("minilm"):
        pytest.skip("MiniLM asset not pulled (affect-llm assets pull)")
    import httpx

    from affect_llm.data_builders.schema import Sample
    from affect_llm.retrieval import DemoIndex
    from affect_llm.serve.config import ServeSettings

    pool = [Sample(id=f"p{i}", dataset="t", split="train", text=t, labels=[lab], description=f"{lab} shows")
            for i, (t, lab) in enumerate([("I'm so angry I could scream!", "anger"), ("This makes me furious.", "anger"),
                                          ("What a lovely day, I am delighted.", "joy")])]
    DemoIndex.build(pool, tmp_path / "idx")
    settings = ServeSettings(engine="transformers", model=str(tiny_llama_dir), dtype="float32", asr_backend="none",
                             max_new_tokens=400, demo_index=str(tmp_path / "idx"))
    with running_server(settings) as (url, _app):
        assert httpx.get(url + "/v1/affect/info").json()["demos"] is True
        r = httpx.post(url + "/v1/affect/explain", json={"text": "He made me so angry.", "demos": 2}, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["labels"]


def test_served_answers_take_the_label_prior_like_the_cli(tiny_llama_dir):
    """The transformers engine steers the label with the label model's prior, as `Explainer` does: on a
    random tiny model the prior decides, so both answers pick one of the label model's top labels."""
    need_serve()
    from affect_llm import assets

    if not assets.is_cached("minilm"):
        pytest.skip("MiniLM asset not pulled (affect-llm assets pull)")
    import httpx

    from affect_llm.label_model import bundled_label_model_dir
    from affect_llm.pipeline import Explainer
    from affect_llm.serve.config import ServeSettings

    lm = str(bundled_label_model_dir())
    texts = ["We won the final!", "My dog died this morning.", "Get out of my room right now!"]
    settings = ServeSettings(engine="transformers", model=str(tiny_llama_dir), dtype="float32", asr_backend="none",
                             max_new_tokens=120, label_model=lm)
    with running_server(settings) as (url, _app):
        served = [httpx.post(url + "/v1/affect/explain", json={"text": t}, timeout=120).json() for t in texts]
    local = Explainer(model=str(tiny_llama_dir), dtype="float32", label_model=lm, max_new_tokens=120)
    for text, api in zip(texts, served):
        cli = local.explain(text)
        assert api["labels"] == cli.labels and api["labels"][0] in api["label_prior"], (text, api, cli.labels)
