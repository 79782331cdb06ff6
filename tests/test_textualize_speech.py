"""ASR on synthesised speech: faster-whisper and openai-whisper (via our CTranslate2 converter) agree;
the converter maps every tensor; `textualize_inputs` joins transcript, prosody and text cues."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from _textualize_util import espeak, need, need_asset

from affect_llm.errors import AffectError

SENTENCE_1 = "I can't believe you did this to me. I am so angry right now."
SENTENCE_2 = "The weather was lovely, so we walked along the river until the sun went down."


def _write_ct2(path, variables: dict[str, np.ndarray], aliases: dict[str, str], spec="WhisperSpec", version=6):
    """A CTranslate2 model.bin in binary format v6, as ctranslate2.specs.ModelSpec._serialize writes it."""
    ids = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("int32"): 3,
           np.dtype("float16"): 4}

    def s(x: str) -> bytes:
        b = x.encode()
        return struct.pack("<H", len(b) + 1) + b + b"\0"

    out = struct.pack("<I", version) + s(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, arr in variables.items():
        out += s(name) + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<I", d) for d in arr.shape)
        out += struct.pack("<B", ids[arr.dtype]) + struct.pack("<I", arr.nbytes) + arr.tobytes()
    out += struct.pack("<I", len(aliases)) + b"".join(s(a) + s(t) for a, t in aliases.items())
    path.write_bytes(out)


def _tiny_ct2_whisper(n_state=8, n_head=2, layers=1, n_mels=4, vocab=51864, audio_ctx=6, text_ctx=5, seed=0):
    rng = np.random.default_rng(seed)
    h = lambda *shape: rng.standard_normal(shape).astype(np.float16)
    v: dict[str, np.ndarray] = {
        "encoder/num_heads": np.array(n_head, np.int16), "decoder/num_heads": np.array(n_head, np.int16),
        "encoder/conv1/weight": h(n_state, n_mels, 3), "encoder/conv1/bias": h(n_state),
        "encoder/conv2/weight": h(n_state, n_state, 3), "encoder/conv2/bias": h(n_state),
        "encoder/position_encodings/encodings": h(audio_ctx, n_state),
        "encoder/layer_norm/gamma": h(n_state), "encoder/layer_norm/beta": h(n_state),
        "decoder/embeddings/weight": h(vocab, n_state),
        "decoder/position_encodings/encodings": h(text_ctx, n_state),
        "decoder/layer_norm/gamma": h(n_state), "decoder/layer_norm/beta": h(n_state),
    }

    def block(prefix: str, cross: bool) -> None:
        for sub, n_out in (("self_attention/linear_0", 3 * n_state), ("self_attention/linear_1", n_state),
                           ("ffn/linear_0", 4 * n_state)):
            v[f"{prefix}/{sub}/weight"], v[f"{prefix}/{sub}/bias"] = h(n_out, n_state), h(n_out)
        v[f"{prefix}/ffn/linear_1/weight"], v[f"{prefix}/ffn/linear_1/bias"] = h(n_state, 4 * n_state), h(n_state)
        norms = ["self_attention/layer_norm", "ffn/layer_norm"]
        if cross:
            for sub, n_out in (("attention/linear_0", n_state), ("attention/linear_1", 2 * n_state),
                               ("attention/linear_2", n_state)):
                v[f"{prefix}/{sub}/weight"], v[f"{prefix}/{sub}/bias"] = h(n_out, n_state), h(n_out)
            norms.append("attention/layer_norm")
        for nm in norms:
            v[f"{prefix}/{nm}/gamma"], v[f"{prefix}/{nm}/beta"] = h(n_state), h(n_state)

    for i in range(layers):
        block(f"encoder/layer_{i}", cross=False)
        block(f"decoder/layer_{i}", cross=True)
    return v


def test_converter_maps_fused_qkv_exactly(tmp_path):
    need("torch")
    from affect_llm.textualize.whisper_convert import ct2_to_openai_whisper, read_ct2_model

    v = _tiny_ct2_whisper()
    path = tmp_path / "model.bin"
    _write_ct2(path, v, {"decoder/projection/weight": "decoder/embeddings/weight"})
    spec, _, aliases = read_ct2_model(path)
    assert spec == "WhisperSpec" and aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    dims, sd = ct2_to_openai_whisper(path)
    assert dims == {"n_mels": 4, "n_audio_ctx": 6, "n_audio_state": 8, "n_audio_head": 2, "n_audio_layer": 1,
                    "n_vocab": 51864, "n_text_ctx": 5, "n_text_state": 8, "n_text_head": 2, "n_text_layer": 1}
    qkv = v["decoder/layer_0/self_attention/linear_0/weight"]
    assert np.array_equal(sd["decoder.blocks.0.attn.key.weight"], qkv[8:16])
    assert np.array_equal(sd["decoder.blocks.0.attn.value.bias"], v["decoder/layer_0/self_attention/linear_0/bias"][16:])
    assert "decoder.blocks.0.attn.key.bias" not in sd
    assert np.array_equal(sd["decoder.blocks.0.cross_attn.value.weight"], v["decoder/layer_0/attention/linear_1/weight"][8:])
    need("whisper")
    import torch
    from whisper.model import ModelDimensions, Whisper

    model = Whisper(ModelDimensions(**dims))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.array(a)) for k, a in sd.items()}, strict=False)
    assert unexpected == [] and missing == []


def test_converter_rejects_other_versions(tmp_path):
    from affect_llm.textualize.whisper_convert import read_ct2_model

    path = tmp_path / "model.bin"
    _write_ct2(path, {}, {}, version=5)
    with pytest.raises(AffectError, match="version 5 is not supported"):
        read_ct2_model(path)
    path.write_bytes(struct.pack("<I", 6) + b"\x05")
    with pytest.raises(AffectError, match="truncated or corrupt"):
        read_ct2_model(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    need("soundfile", "soxr")
    d = tmp_path_factory.mktemp("speech")
    return [espeak(SENTENCE_1, d / "s1.wav"), espeak(SENTENCE_2, d / "s2.wav", speed=175)]


def test_backends_agree_on_transcripts(clips):
    need("faster_whisper", "whisper")
    need_asset("whisper-tiny-en")
    from affect_llm.textualize.asr import normalize_transcript, transcribe
    from affect_llm.textualize.audio import load_audio

    for clip, expected in zip(clips, (SENTENCE_1, SENTENCE_2)):
        y = load_audio(clip)
        # greedy decoding keeps the test fast; the default beam 5 agrees too (bench/textualize_speed.py).
        # tiny.en with the language given: the converter test, independent of language detection.
        fw = transcribe(y, "faster-whisper", model="whisper-tiny-en", beam_size=1, language="en")
        ow = transcribe(y, "openai-whisper", model="whisper-tiny-en", beam_size=1, language="en")
        assert fw.reliable and ow.reliable and fw.language == ow.language == "en"
        assert normalize_transcript(fw.text) == normalize_transcript(ow.text)
        assert normalize_transcript(fw.text) == normalize_transcript(expected)
        assert len(fw.words) == len(ow.words) == len(expected.split())
        for a, b in zip(fw.words, ow.words):  # word timestamps from the same alignment heads
            assert abs(a.start - b.start) < 0.25 and a.end <= len(y) / 16_000 + 0.1


def test_textualize_inputs_speech(clips):
    need("faster_whisper", "librosa")
    need_asset("whisper-base")
    from affect_llm.textualize import textualize_inputs

    res = textualize_inputs(audio=clips, text="so happy!!")
    assert [r.kind for r in res] == ["audio", "audio", "text"]
    a = res[0]
    assert a.prosody.reference == "speaker" and a.prosody.reference_clips == 1
    assert 80 < a.prosody.f0_mean_hz < 130  # espeak's default male voice is about 100 Hz
    assert "angry" in a.transcript and a.language == "en" and a.transcript_reliable is True
    anger = next(c for c in a.cues if c.modality == "text" and "negative" in c.cue)
    assert "'angry'" in anger.evidence and anger.start is not None and anger.end > anger.start
    j = a.to_json_dict()
    assert set(j) >= {"source", "cues", "transcript", "prosody", "language", "transcript_reliable"} and "face" not in j
    assert set(j["cues"][0]) == {"modality", "cue", "evidence", "start", "end", "strength"}
    for key in ("f0_mean_hz", "f0_range_semitones", "f0_final_slope", "intensity_mean_db",
                "speech_rate_syll_per_s", "pause_ratio"):
        assert key in j["prosody"]
    single = textualize_inputs(audio=clips[:1], asr_backend="none")[0]
    assert single.prosody.reference == "population" and single.transcript is None
    with pytest.raises(AffectError, match="unknown ASR backend"):
        textualize_inputs(audio=clips[:1], asr_backend="kaldi")
