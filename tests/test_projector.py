"""Projector route on a tiny random Llama with tiny encoders: slot counts and splice positions, projector
kinds, stage-1 gradients reaching only the projector, stage-2 LoRA + projector, save/load round trips and
generation from spliced embeddings (constrained JSON through the transformers backend)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("peft")

from affect_llm.errors import AffectError
from affect_llm.projector.affect_lm import AffectLM
from affect_llm.projector.projectors import PROJECTORS, ProjectorSpec, build_projector, segment_pool


class ToyEncoder:
    """A tiny real encoder: per 10 ms frame of a 16 kHz WAV, RMS, zero-crossing rate and peak."""

    name, modality, dim, frame_rate, version = "toy", "audio", 3, 100.0, 1

    def encode(self, source) -> np.ndarray:
        import soundfile as sf

        y, _ = sf.read(str(source), dtype="float32") if not isinstance(source, np.ndarray) else (source, 16000)
        n = max(1, len(y) // 160)
        frames = y[: n * 160].reshape(n, 160)
        zcr = (np.diff(np.sign(frames), axis=1) != 0).mean(1)
        return np.stack([np.sqrt((frames ** 2).mean(1)) * 10, zcr, np.abs(frames).max(1)], 1).astype(np.float32)


class ToyFaceEncoder(ToyEncoder):
    name, modality, dim = "toyface", "face", 3


@pytest.fixture()
def toy_registry(monkeypatch, tmp_path):
    from affect_llm.projector import encoders

    monkeypatch.setitem(encoders.ENCODERS, "toy", ToyEncoder)
    monkeypatch.setitem(encoders.ENCODERS, "toyface", ToyFaceEncoder)
    monkeypatch.setenv("AFFECT_LLM_CACHE", str(tmp_path / "cache"))


def _lm(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir)), AutoTokenizer.from_pretrained(str(tiny_llama_dir))


def _affect(tiny_llama_dir, kind="mlp", encoders=None, n=4):
    lm, tok = _lm(tiny_llama_dir)
    torch.manual_seed(1)
    return AffectLM.build(lm, tok, encoders or {"toy": ("audio", 3)}, kind=kind, num_tokens=n, hidden=16)


def _wav(path, freq: float, seconds: float = 0.5, amp: float = 0.3):
    import soundfile as sf

    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
    return str(path)


# ----------------------------------------------------------------------------- projectors
@pytest.mark.parametrize("kind", PROJECTORS)
def test_projector_shapes_and_padding_ignored(kind):
    torch.manual_seed(0)
    proj = build_projector(ProjectorSpec(kind=kind, in_dim=5, out_dim=12, num_tokens=3, hidden=8, heads=2))
    x = torch.randn(2, 7, 5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    out = proj(x, mask)
    assert out.shape == (2, 3, 12)
    y = x.clone()
    y[1, 4:] = 100.0  # padded frames must not matter
    assert torch.allclose(proj(y, mask), out, atol=1e-5)


def test_segment_pool_hand_computed():
    x = torch.arange(6, dtype=torch.float32).view(1, 6, 1)
    mask = torch.ones(1, 6, dtype=torch.bool)
    assert segment_pool(x, mask, 3).flatten().tolist() == [0.5, 2.5, 4.5]
    short = torch.tensor([[[1.0], [3.0]]])  # 2 frames, 4 tokens: frames repeat, no empty segment
    assert segment_pool(short, torch.ones(1, 2, dtype=torch.bool), 4).flatten().tolist() == [1.0, 1.0, 3.0, 3.0]


def test_unknown_projector_kind():
    with pytest.raises(AffectError, match="unknown projector 'conv'"):
        ProjectorSpec(kind="conv", in_dim=1, out_dim=1)


def test_soft_tokens_start_at_embedding_scale(tiny_llama_dir):
    m = _affect(tiny_llama_dir, "linear")
    rms = m.specs["toy"].embed_rms
    with torch.no_grad():
        out = m.projectors["toy"](torch.randn(4, 50, 3), torch.ones(4, 50, dtype=torch.bool))
    assert 0.3 * rms < float(out.pow(2).mean().sqrt()) < 3 * rms


# ----------------------------------------------------------------------------- slots and splice
def test_token_counts_and_splice_positions(tiny_llama_dir):
    m = _affect(tiny_llama_dir, encoders={"toy": ("audio", 3), "toyface": ("face", 3)}, n=4)
    text = "Hello <audio> there <face> end"
    ids, slots = m.tokenize(text)
    codes = m.codes
    assert slots.count(codes["toy"]) == 4 and slots.count(codes["toyface"]) == 4
    first_audio = slots.index(codes["toy"])
    assert slots[first_audio:first_audio + 4] == [codes["toy"]] * 4  # one contiguous block per placeholder
    assert slots.index(codes["toyface"]) > first_audio + 4
    plain = m.tokenizer("Hello ", add_special_tokens=False)["input_ids"]
    assert ids[: len(plain)] == plain and first_audio == len(plain)

    feats = {"toy": (torch.randn(1, 9, 3), torch.ones(1, 9, dtype=torch.bool)),
             "toyface": (torch.randn(1, 2, 3), torch.ones(1, 2, dtype=torch.bool))}
    ids_t, slots_t = torch.tensor([ids]), torch.tensor([slots])
    emb = m.splice(ids_t, slots_t, feats)
    table = m.lm.get_input_embeddings()(ids_t)
    text_pos = slots_t == 0
    assert torch.equal(emb[text_pos], table[text_pos])  # text tokens untouched
    want = m.projectors["toy"](*feats["toy"])[0]
    assert torch.allclose(emb[0, first_audio:first_audio + 4], want)


def test_two_encoders_share_a_placeholder(tiny_llama_dir):
    m = _affect(tiny_llama_dir, encoders={"toy": ("audio", 3), "toy2": ("audio", 3)}, n=2)
    _, slots = m.tokenize("<audio>")
    assert slots == [m.codes["toy"]] * 2 + [m.codes["toy2"]] * 2


def test_splice_errors_are_one_line(tiny_llama_dir):
    m = _affect(tiny_llama_dir)
    with pytest.raises(AffectError, match="has <face> but this model has no face encoder"):
        m.tokenize("look <face>")
    ids, slots = m.tokenize("a <audio> b <audio>")
    feats = {"toy": (torch.randn(1, 5, 3), torch.ones(1, 5, dtype=torch.bool))}
    with pytest.raises(AffectError, match="8 slots in the batch but 1 inputs x 4 tokens"):
        m.splice(torch.tensor([ids]), torch.tensor([slots]), feats)
    with pytest.raises(AffectError, match="no toy features"):
        m.splice(torch.tensor([ids]), torch.tensor([slots]), {})


def test_save_load_identical_outputs(tiny_llama_dir, tmp_path):
    m = _affect(tiny_llama_dir, "qformer")
    with torch.no_grad():
        for p in m.projectors.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the initial state
    m.save_projectors(tmp_path / "proj")
    lm2, tok2 = _lm(tiny_llama_dir)
    m2 = AffectLM.from_pretrained(tmp_path / "proj", lm2, tok2)
    ids, slots = m.tokenize("x <audio> y")
    feats = {"toy": (torch.randn(1, 11, 3), torch.ones(1, 11, dtype=torch.bool))}
    args = (torch.tensor([ids]), torch.tensor([slots]))
    with torch.no_grad():
        a = m(args[0], affect_slots=args[1], affect_toy=feats["toy"][0], affect_toy_mask=feats["toy"][1]).logits
        b = m2(args[0], affect_slots=args[1], affect_toy=feats["toy"][0], affect_toy_mask=feats["toy"][1]).logits
    assert torch.equal(a, b)
    bad = tmp_path / "not-a-projector"
    bad.mkdir()
    with pytest.raises(AffectError, match="not a projector folder"):
        AffectLM.from_pretrained(bad, lm2, tok2)


# ----------------------------------------------------------------------------- training (SFT recipe)
@pytest.fixture()
def audio_train_file(tmp_path):
    from affect_llm.data_builders.schema import write_samples

    rows = []
    for i, (freq, lab, cue) in enumerate([(220, "anger", "tense, effortful voice"), (110, "sadness", "slow speech"),
                                          (330, "joy", "speaks higher than usual"), (150, "neutral", "")]):
        rows.append(dict(id=f"a/{i}", dataset="a", split="train", text="Der Lappen liegt auf dem Eisschrank.",
                         audio=_wav(tmp_path / f"{i}.wav", freq), labels=[lab], speaker="03",
                         cues=[{"modality": "speech", "cue": cue, "evidence": "z=+2"}] if cue else []))
    path = tmp_path / "audio.jsonl"
    write_samples(path, rows)
    return str(path)


def _train_projector(tiny_llama_dir, train_file, out, **extra):
    from test_train_recipes import ParamWatch

    from affect_llm.train.config import load_config
    from affect_llm.train.recipes import train

    over = dict(model=str(tiny_llama_dir), train_file=train_file, output_dir=str(out), max_steps=2,
                per_device_train_batch_size=2, learning_rate=5e-2, logging_steps=1, save_strategy="no",
                report_to="none", lora_r=4, lora_alpha=8, lora_dropout=0.0, seed=0, max_length=600,
                projector="mlp", projector_encoders=["toy"], projector_tokens=4, projector_hidden=16)
    over.update(extra)
    watch = ParamWatch()
    card = train("sft", load_config("sft", overrides=over), callbacks=[watch.callback])
    return card, watch


def test_stage1_trains_only_the_projector(toy_registry, tiny_llama_dir, audio_train_file, tmp_path):
    card, watch = _train_projector(tiny_llama_dir, audio_train_file, tmp_path / "s1", projector_stage=1)
    assert watch.trainable and all(n.startswith("affect_projectors.") for n in watch.trainable)
    assert set(watch.changed(watch.trainable)) == watch.trainable  # every projector weight got a gradient step
    frozen = [n for n in watch.before if n not in watch.trainable]
    assert frozen and not watch.changed(frozen)
    out = tmp_path / "s1"
    assert (out / "projector.safetensors").is_file() and (out / "projector_config.json").is_file()
    assert not (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    assert card["projector"]["encoders"]["toy"]["projector"]["num_tokens"] == 4


def test_stage2_lora_and_projector_then_inference(toy_registry, tiny_llama_dir, audio_train_file, tmp_path):
    _train_projector(tiny_llama_dir, audio_train_file, tmp_path / "s1", projector_stage=1)
    card, watch = _train_projector(tiny_llama_dir, audio_train_file, tmp_path / "s2", projector_stage=2,
                                   projector_init=str(tmp_path / "s1"))
    lora = {n for n in watch.trainable if "lora_" in n}
    proj = {n for n in watch.trainable if n.startswith("affect_projectors.")}
    assert lora and proj and watch.trainable == lora | proj
    assert watch.changed([n for n in lora if "lora_B" in n]) and watch.changed(proj)
    assert not watch.changed([n for n in watch.before if n not in watch.trainable])
    out = tmp_path / "s2"
    assert (out / "adapter_config.json").is_file() and (out / "projector.safetensors").is_file()

    from affect_llm.backends.transformers_backend import TransformersBackend
    from affect_llm.pipeline import Explainer, request_from

    backend = TransformersBackend(str(tiny_llama_dir), adapter=str(out), projector=str(out), dtype="float32")
    ex = Explainer(backend=backend, max_new_tokens=40)
    wav = _wav(tmp_path / "q.wav", 200)
    rep = ex.explain(text="Der Lappen liegt auf dem Eisschrank.", media={"audio": wav},
                     label_space=["anger", "sadness", "joy", "neutral"])
    assert rep.labels and rep.labels[0] in {"anger", "sadness", "joy", "neutral"}
    assert "+projector" in rep.model
    # The soft tokens matter: other audio, other prompt embeddings.
    msgs = ex.messages(request_from(text="x", media={"audio": wav}))
    assert "Their voice: <audio>" in msgs[1]["content"]
    a = backend.affect.prompt_batch([backend.prompt_text(msgs)], [{"audio": wav}])["inputs_embeds"]
    b = backend.affect.prompt_batch([backend.prompt_text(msgs)], [{"audio": _wav(tmp_path / "r.wav", 90)}])
    assert not torch.equal(a, b["inputs_embeds"])


def test_media_without_projector_is_a_clear_error(tiny_llama_dir, tmp_path):
    from affect_llm.backends.transformers_backend import TransformersBackend
    from affect_llm.pipeline import Explainer

    ex = Explainer(backend=TransformersBackend(str(tiny_llama_dir), dtype="float32"), max_new_tokens=8)
    with pytest.raises(AffectError, match="soft tokens need a projector"):
        ex.explain(text="hi", media={"audio": _wav(tmp_path / "q.wav", 200)})


def test_projector_config_errors(toy_registry, audio_train_file, tmp_path):
    from affect_llm.train.config import ConfigError, load_config

    with pytest.raises(ConfigError) as err:
        load_config("sft", overrides=dict(train_file=audio_train_file, projector="conv", projector_encoders=["nope"],
                                          projector_stage=3, projector_init=str(tmp_path)))
    msg = str(err.value)
    for part in ("projector: must be one of", "projector_encoders: unknown ['nope']", "projector_stage: must be 1 or 2",
                 "is not a projector folder"):
        assert part in msg


def test_cli_explain_with_projector(tiny_llama_dir, tmp_path):
    """End to end through the CLI with a real registered encoder (prosody: librosa only, no model asset)."""
    import json

    from test_cli_explain import assert_user_error, run

    pytest.importorskip("librosa")
    lm, tok = _lm(tiny_llama_dir)
    AffectLM.build(lm, tok, ["prosody"], kind="linear", num_tokens=3).save_projectors(tmp_path / "proj")
    wav = _wav(tmp_path / "q.wav", 180, seconds=1.0)
    proc = run("explain", "--model", str(tiny_llama_dir), "--projector", str(tmp_path / "proj"), "--audio", wav,
               "--text", "Der Lappen liegt auf dem Eisschrank.", "--label-space", "anger,joy,neutral", "--json",
               "--dtype", "float32", "--max-new-tokens", "240")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"].endswith("+projector") and out["labels"][0] in {"anger", "joy", "neutral"}
    assert_user_error(run("explain", "--model", str(tiny_llama_dir), "--projector", str(tmp_path / "proj"),
                          "--text", "hi"), "--projector takes audio input")
