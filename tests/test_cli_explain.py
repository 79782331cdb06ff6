"""CLI contract: bad input gives one line on stderr, exit 2, no traceback, before any model loads."""

import json
import subprocess
import sys

import pytest


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "affect_llm.cli.app", *args], capture_output=True, text=True,
                          input=stdin, timeout=300)


def assert_user_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert needle in lines[0]


def test_help_lists_commands():
    out = run("--help").stdout
    for cmd in ("explain", "chat", "assets"):
        assert cmd in out


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text(text):
    assert_user_error(run("explain", "--text", text), "text is empty")


def test_missing_context_file(tmp_path):
    assert_user_error(run("explain", "--text", "hi", "--context", str(tmp_path / "none.jsonl")), "not found")


def test_malformed_context_names_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"speaker": "A", "text": "hello"}\n{"speaker": "B"}\n')
    assert_user_error(run("explain", "--text", "hi", "--context", str(f)), "d.jsonl:2: text")
    f.write_text('{"speaker": "A", "text": "hello"}\nnot json\n')
    assert_user_error(run("explain", "--text", "hi", "--context", str(f)), "d.jsonl:2: not valid JSON")


def test_non_utf8_context(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"speaker": "A", "text": "caf\xe9"}\n')
    assert_user_error(run("explain", "--text", "hi", "--context", str(f)), "not UTF-8")


def test_unknown_model_and_backend():
    assert_user_error(run("explain", "--text", "hi", "--model", "nosuch"), "unknown model 'nosuch'")
    assert_user_error(run("explain", "--text", "hi", "--backend", "nosuch"), "unknown backend 'nosuch'")
    assert_user_error(run("explain", "--text", "hi", "--backend", "openai"), "--base-url")


def test_missing_asset_names_the_command(tmp_path):
    env_cache = {"AFFECT_LLM_CACHE": str(tmp_path)}
    import os

    proc = subprocess.run([sys.executable, "-m", "affect_llm.cli.app", "explain", "--text", "hi"],
                          capture_output=True, text=True, env={**os.environ, **env_cache}, timeout=120)
    assert_user_error(proc, "affect-llm assets pull")


def test_unreachable_endpoint():
    proc = run("explain", "--text", "hi", "--backend", "openai", "--base-url", "http://127.0.0.1:9")
    assert_user_error(proc, "cannot reach")


def test_assets_list_json():
    rows = json.loads(run("assets", "list", "--json").stdout)
    assert {r["name"] for r in rows} >= {"smollm2-135m-instruct", "minilm"}


def test_explain_and_chat_on_tiny_model(tiny_llama_dir):
    proc = run("explain", "--text", "I lost my keys again!", "--model", str(tiny_llama_dir), "--json",
               "--max-new-tokens", "400", "--dtype", "float32")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert set(obj) == {"labels", "explanation", "cues", "confidence", "llm_confidence", "label_prior", "inconsistent",
                        "explanation_rewritten", "dropped_citations", "model", "template", "timings", "raw"}
    assert obj["label_prior"] is None  # the bundled label model belongs to the embedded model only
    assert obj["template"].startswith("explain@") and obj["labels"]
    chat = run("chat", "--model", str(tiny_llama_dir), "--max-new-tokens", "400", stdin="/json\nI lost my keys!\n/reset\n/bogus\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert "JSON output on" in chat.stdout and "conversation cleared" in chat.stdout
    assert '"labels"' in chat.stdout and "unknown command /bogus" in chat.stdout
