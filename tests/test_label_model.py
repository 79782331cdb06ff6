"""The label model: projection onto closed label spaces, calibration search, and the recipe on a tiny corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from affect_llm.emotion_groups import mapping_to_space
from affect_llm.label_model import LabelModel, _fit_temperature


def test_mapping_to_closed_spaces():
    labels = ["annoyance", "admiration", "calm", "confusion", "neutral"]
    meld = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
    assert [meld[i] if i is not None else None for i in mapping_to_space(labels, meld)] == \
        ["anger", "joy", "neutral", "surprise", "neutral"]
    emory = ("neutral", "joyful", "peaceful", "powerful", "scared", "mad", "sad")
    # two joy-family labels in EmoryNLP: "joyful" (the family's own word) takes the family; calm is peaceful
    assert [emory[i] if i is not None else None for i in mapping_to_space(labels, emory)] == \
        ["mad", "joyful", "peaceful", None, "neutral"]


def test_projection_sums_mass_and_renormalises():
    lm = LabelModel(labels=["annoyance", "anger", "joy", "confusion"], coef=np.zeros((4, 2)), intercept=np.zeros(4))
    probs = np.array([[0.3, 0.2, 0.4, 0.1]])
    labels, proj = lm.project(probs, ["anger", "joy", "neutral"])
    assert labels == ["anger", "joy", "neutral"]
    assert proj[0] == pytest.approx([0.5 / 0.9, 0.4 / 0.9, 0.0])


def test_temperature_search_recovers_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    true = rng.normal(size=(2000, 3))
    true[np.arange(2000), y] += 1.0
    assert _fit_temperature(true * 3.0, y) == pytest.approx(3.0, rel=0.2)  # logits 3x too sharp


def _minilm():
    from affect_llm import assets

    if not assets.is_cached("minilm"):
        pytest.skip("MiniLM asset not pulled")
    pytest.importorskip("sklearn")


def test_label_model_recipe_on_a_tiny_corpus(tmp_path):
    _minilm()
    from affect_llm.cli.app import app

    rows = []
    happy = ["I love this so much!", "What a wonderful day.", "This is great news!", "I'm so happy for you.",
             "Best party ever!", "Yay, we won!"]
    sad = ["I miss her terribly.", "My dog died.", "I feel so alone.", "Everything went wrong today.",
           "I lost my job.", "Nobody came to my birthday."]
    for i, t in enumerate(happy + sad):
        rows.append({"id": f"t/train/{i}", "dataset": "t", "split": "train", "text": t,
                     "labels": ["joy" if i < len(happy) else "sadness"]})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "lm"
    res = CliRunner().invoke(app, ["train", "label-model", "--train_file", str(data), "--output_dir", str(out)])
    assert res.exit_code == 0, res.output
    lm = LabelModel.load(out)
    assert lm.labels == ["joy", "sadness"] and lm.card["samples"] == 12
    assert lm.lexical is not None and lm.lex_coef.shape == (2, len(lm.lexical)) and "TF-IDF" in lm.card["features"]
    from affect_llm.label_model import Query

    p = lm.predict([Query("I am thrilled, this is fantastic!"), Query("I cried all night, I feel empty.")])
    assert p[0, 0] > 0.5 and p[1, 1] > 0.5
    # refuses to write the model onto its own input
    from affect_llm.errors import AffectError

    res = CliRunner().invoke(app, ["train", "label-model", "--train_file", str(data), "--output_dir", str(data)])
    assert isinstance(res.exception, AffectError) and "not a folder" in str(res.exception)  # main() prints it


@pytest.mark.parametrize("lora", [0, 4])
def test_recipe_fine_tunes_the_encoder_into_the_model_folder(tmp_path, lora):
    """`--encoder-epochs` trains the encoder (all weights, or LoRA adapters), saves it inside the folder, and
    the loaded model embeds with it."""
    _minilm()
    pytest.importorskip("onnxruntime")
    from affect_llm.cli.app import app
    from affect_llm.label_model import Query
    from affect_llm.retrieval import SentenceEmbedder

    texts = {"joy": ["I love this so much!", "What a wonderful day.", "This is great news!", "Yay, we won!"],
             "anger": ["Get out of my house!", "You ruined everything, idiot.", "I hate you.", "Shut up!"]}
    rows = [{"id": f"t/train/{lab}{i}", "dataset": "t", "split": "train", "text": t, "labels": [lab]}
            for lab, ts in texts.items() for i, t in enumerate(ts * 3)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "lm"
    res = CliRunner().invoke(app, ["train", "label-model", "--train_file", str(data), "--output_dir", str(out),
                                   "--encoder-epochs", "3", "--encoder-lora", str(lora)])  # 1 step per epoch,
    # the first one warms up at lr 0
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm", "train.jsonl"]  # no staging folder left
    lm = LabelModel.load(out)
    assert lm.card["encoder"]["rows"] > 0 and lm.card["encoder"]["base"] == "minilm"
    size = sum(f.stat().st_size for f in (out / "encoder").iterdir())
    if lora:  # adapters only, merged into the cache at load
        assert size < 2_000_000 and (out / "encoder" / "encoder_base.json").is_file()
        assert "merged" in lm.embedder and LabelModel.load(out).embedder == lm.embedder  # merged once
    else:
        assert lm.embedder == str(out / "encoder") and size > 50_000_000
    base = SentenceEmbedder("minilm").encode(["Yay, we won!"])
    tuned = SentenceEmbedder(lm.embedder)
    assert tuned.onnx is not None  # the fine-tuned copy runs on ONNX Runtime like the bundled one
    assert not np.allclose(tuned.encode(["Yay, we won!"]), base, atol=1e-4)  # the weights did change
    p = lm.predict([Query("What a great day, I love it!"), Query("I hate you, get out!")])
    assert p[0, lm.labels.index("joy")] > 0.5 and p[1, lm.labels.index("anger")] > 0.5


def test_encoder_lora_without_epochs_is_refused(tmp_path):
    pytest.importorskip("sklearn")
    from affect_llm.cli.app import app
    from affect_llm.errors import AffectError

    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"id": "t/train/0", "dataset": "t", "split": "train", "text": "Yay!",
                                "labels": ["joy"]}) + "\n" + json.dumps({"id": "t/train/1", "dataset": "t",
                                "split": "train", "text": "Ugh.", "labels": ["anger"]}) + "\n")
    res = CliRunner().invoke(app, ["train", "label-model", "--train_file", str(data), "--output_dir",
                                   str(tmp_path / "lm"), "--encoder-lora", "8"])
    assert isinstance(res.exception, AffectError) and "--encoder-epochs" in str(res.exception)
    assert not (tmp_path / "lm").exists()


def test_damaged_encoder_adapters_are_a_clear_error(tmp_path):
    _minilm()
    pytest.importorskip("peft")
    from affect_llm.errors import AffectError
    from affect_llm.train.encoder import BASE_FILE, encoder_folder

    (tmp_path / BASE_FILE).write_text('{"base": "minilm"}')
    (tmp_path / "adapter_config.json").write_text("{not json")
    with pytest.raises(AffectError, match="damaged"):
        encoder_folder(tmp_path)


def test_damaged_label_model_is_a_clear_error(tmp_path):
    from affect_llm.errors import AffectError

    (tmp_path / "label_model.npz").write_bytes(b"not a zip")
    (tmp_path / "label_model.json").write_text("{}")
    with pytest.raises(AffectError, match="damaged"):
        LabelModel.load(tmp_path)
    with pytest.raises(AffectError, match="lacks"):
        LabelModel.load(tmp_path / "nope")


def test_lexical_features_match_scikit_learn():
    pytest.importorskip("sklearn")
    from affect_llm.lexical_features import fit_vectorizer, from_vectorizer

    corpus = ["Oh my God! Oh my God!!", "I can't believe it...", "ugh. fine.", "Yay, we won! We won!",
              "What?! No way.", "I am so sorry.", "a"]
    vec = fit_vectorizer(corpus)
    lex = from_vectorizer(vec)
    queries = corpus + ["OH MY GOD we won?!", "nothing known here", ""]
    want = vec.transform(queries).toarray()
    got = np.zeros_like(want)
    for n, (idx, val) in enumerate(lex.transform(queries)):
        got[n, idx] = val
    assert np.allclose(got, want) and want[-2:].sum() == 0  # unknown words and empty text: no terms
    coef = np.random.default_rng(0).normal(size=(3, len(lex)))
    assert np.allclose(lex.logits(queries, coef), want @ coef.T)


def test_lexical_weights_survive_save_and_load(tmp_path):
    from affect_llm.lexical_features import LexicalFeatures

    lex = LexicalFeatures(terms=["oh", "god", "oh god", "!"], idf=np.array([1.2, 1.5, 2.0, 1.1]))
    lex_coef = np.array([[2.0, 1.0, 3.0, 0.5], [-1.0, 0.0, -2.0, 0.25]])
    lm = LabelModel(labels=["surprise", "neutral"], coef=np.zeros((2, 4)), intercept=np.array([0.0, 0.5]),
                    lexical=lex, lex_coef=lex_coef)
    lm.save(tmp_path)
    back = LabelModel.load(tmp_path)
    feats, texts = np.zeros((2, 4)), ["Oh God!", "fine"]
    assert back.lexical.terms == lex.terms
    assert np.allclose(back.logits(feats, texts), lm.logits(feats, texts), atol=1e-2)
    assert back.predict_features(feats, texts)[0].argmax() == 0  # "oh", "god", "oh god", "!" all say surprise
    assert back.predict_features(feats, texts)[1].argmax() == 1  # no known term: the intercept decides


def test_bundled_label_model_embeds_with_its_adapted_encoder():
    """The shipped model's LoRA adapters are merged into the MiniLM asset (cached) and change its vectors."""
    _minilm()
    pytest.importorskip("peft")
    from affect_llm.label_model import Query, resolve_label_model

    lm = resolve_label_model("default", None)
    assert lm.card["encoder"]["lora_rank"] == 8 and "merged" in lm.embedder
    p = lm.predict([Query("Thank you so much, this means the world to me!"), Query("I hate you, get out!")])
    top = [lm.labels[i] for i in p.argmax(1)]
    assert top[0] == "gratitude" and top[1] in ("anger", "annoyance", "disgust"), top
