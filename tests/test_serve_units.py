"""Serving pieces without a model: engine states (starting, failed, slow), settings, media sniffing, vLLM glue."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import pytest

from affect_llm.errors import AffectError
from tests._serve_util import need_serve, png_bytes, running_server, wav_bytes


def _fake_engine(settings, *, start_s: float = 0.0, fail: str | None = None, answer_s: float = 0.0):
    from affect_llm.serve.engines import Engine

    from affect_llm.schema import EmotionReport

    class Fake(Engine):
        name = "fake"

        def start(self) -> None:
            time.sleep(start_s)
            if fail:
                raise AffectError(fail)

        async def explain(self, req, *, adapter, free_labels):
            await asyncio.sleep(answer_s)
            return EmotionReport(labels=["joy"], explanation="x", cues=[], confidence=0.5, model="fake",
                                 template="explain@1", raw="{}")

    return Fake(settings)


def test_healthz_is_503_while_starting_then_200(tmp_path):
    need_serve()
    import httpx
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers")
    engine = _fake_engine(settings, start_s=1.0)
    with running_server(settings, engine, wait_ready=False) as (url, _app):
        starting = httpx.get(url + "/healthz")
        assert starting.status_code == 503 and starting.json()["status"] == "starting"
        busy = httpx.post(url + "/v1/affect/explain", json={"text": "hi"})
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "engine_starting"
        assert busy.headers["retry-after"] == "5"
        # validation does not wait for the engine
        assert httpx.post(url + "/v1/affect/explain", content=b"{").json()["error"]["code"] == "malformed_json"
        deadline = time.monotonic() + 10
        while httpx.get(url + "/healthz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        ok = httpx.post(url + "/v1/affect/explain", json={"text": "hi"})
        assert ok.status_code == 200 and ok.json()["labels"] == ["joy"]


def test_slow_engine_gives_504_and_server_stays_up():
    need_serve()
    import httpx
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers", request_timeout_s=0.3)
    with running_server(settings, _fake_engine(settings, answer_s=2.0)) as (url, _app):
        r = httpx.post(url + "/v1/affect/explain", json={"text": "hi"}, timeout=10)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        assert httpx.get(url + "/healthz").status_code == 200


def test_engine_start_failure_stops_the_server_with_the_reason():
    need_serve()
    from affect_llm.serve.app import run
    from affect_llm.serve.config import ServeSettings

    settings = ServeSettings(engine="transformers", port=0, log_level="warning")
    engine = _fake_engine(settings, fail="weights are missing")
    box: dict = {}

    def go() -> None:
        try:
            run(settings, engine=engine)
        except AffectError as err:
            box["err"] = err

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "server hung after the engine failed"
    assert "engine failed to start: weights are missing" in str(box["err"])


def test_settings_report_every_problem_at_once(tmp_path):
    from affect_llm.serve.config import ServeSettings, parse_adapters

    with pytest.raises(AffectError) as info:
        ServeSettings(engine="tgi", port=70000, max_request_mb=0, asr_backend="x", adapters={"a b": str(tmp_path)})
    msg = str(info.value)
    for part in ("engine 'tgi'", "port must be", "max_request_mb", "asr backend", "adapter name 'a b'",
                 "has no adapter_config.json"):
        assert part in msg
    assert parse_adapters(["calm=runs/a", "runs/b/"]) == {"calm": "runs/a", "b": "runs/b/"}
    with pytest.raises(AffectError, match="twice"):
        parse_adapters(["x=a", "x=b"])


def test_media_sniffing_and_base64():
    from affect_llm.serve.errors import ApiError
    from affect_llm.serve.media import check_media, decode_base64, sniff

    assert sniff("audio", wav_bytes(0.05)) == ".wav"
    assert sniff("image", png_bytes()) == ".png"
    assert sniff("image", b"\xff\xd8\xff\xe0rest") == ".jpg"
    assert sniff("video", b"\x00\x00\x00\x18ftypmp42") == ".mp4"
    assert sniff("audio", png_bytes()) is None
    assert decode_base64("image", "data:image/png;base64," + base64.b64encode(b"abc").decode()) == b"abc"
    assert decode_base64("audio", "YW Jj\n") == b"abc"  # whitespace and line breaks are allowed
    for bad in ("", "abc$", "a"):
        with pytest.raises(ApiError) as info:
            decode_base64("audio", bad)
        assert info.value.status == 400 and info.value.param == "audio"
    with pytest.raises(ApiError) as info:
        check_media("audio", b"GIF89a....")
    assert info.value.status == 415 and "WAV" in info.value.message


def test_vllm_glue(tmp_path):
    from affect_llm.serve.config import ServeSettings
    from affect_llm.serve.vllm_engine import child_command, trim_stop_logprobs

    from affect_llm.backends.vllm_backend import check_main_guard, lora_rank

    adapter = tmp_path / "a"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 12}))
    assert lora_rank({"a": str(adapter)}) == 16
    settings = ServeSettings(engine="vllm", adapters={"calm": str(adapter)}, vllm_args=["--max-num-seqs", "8"])
    cmd = child_command(settings, "/m", "smol", 1234)
    assert cmd[1:3] == ["-m", "affect_llm.serve._vllm_child"] and "--enable-lora" in cmd
    assert cmd[cmd.index("--lora-modules") + 1] == f"calm={adapter.resolve()}"
    assert cmd[cmd.index("--max-lora-rank") + 1] == "16" and cmd[-2:] == ["--max-num-seqs", "8"]
    from affect_llm.decoding import DECODING

    assert json.loads(cmd[cmd.index("--override-generation-config") + 1]) == {
        "repetition_penalty": DECODING["repetition_penalty"]}
    choice = {"message": {"content": "ok"}, "logprobs": {"content": [{"token": "o"}, {"token": "k"},
                                                                      {"token": "<|im_end|>"}]}}
    trim_stop_logprobs(choice)
    assert [t["token"] for t in choice["logprobs"]["content"]] == ["o", "k"]
    check_main_guard()  # the test runner's main module is no multiprocessing re-import


def test_vllm_backend_refuses_an_unguarded_spawn_reimport(monkeypatch):
    import sys
    import types

    from affect_llm.backends.vllm_backend import check_main_guard

    fake_main = types.ModuleType("__mp_main__")
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    with pytest.raises(AffectError, match='__name__ == "__main__"'):
        check_main_guard()
