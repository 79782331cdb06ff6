"""Frozen frame encoders of the projector route on inputs with known answers: synthetic vowel-like tones
(frame counts, pitch ordering, silence), real photos (a smiling astronaut, a cup of coffee), a two-part
video, the feature cache and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from _textualize_util import harmonic, need, need_asset

from affect_llm.errors import AffectError
from affect_llm.projector.encoders import (
    BLENDSHAPES,
    ENCODERS,
    PROSODY_COLUMNS,
    FrameEncoder,
    build_encoder,
    encode_cached,
    feature_cache_path,
)

SR = 16_000
F0 = [name for name, _ in PROSODY_COLUMNS].index("f0")
VOICED = [name for name, _ in PROSODY_COLUMNS].index("voiced")
LEVEL = [name for name, _ in PROSODY_COLUMNS].index("level")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    need("torch")
    from affect_llm.threads import configure_threads

    configure_threads(1)


def pad(y: np.ndarray, before: float, after: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(before * SR), np.float32), y, np.zeros(int(after * SR), np.float32)])


def write_wav(path, y: np.ndarray):
    need("soundfile")
    import soundfile as sf

    sf.write(str(path), y, SR, subtype="FLOAT")
    return path


# ---------------------------------------------------------------------------------------------- registry


def test_registry_and_interface():
    assert set(ENCODERS) == {"whisper", "prosody", "face"}
    dims = {"whisper": 384, "prosody": len(PROSODY_COLUMNS), "face": 52 + 3 + 1}
    for name in ENCODERS:
        enc = build_encoder(name)  # cheap: models load on the first encode
        assert isinstance(enc, FrameEncoder)
        assert enc.name == name and enc.dim == dims[name] and enc.version >= 1 and enc.frame_rate > 0
        assert enc.modality == ("face" if name == "face" else "audio")
    assert build_encoder("whisper").frame_rate == 50.0 and build_encoder("prosody").frame_rate == 100.0
    assert len(BLENDSHAPES) == len(set(BLENDSHAPES)) == 52


def test_unknown_encoder_names_the_valid_ones():
    with pytest.raises(AffectError) as err:
        build_encoder("wav2vec")
    msg = str(err.value)
    assert "'wav2vec'" in msg and all(name in msg for name in ("whisper", "prosody", "face"))


# ---------------------------------------------------------------------------------------------- prosody


@pytest.fixture(scope="module")
def prosody():
    need("librosa", "scipy")
    return build_encoder("prosody")


def test_prosody_frames_pitch_and_silence(prosody):
    low = prosody.encode(harmonic(150.0, 1.5))
    assert low.shape == (150, prosody.dim) and low.dtype == np.float32
    assert np.all(np.isfinite(low)) and low.min() >= -2.0 and low.max() <= 2.6
    voiced = low[:, VOICED] == 1
    assert voiced.mean() > 0.9
    assert low[voiced, F0].mean() == pytest.approx(np.log2(1.5), abs=0.03)  # 150 Hz = 7.0 st re 100 Hz, /12
    high = prosody.encode(harmonic(250.0, 1.5))
    assert high[high[:, VOICED] == 1, F0].mean() > low[voiced, F0].mean() + 0.5

    padded = prosody.encode(pad(harmonic(150.0, 1.5), 0.5, 0.5))
    assert padded.shape == (250, prosody.dim)
    silent = np.r_[0:40, 210:250]  # well inside the padding (frames are 10 ms, the tone is 0.5-2.0 s)
    assert np.all(padded[silent, VOICED] == 0) and np.all(padded[silent, F0] == 0)
    assert np.all(padded[silent, LEVEL] == 0) and padded[60:190, LEVEL].min() > 0.5


def test_prosody_is_deterministic_and_file_equals_array(prosody, tmp_path):
    y = harmonic(np.geomspace(140.0, 220.0, 24_000), 1.5)
    a = prosody.encode(y)
    np.testing.assert_array_equal(a, prosody.encode(y))
    np.testing.assert_array_equal(a, prosody.encode(write_wav(tmp_path / "rise.wav", y)))
    assert a[a[:, VOICED] == 1, [n for n, _ in PROSODY_COLUMNS].index("f0_delta")].mean() > 0  # rising pitch


# ---------------------------------------------------------------------------------------------- whisper


@pytest.fixture(scope="module")
def whisper_encoder():
    need("whisper", "torch")
    need_asset("whisper-tiny-en")
    return build_encoder("whisper")


def test_whisper_keeps_frames_covering_the_audio(whisper_encoder):
    y = harmonic(150.0, 1.5)
    a = whisper_encoder.encode(y)
    assert a.shape == (75, 384) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, whisper_encoder.encode(y))
    b = whisper_encoder.encode(pad(y, 0.5, 0.51))  # 2.51 s -> ceil(40160 / 320) = 126
    assert b.shape == (126, 384)


def test_whisper_long_audio_in_30s_windows(whisper_encoder):
    y = np.tile(harmonic(150.0, 1.0), 31)  # 31 s: one full window and 1 s more
    a = whisper_encoder.encode(y)
    assert a.shape == (1500 + 50, 384)
    # the second window starts afresh: its first frames match encoding that second alone
    np.testing.assert_allclose(a[1500:], whisper_encoder.encode(y[30 * SR :]), atol=1e-5)


# ---------------------------------------------------------------------------------------------- face


@pytest.fixture(scope="module")
def face_setup(tmp_path_factory):
    need("mediapipe", "av", "PIL", "skimage")
    need_asset("face-landmarker")
    from PIL import Image
    from skimage import data

    d = tmp_path_factory.mktemp("faces")
    Image.fromarray(data.astronaut()).save(d / "astronaut.png")
    Image.fromarray(data.coffee()).save(d / "coffee.jpg")
    return build_encoder("face"), d


def test_face_on_images(face_setup):
    enc, d = face_setup
    a = enc.encode(d / "astronaut.png")
    assert a.shape == (1, 56) and a.dtype == np.float32 and a[0, -1] == 1.0
    assert a[0, BLENDSHAPES.index("mouthSmileLeft")] > 0.7  # the astronaut smiles broadly
    assert np.all(np.abs(a[0, 52:55]) < 0.3)  # facing the camera: |pose| < 13.5 degrees
    np.testing.assert_array_equal(a, enc.encode(d / "astronaut.png"))
    none = enc.encode(d / "coffee.jpg")
    assert none.shape == (1, 56) and np.all(none == 0)


def test_face_video_rows_follow_the_sampling_grid(face_setup):
    import av
    from skimage import data

    enc, d = face_setup
    path = d / "half_face.mp4"
    face, grey = data.astronaut(), np.full((512, 512, 3), 128, np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 512, 512, "yuv420p"
        for i in range(20):  # 2 s at 10 fps: the face for 1 s, then an empty grey picture
            frame = av.VideoFrame.from_ndarray(face if i < 10 else grey, format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    a = enc.encode(path)
    assert enc.frame_rate == 5.0 and a.shape == (10, 56)  # sampled at 0, 0.2, ..., 1.8 s
    assert a[:5, -1].tolist() == [1.0] * 5 and np.all(a[5:] == 0)


# ---------------------------------------------------------------------------------------------- cache


def test_encode_cached_hits_the_cache(prosody, tmp_path, monkeypatch):
    wav = write_wav(tmp_path / "tone.wav", harmonic(200.0, 1.0))
    cache = tmp_path / "cache"
    first = encode_cached(prosody, wav, cache)
    stored = feature_cache_path(prosody, wav, cache)
    assert stored.parent == cache / f"prosody-v{prosody.version}" and len(stored.stem) == 20 and stored.is_file()
    assert list(stored.parent.iterdir()) == [stored]  # no temporary file left behind

    def boom(_source):
        raise AssertionError("the encoder ran although the features are cached")

    monkeypatch.setattr(prosody, "encode", boom)
    np.testing.assert_array_equal(encode_cached(prosody, wav, cache), first)
    copy = tmp_path / "renamed.wav"  # keyed by content, not by name
    copy.write_bytes(wav.read_bytes())
    np.testing.assert_array_equal(encode_cached(prosody, copy, cache), first)
    monkeypatch.undo()

    stored.write_bytes(b"not a numpy file")  # a damaged cache entry is recomputed, not trusted
    np.testing.assert_array_equal(encode_cached(prosody, wav, cache), first)


def test_default_cache_root_follows_affect_llm_cache(prosody, tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECT_LLM_CACHE", str(tmp_path / "home"))
    wav = write_wav(tmp_path / "tone.wav", harmonic(200.0, 1.0))
    assert feature_cache_path(prosody, wav).parent == tmp_path / "home" / "features" / "prosody-v1"


# ---------------------------------------------------------------------------------------------- errors


def test_bad_inputs_are_one_line_errors(prosody, tmp_path):
    missing = tmp_path / "nope.wav"
    for call in (lambda: prosody.encode(missing), lambda: encode_cached(prosody, missing, tmp_path)):
        with pytest.raises(AffectError, match="nope.wav: no such audio file"):
            call()
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AffectError, match="empty.wav: audio file is empty"):
        prosody.encode(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 50)
    with pytest.raises(AffectError, match="junk.wav") as err:
        prosody.encode(junk)
    assert "\n" not in str(err.value)
    with pytest.raises(AffectError, match="silent"):
        prosody.encode(np.zeros(SR, np.float32))
    with pytest.raises(AffectError, match="image or video file path"):
        build_encoder("face").encode(np.zeros((8, 8, 3), np.uint8))
