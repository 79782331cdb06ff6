"""Demonstration retrieval: leakage rules, label balance, manifest checks (fast hashing embedder), plus one
end-to-end check with the bundled MiniLM that skips when the asset is not pulled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from affect_llm.data_builders.registry import run_builder
from affect_llm.data_builders.schema import Sample

from affect_llm.errors import AffectError
from affect_llm.retrieval import DemoIndex, key_text

FIX = Path(__file__).parent / "fixtures" / "data"


class HashEmbedder:
    """Bag of hashed words: deterministic, instant, and similar texts get similar vectors."""

    def __init__(self, dim: int = 64, salt: str = "") -> None:
        self.dim, self.salt = dim, salt
        self.model_id = f"hash{dim}{salt}"
        self.fingerprint = hashlib.sha256(self.model_id.encode()).hexdigest()[:16]

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace("\n", " ").split():
                h = int(hashlib.md5((self.salt + w.strip(".,!?:")).encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0
            out[i, -1] += 0.01  # never all-zero
        return out


def s(i: str, text: str, label: str, dialogue: str | None = None, speaker: str | None = None,
      split: str = "train", context: list[dict] | None = None) -> Sample:
    meta = {"dialogue_id": dialogue} if dialogue else {}
    return Sample(id=f"t/{split}/{i}", dataset="t", split=split, text=text, labels=[label], speaker=speaker,
                  context=context or [], meta=meta)


POOL = [
    s("1", "I am so happy about the party", "joy", "d1", "Ann"),
    s("2", "the party was great fun", "joy", "d2", "Bob"),
    s("3", "I hate the party noise", "anger", "d3", "Ann"),
    s("4", "the party made me sad", "sadness", "d4", "Cid"),
    s("5", "happy happy party time", "joy", "d5", "Bob"),
    s("6", "what a surprise party", "surprise", "d6", "Ann"),
    s("7", "nothing to do with parties", "neutral", "d7", "Cid"),
    s("8", "the party the party the party", "joy", "d1", "Bob"),
]


@pytest.fixture()
def index(tmp_path: Path) -> DemoIndex:
    return DemoIndex.build(POOL, tmp_path / "idx", embedder=HashEmbedder())


def test_topk_and_no_leakage(index: DemoIndex, tmp_path: Path) -> None:
    query = POOL[0]  # itself and its dialogue-mate (id 8, same dialogue d1) must never come back
    got = [x.id for x in index.select(query, 7)]
    assert query.id not in got and "t/train/8" not in got and len(got) == 6
    # same text under another id (a duplicate) is not returned either
    dup = s("99", "I am so happy about the party", "joy", "d99", split="dev")
    assert "t/train/1" not in [x.id for x in index.select(dup, 7)]
    # a dev query whose dialogue id collides with a train dialogue id is not restricted by it
    other = s("x", "happy party", "joy", "d1", split="dev")
    assert "t/train/8" in [x.id for x in index.select(other, 7)]
    scores = [h.score for h in index.search(other, 7)]
    assert scores == sorted(scores, reverse=True)


def test_label_balanced_selection(index: DemoIndex) -> None:
    q = s("q", "happy party", "joy", "dq", split="dev")
    plain = [x.labels[0] for x in index.select(q, 3)]
    assert plain.count("joy") >= 2
    balanced = [x.labels[0] for x in index.select(q, 3, balanced=True)]
    assert len(set(balanced)) == 3


def test_speaker_boost(index: DemoIndex) -> None:
    q = s("q", "party", "joy", "dq", "Cid", split="dev")
    top = index.select(q, 2, speaker_boost=1.0)
    assert {x.speaker for x in top} == {"Cid"}


def test_manifest_and_model_mismatch(index: DemoIndex, tmp_path: Path) -> None:
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["embedding_model"] == "hash64" and m["normalize"] is True and m["index_type"] == "FlatIP"
    assert m["count"] == 8 and len(m["data_sha256"]) == 64
    again = DemoIndex.load(tmp_path / "idx", embedder=HashEmbedder())
    assert [x.id for x in again.select(POOL[2], 3)] == [x.id for x in index.select(POOL[2], 3)]
    with pytest.raises(AffectError, match="was built with embedding model 'hash64'"):
        DemoIndex.load(tmp_path / "idx", embedder=HashEmbedder(salt="other"))
    (tmp_path / "idx" / "samples.jsonl").write_text((tmp_path / "idx" / "samples.jsonl").read_text()[:-40] + "\n")
    with pytest.raises(AffectError, match="does not match the manifest's data hash"):
        DemoIndex.load(tmp_path / "idx", embedder=HashEmbedder())
    with pytest.raises(AffectError, match="not a demonstration index"):
        DemoIndex.load(tmp_path, embedder=HashEmbedder())


def test_hnsw_above_threshold_and_rebuild_in_place(tmp_path: Path) -> None:
    idx = DemoIndex.build(POOL, tmp_path / "idx", embedder=HashEmbedder(), hnsw_threshold=4)
    assert idx.manifest["index_type"].startswith("HNSW")
    got = idx.select(POOL[2], 3)
    assert len(got) == 3 and POOL[2].id not in [x.id for x in got]
    idx2 = DemoIndex.build(POOL[:5], tmp_path / "idx", embedder=HashEmbedder())  # replaces the old index
    assert DemoIndex.load(tmp_path / "idx", embedder=HashEmbedder()).manifest["count"] == 5 == len(idx2)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(AffectError, match="not an index folder"):
        DemoIndex.build(POOL, tmp_path / "other", embedder=HashEmbedder())


def test_speaker_aware_key_and_knn_vote(tmp_path: Path) -> None:
    result, _ = run_builder("meld", FIX / "MELD", "dev")
    third = result.records[2]
    assert key_text(third, 0) == "I waited in line all night."
    assert key_text(third, 2) == "A: I finally got the tickets!\nB: You did? How?\nA: I waited in line all night."
    idx = DemoIndex.build(POOL, tmp_path / "i", embedder=HashEmbedder())
    assert idx.knn_vote([s("q", "happy party joy", "joy", "dq", split="dev")], 3) == ["joy"]


def test_cli_build_and_query_with_fake_embedder(tmp_path: Path, monkeypatch) -> None:
    from affect_llm.data_builders.schema import write_samples
    from typer.testing import CliRunner

    import affect_llm.retrieval as r
    from affect_llm.cli.index_cmd import app

    monkeypatch.setattr(r, "SentenceEmbedder", lambda model=None: HashEmbedder())
    write_samples(tmp_path / "pool.jsonl", POOL)
    res = CliRunner().invoke(app, ["build", "--data", str(tmp_path / "pool.jsonl"), "--out", str(tmp_path / "idx")])
    assert res.exit_code == 0, res.output
    assert "indexed 8 samples (FlatIP, hash64" in res.output
    res = CliRunner().invoke(app, ["query", str(tmp_path / "idx"), "--text", "happy party", "--k", "2", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.strip().splitlines()]
    assert len(lines) == 2 and lines[0]["score"] >= lines[1]["score"]
    res = CliRunner().invoke(app, ["query", str(tmp_path / "idx"), "--data", str(tmp_path / "pool.jsonl"),
                                   "--id", "t/train/1", "--k", "3", "--json"])
    assert res.exit_code == 0, res.output
    ids = [json.loads(x)["id"] for x in res.output.strip().splitlines()]
    assert len(ids) == 3 and not {"t/train/1", "t/train/8"} & set(ids)  # itself and its dialogue


def test_demo_from_sample_fits_the_prompt() -> None:
    from affect_llm.pipeline import Demo

    d = Demo.from_sample(Sample(id="a", dataset="x", split="s", text="hi", speaker="Ann", labels=["joy", "love"],
                                context=[{"speaker": "Bob", "text": "hello"}], description="warm greeting"))
    assert d.model_dump() == {"text": "hi", "speaker": "Ann", "label": "joy, love"}


def _minilm_available() -> bool:
    try:
        from affect_llm import assets

        return assets.is_cached("minilm") and __import__("importlib").util.find_spec("sentence_transformers")
    except Exception:  # noqa: BLE001 - any import problem means: skip
        return False


@pytest.mark.skipif(not _minilm_available(), reason="MiniLM asset not pulled (affect-llm assets pull)")
def test_minilm_end_to_end(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pool = [
        s("a", "I'm so angry I could scream!", "anger", "d1"),
        s("b", "This makes me furious.", "anger", "d2"),
        s("c", "What a lovely sunny day, I am delighted.", "joy", "d3"),
        s("d", "I am thrilled, this is wonderful news!", "joy", "d4"),
        s("e", "The meeting is at three.", "neutral", "d5"),
    ]
    from affect_llm.retrieval import SentenceEmbedder

    emb = SentenceEmbedder()  # the bundled asset by name; loaded once to keep the suite fast
    idx = DemoIndex.build(pool, tmp_path / "m", embedder=emb)
    assert idx.manifest["embedding_model"] == "minilm" and idx.manifest["dim"] == 384
    loaded = DemoIndex.load(tmp_path / "m", embedder=emb)
    q = s("q", "He made me so angry.", "anger", "dq", split="dev")
    assert [x.labels[0] for x in loaded.select(q, 2)] == ["anger", "anger"]
    happy = s("h", "What a happy day!", "joy", "dh", split="dev")
    assert [x.labels[0] for x in loaded.select(happy, 2)] == ["joy", "joy"]
    with pytest.raises(AffectError, match="was built with embedding model 'minilm'"):
        DemoIndex.load(tmp_path / "m", embedder=HashEmbedder(dim=384))
