"""The fuzz of issue 15, kept as tests: bad input anywhere gives one `error:` line and exit code 2 (CLI) or an
`AffectError` naming the parameter (Python API) — no traceback, no partial files, no lost input, and no
model loaded to find out. Most cases run the CLI in-process; none loads the LLM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affect_llm.errors import AffectError

SAMPLE = {"dataset": "x", "split": "train", "text": "I am so happy today", "labels": ["joy"]}
DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens on port 9: any model call would fail loudly


def cli(capsys, *args: str) -> tuple[int, str, str]:
    from affect_llm.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def assert_error_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert "Traceback" not in err and "╭" not in err, err
    for n in needles:
        assert n in err, (n, err)


def samples(path: Path, n: int, **extra) -> Path:
    path.write_text("".join(json.dumps({**SAMPLE, "id": f"s{i}", **extra}) + "\n" for i in range(n)),
                    encoding="utf-8")
    return path


@pytest.fixture()
def files(tmp_path):
    f = samples(tmp_path / "F.jsonl", 40)
    bad = tmp_path / "bad.jsonl"
    good_line = (json.dumps({**SAMPLE, "id": "a"}) + "\n").encode()
    bad.write_bytes(good_line + b'{"id": "b", "text": "caf\xe9"}\n')  # Latin-1 byte on line 2
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    return {"F": f, "bad": bad, "bad_offset": len(good_line) + bad.read_bytes().splitlines()[1].index(b"\xe9"),
            "empty": empty, "folder": folder,
            "missing": tmp_path / "missing.jsonl"}


# ---------------------------------------------------------------------------- one input layer
@pytest.mark.parametrize("argv", [
    ["data", "check", "{bad}"],
    ["eval", "ov", "--pred", "{bad}", "--gold", "{F}"],
    ["eval", "ov", "--pred", "{F}", "--gold", "{bad}"],
    ["eval", "cues", "--pred", "{F}", "--gold", "{bad}"],
    ["eval", "run", "--data", "{bad}", "--out", "{tmp}/run", "--backend", "openai", "--base-url", DEAD_URL],
    ["explain", "--text", "hi", "--context", "{bad}", "--backend", "openai", "--base-url", DEAD_URL],
    ["data", "mix", "{bad}", "--out", "{tmp}/mix.jsonl"],
    ["index", "build", "--data", "{bad}", "--out", "{tmp}/idx"],
])
def test_non_utf8_files_name_the_file_and_byte_offset(argv, files, tmp_path, capsys):
    args = [a.format(tmp=tmp_path, **{k: v for k, v in files.items()}) for a in argv]
    code, _, err = cli(capsys, *args)
    assert_error_line(code, err, str(files["bad"]), "not UTF-8", f"offset {files['bad_offset']}", "line 2")
    assert not (tmp_path / "run").exists() and not (tmp_path / "mix.jsonl").exists()


def test_train_sft_non_utf8_data_is_an_error_line(files, tmp_path):
    """Separate process: the training stack is heavy to import, and this is what a user runs."""
    proc = subprocess.run([sys.executable, "-m", "affect_llm.cli.app", "train", "sft", "--train_file",
                           str(files["bad"]), "--max_steps", "1", "--output_dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert_error_line(proc.returncode, proc.stderr, "not UTF-8", "line 2")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, needle", [("folder", "is a folder"), ("missing", "no such file")])
def test_folder_and_missing_file_are_told_apart(key, needle, files, capsys):
    code, _, err = cli(capsys, "data", "check", files[key])
    assert_error_line(code, err, needle, str(files[key]))


def test_empty_file_fails_data_check(files, capsys):
    code, _, err = cli(capsys, "data", "check", files["empty"])
    assert_error_line(code, err, "no samples")


# ---------------------------------------------------------------------------- one output layer
def test_data_mix_never_overwrites_its_input(files, capsys):
    before = files["F"].read_bytes()
    for out in (files["F"], Path(str(files["F"].parent) + "/./F.jsonl")):
        code, _, err = cli(capsys, "data", "mix", f"{files['F']}:5", "--out", out)
        assert_error_line(code, err, "is also an input")
    code, _, err = cli(capsys, "data", "mix", f"{files['F']}:5", "--out", files["F"].parent / "m.jsonl",
                       "--ids-out", files["F"])
    assert_error_line(code, err, "is also an input")
    assert files["F"].read_bytes() == before  # 40 samples, not 5


def test_data_build_never_replaces_the_raw_corpus(tmp_path, capsys):
    corpus = tmp_path / "GoEmotions"
    corpus.mkdir()
    raw = b"Is this in New Orleans?\t27\tedgurhb\n"
    (corpus / "dev.tsv").write_bytes(raw)
    (corpus / "emotions.txt").write_text("neutral\n", encoding="utf-8")
    code, _, err = cli(capsys, "data", "build", "goemotions", "--source", corpus, "--split", "dev",
                       "--out", corpus / "dev.tsv")
    assert_error_line(code, err, "input folder")
    assert (corpus / "dev.tsv").read_bytes() == raw


@pytest.mark.parametrize("make", ["file", "folder"])
def test_outputs_are_checked_before_any_work(make, files, tmp_path, capsys):
    target = tmp_path / "taken"
    if make == "file":
        target.write_text("keep me\n", encoding="utf-8")
        cases = [
            ["eval", "run", "--data", files["F"], "--out", target, "--backend", "openai", "--base-url", DEAD_URL],
            ["eval", "cues", "--pred", files["F"], "--gold", files["F"], "--out", target],
            ["index", "build", "--data", files["F"], "--out", target],
        ]
    else:
        target.mkdir()
        cases = [["data", "mix", files["F"], "--out", target],
                 ["data", "build", "goemotions", "--source", tmp_path, "--out", target]]
    for argv in cases:
        t0 = time.monotonic()
        code, _, err = cli(capsys, *argv)
        assert_error_line(code, err, str(target))
        assert time.monotonic() - t0 < 20, "checked only after loading a model"
    if make == "file":
        assert target.read_text(encoding="utf-8") == "keep me\n"


def test_written_files_follow_the_umask(files, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        code, _, err = cli(capsys, "data", "mix", f"{files['F']}:5", "--out", tmp_path / "m.jsonl",
                           "--ids-out", tmp_path / "ids.txt")
    finally:
        os.umask(old)
    assert code == 0, err
    for name in ("m.jsonl", "ids.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_eval_suite_checks_its_data_before_the_model_and_leaves_no_folder(files, tmp_path, capsys):
    out = tmp_path / "run"
    t0 = time.monotonic()
    code, _, err = cli(capsys, "eval", "run", "--suite", "ov-explain", "--data", files["F"], "--out", out,
                       "--backend", "openai", "--base-url", DEAD_URL, "--no-plots")
    assert_error_line(code, err, "description")
    assert "cannot reach" not in err  # refused before any backend was built
    assert time.monotonic() - t0 < 20
    assert not out.exists()


def test_eval_run_interrupted_says_rerun_resumes(files, tmp_path, capsys, monkeypatch):
    from affect_llm.eval.runner import EvalRunner

    class Interrupted:
        predictions_path = tmp_path / "run" / "predictions.jsonl"

        def run(self):
            raise KeyboardInterrupt

    monkeypatch.setattr(EvalRunner, "from_pipeline", classmethod(lambda cls, *a, **k: Interrupted()))
    code, _, err = cli(capsys, "eval", "run", "--data", files["F"], "--out", tmp_path / "run", "--no-plots")
    assert code == 130 and "rerun the same command to resume" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- index files
def test_index_query_bad_inputs(tmp_path, capsys):
    pytest.importorskip("faiss")
    code, _, err = cli(capsys, "index", "query", tmp_path, "--text", "  ")
    assert_error_line(code, err, "--text is empty")
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "manifest.json").write_text('{"format": 1, "count": ', encoding="utf-8")
    code, _, err = cli(capsys, "index", "query", idx, "--text", "hello")
    assert_error_line(code, err, "manifest.json", "damaged")


def test_truncated_faiss_index_is_an_error_line(tmp_path, capsys):
    pytest.importorskip("faiss")
    pytest.importorskip("sentence_transformers")
    from affect_llm.assets import MissingAssetError, asset_path

    try:
        asset_path("minilm")
    except (MissingAssetError, AffectError):
        pytest.skip("MiniLM asset not pulled")
    data = samples(tmp_path / "pool.jsonl", 3)
    idx = tmp_path / "idx"
    code, _, err = cli(capsys, "index", "build", "--data", data, "--out", idx)
    assert code == 0, err
    faiss_file = next(idx.glob("*.faiss"))
    faiss_file.write_bytes(faiss_file.read_bytes()[:40])
    code, _, err = cli(capsys, "index", "query", idx, "--text", "hello")
    assert_error_line(code, err, "damaged or truncated")


# ---------------------------------------------------------------------------- strings at the boundary
@pytest.mark.parametrize("flag, value", [("--text", "bad \udcff day"), ("--speaker", "Mo\ud800nica"),
                                         ("--speaker", "nul\x00")])
def test_lone_surrogates_and_nul_in_arguments(flag, value, capsys):
    argv = ["explain", "--text", "fine", "--backend", "openai", "--base-url", DEAD_URL]
    argv[argv.index("--text") + 1] = value if flag == "--text" else "fine"
    if flag == "--speaker":
        argv += ["--speaker", value]
    code, _, err = cli(capsys, *argv)
    assert_error_line(code, err, flag, "NUL" if "\x00" in value else "not valid Unicode")


def test_invalid_utf8_bytes_in_argv_and_context(tmp_path):
    ctx = tmp_path / "ctx.jsonl"
    ctx.write_bytes(b'{"speaker": "A", "text": "ok"}\n{"speaker": "B", "text": "\xff"}\n')
    for argv in ([b"explain", b"--text", b"bad \xff day", b"--backend", b"openai", b"--base-url", DEAD_URL.encode()],
                 [b"explain", b"--text", b"hi", b"--context", str(ctx).encode(), b"--backend", b"openai",
                  b"--base-url", DEAD_URL.encode()]):
        proc = subprocess.run([sys.executable.encode(), b"-m", b"affect_llm.cli.app", *argv], capture_output=True,
                              timeout=120, check=False)
        err = proc.stderr.decode("utf-8", "replace")
        assert_error_line(proc.returncode, err)
        assert "cannot reach" not in err


# ---------------------------------------------------------------------------- bounded work
def test_overlong_text_is_refused_before_the_model_loads(capsys):
    from affect_llm.limits import MAX_INPUT_CHARS

    t0 = time.monotonic()
    code, _, err = cli(capsys, "explain", "--text", "a" * (MAX_INPUT_CHARS + 1))
    assert_error_line(code, err, "too long", f"{MAX_INPUT_CHARS:,}")
    assert time.monotonic() - t0 < 10


def test_python_api_refuses_a_prompt_over_the_token_limit(tiny_llama_dir):
    from affect_llm.limits import MAX_INPUT_CHARS, MAX_INPUT_TOKENS, InputTooLongError
    from affect_llm.pipeline import Explainer

    ex = Explainer(model=str(tiny_llama_dir), adapter=None, label_model=None, dtype="float32")
    words = "the quick brown fox jumps over the lazy dog again "
    text = words * (MAX_INPUT_CHARS // 2 // len(words))  # well under the characters, over the tokens
    t0 = time.monotonic()
    with pytest.raises(InputTooLongError, match=f"limit is {MAX_INPUT_TOKENS:,}"):
        ex.explain(text=text)
    assert time.monotonic() - t0 < 10  # refused before generating


# ---------------------------------------------------------------------------- validate before work
def test_train_config_lists_every_impossible_value(tmp_path, files):
    proc = subprocess.run([sys.executable, "-m", "affect_llm.cli.app", "train", "show", "sft", "--train_file",
                           str(files["F"]), "--learning_rate", "-1", "--num_train_epochs", "abc",
                           "--per_device_train_batch_size", "-4", "--lora_r", "0"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "4 problems" in proc.stderr
    for key in ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "lora_r"):
        assert f"- {key}:" in proc.stderr


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_unreachable_hub_fails_fast_with_the_offline_hint(env, monkeypatch):
    from affect_llm.assets import resolve_model

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    t0 = time.monotonic()
    with pytest.raises(AffectError, match="huggingface-cli download"):
        resolve_model("no-such-org/no-such-model-xyz")
    assert time.monotonic() - t0 < 5


# ---------------------------------------------------------------------------- Python API
class _Backend:
    name, model_id = "fake", "fake"

    def generate(self, batch, **kw):  # pragma: no cover - never reached: validation comes first
        raise AssertionError("generated despite invalid input")


@pytest.mark.parametrize("kwargs, needle", [
    ({"label_vocabulary": []}, "label_vocabulary"),
    ({"label_vocabulary": ["", " "]}, "label_vocabulary"),
    ({"label_vocabulary": ["joy", " "]}, "label_vocabulary"),
    ({"label_vocabulary": "feelings"}, "label vocabulary"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": "96"}, "max_new_tokens"),
    ({"temperature": -1}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"k": -1}, "k must"),
])
def test_python_api_parameters(kwargs, needle):
    from affect_llm.pipeline import Explainer

    with pytest.raises(AffectError, match=needle):
        Explainer(backend=_Backend(), label_model=None, **kwargs)


@pytest.mark.parametrize("call, needle", [
    (lambda ex: ex.explain_many([], batch_size=0), "batch_size"),
    (lambda ex: ex.explain(text="   "), "text is empty"),
    (lambda ex: ex.explain(text="bad \ud800 day"), "not valid Unicode"),
    (lambda ex: ex.explain(text="x" * 70_000), "too long"),
    (lambda ex: ex.explain_many(["just a string"]), "ExplainRequest"),
])
def test_python_api_inputs(call, needle):
    from affect_llm.pipeline import Explainer

    ex = Explainer(backend=_Backend(), label_model=None)
    with pytest.raises(AffectError, match=needle):
        call(ex)


# ---------------------------------------------------------------------------- usage errors
@pytest.mark.parametrize("argv, needle", [
    (["explain", "--text", "hi", "--k", "99"], "--k"),
    (["explain", "--max-new-tokens", "0", "--text", "hi"], "--max-new-tokens"),
    (["explain", "--bogus"], "--bogus"),
    (["data", "build"], "Missing argument"),
])
def test_usage_errors_are_one_error_line(argv, needle, capsys):
    code, _, err = cli(capsys, *argv)
    assert_error_line(code, err, needle)


def test_serve_uses_the_bundled_adapter_like_the_cli():
    from affect_llm.serve.config import ServeSettings

    from affect_llm.assets import resolve_adapter

    settings = ServeSettings(engine="transformers")
    assert resolve_adapter(settings.base_adapter, settings.model) == resolve_adapter("default", None)
    assert ServeSettings(engine="transformers", base_adapter=None).base_adapter is None


@pytest.mark.parametrize("kwargs", [{"adapter": "runs/lora"}, {"dtype": "bfloat16"}, {"temprature": 0.5}])
def test_openai_backend_refuses_what_it_would_drop(kwargs):
    from affect_llm.backends import make_backend

    with pytest.raises(AffectError, match=f"does not take {next(iter(kwargs))}"):
        make_backend("openai", base_url=DEAD_URL, **kwargs)


def test_index_build_never_replaces_a_folder_that_is_not_an_index(files, tmp_path, capsys):
    pytest.importorskip("faiss")
    home = tmp_path / "notes"
    home.mkdir()
    (home / "keep.txt").write_text("precious\n", encoding="utf-8")
    code, _, err = cli(capsys, "index", "build", "--data", files["F"], "--out", home)
    assert_error_line(code, err, "not a demonstration index")
    assert (home / "keep.txt").read_text(encoding="utf-8") == "precious\n"
