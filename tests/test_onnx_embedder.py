"""The bundled encoder on ONNX Runtime gives sentence-transformers' vectors and fingerprint."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def minilm_dir():
    from affect_llm.assets import MissingAssetError, asset_path

    try:
        return asset_path("minilm")
    except MissingAssetError:
        pytest.skip("minilm asset not pulled (run `affect-llm assets pull`)")


def test_onnx_matches_sentence_transformers(minilm_dir):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from affect_llm.retrieval import SentenceEmbedder, _weights_fingerprint

    texts = ["I can't believe you forgot my birthday again.", "ok", "Ross: It tastes like feet!",
             "Ünïcödé — émotions 😊 and a much longer sentence " * 30]  # the last is cut at 256 tokens
    emb = SentenceEmbedder()
    assert emb.onnx is not None, "the bundled encoder should run on ONNX Runtime"
    st = SentenceTransformer(str(minilm_dir), device="cpu")
    ref = st.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    got = emb.encode(texts, batch_size=3)  # a batch boundary and padding inside a batch
    assert got.shape == ref.shape == (4, emb.dim)
    np.testing.assert_allclose(got, ref, atol=2e-5)
    assert emb.fingerprint == _weights_fingerprint(st)


def test_encode_empty_list(minilm_dir):
    from affect_llm.retrieval import SentenceEmbedder

    assert SentenceEmbedder().encode([]).shape == (0, 384)
