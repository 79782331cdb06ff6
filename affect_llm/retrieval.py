"""Demonstration retrieval: a FAISS index over sentence embeddings of canonical samples.

Build once from a training pool (`affect-llm index build --data train.jsonl --out DIR`), then pick the
k most similar labelled samples as in-context demonstrations for each query (InstructERC / PRC-Emo
style). What is stored in DIR:

- `index.faiss`: flat inner product over L2-normalised embeddings (exact cosine), or HNSW once the
  pool is larger than `hnsw_threshold` (exact search costs O(n) per query; HNSW stays ~O(log n));
- `samples.jsonl`: the pool, in index order (canonical format, so a demo is a full `Sample`);
- `manifest.json`: embedding model id + weight fingerprint, normalisation, key format, the pool's
  sha256 and counts. Loading with a different embedding model is an error: vectors of two models
  live in unrelated spaces and would silently return nonsense neighbours.

Leakage rules (always on): a query never gets back itself (same id, or the same text), nor any sample
of its own dialogue, so dev/test figures are never inflated by near-copies of the query.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from affect_llm.errors import AffectError
from affect_llm.extras import is_available, require
from affect_llm.fileio import replace_dir
from affect_llm.hashing import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from affect_llm.data_builders.schema import Sample

INDEX_FORMAT = 1
DEFAULT_EMBEDDER = "minilm"
HNSW_THRESHOLD = 100_000
"""Pools larger than this use HNSW (M=32): flat search of 100k × 384 floats costs ~10 ms per query."""
HNSW_M = 32
MANIFEST, INDEX_FILE, SAMPLES_FILE = "manifest.json", "index.faiss", "samples.jsonl"


# ---------------------------------------------------------------------------------------- embedders


class Embedder(Protocol):
    """What the index needs from an embedding model."""

    model_id: str  # what the user named (asset name, path or hub id)
    fingerprint: str  # identifies the weights, whatever the name
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dim), not normalised."""
        ...


class SentenceEmbedder:
    """A sentence-transformers model: the bundled MiniLM asset by default, or a local path / hub id."""

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        # Only sentence-transformers: the label model embeds with this class and needs no FAISS index.
        require("retrieval", "sentence embeddings", "sentence_transformers")
        self.model_id, load_from = resolve_embedder(model)
        self.onnx = None
        local = self.model_id == DEFAULT_EMBEDDER or (Path(load_from) / "tokenizer.json").is_file()
        if local and device == "cpu" and is_available("onnxruntime"):
            # The bundled encoder (or a fine-tuned copy in a label-model folder) runs on ONNX Runtime: same
            # vectors, ~10 s less start-up (onnx_embedder.py). Other architectures stay on sentence-transformers.
            from affect_llm.onnx_embedder import OnnxSentenceEncoder, UnsupportedModel

            try:
                self.onnx = OnnxSentenceEncoder(load_from)
                self.model, self.dim, self.fingerprint = None, self.onnx.dim, self.onnx.fingerprint
                return
            except UnsupportedModel:
                self.onnx = None
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        from affect_llm.threads import configure_threads

        configure_threads()

        hf_logging.disable_progress_bar()  # a per-load weight bar is noise before a one-line CLI answer
        try:
            self.model = SentenceTransformer(load_from, device=device)
        except OSError as e:
            raise AffectError(f"cannot load embedding model {self.model_id!r}: {e}") from None
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.fingerprint = _weights_fingerprint(self.model)

    def encode(self, texts: list[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        import numpy as np

        if self.onnx is not None:
            return self.onnx.encode(texts, batch_size=batch_size, progress=progress)
        emb = self.model.encode(texts, batch_size=batch_size, show_progress_bar=progress,
                                convert_to_numpy=True, normalize_embeddings=False)
        return np.ascontiguousarray(emb, dtype=np.float32)


def resolve_embedder(model: str | None) -> tuple[str, str]:
    """(model id to record, what to load): an asset name, an existing folder, or a hub id."""
    from affect_llm import assets

    model = model or DEFAULT_EMBEDDER
    if model in assets.REGISTRY:
        if assets.REGISTRY[model].role != "embedder":
            raise AffectError(f"asset {model!r} is a {assets.REGISTRY[model].role}, not an embedding model")
        return model, str(assets.asset_path(model))
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve()), str(path)
    if "/" not in model:
        raise AffectError(f"unknown embedding model {model!r}: not an asset (minilm), a folder or a hub id")
    return model, model


def _weights_fingerprint(model: Any) -> str:
    """sha256 of a slice of every parameter tensor: same weights ⇔ same fingerprint. Every tensor, because a
    fine-tuned encoder (LoRA merged into the attention and dense layers) keeps its first and last ones."""
    import torch

    h = hashlib.sha256()
    for p in model.parameters():
        h.update(str(tuple(p.shape)).encode())
        h.update(p.detach().flatten()[:512].to(torch.float32).cpu().numpy().tobytes())
    return h.hexdigest()[:16]


# -------------------------------------------------------------------------------------------- keys


def key_text(sample: Sample, context_turns: int = 0) -> str:
    """What gets embedded: the utterance, optionally after its last `context_turns` turns.

    Speaker-aware context: turns are tagged with roles relative to the target speaker ("A" is the
    target speaker, then B, C, ... in order of appearance) rather than names, so a demo matches the
    *shape* of the exchange (a speaker repeating themselves vs answering someone) and names from one
    show do not pull neighbours from the same characters.
    """
    lines: list[str] = []
    if context_turns > 0 and sample.context:
        roles: dict[str, str] = {}
        if sample.speaker:
            roles[sample.speaker] = "A"

        def role(name: str) -> str:
            if name not in roles:
                roles[name] = chr(ord("A") + len(roles)) if len(roles) < 26 else "?"
            return roles[name]

        for t in sample.context[-context_turns:]:
            lines.append(f"{role(t.speaker or '?')}: {t.text}")
        if sample.text.strip():
            lines.append(f"{role(sample.speaker or '?')}: {sample.text}")
        return "\n".join(lines)
    if sample.text.strip():
        return sample.text
    # no text (e.g. emotion-impact samples): fall back to the latest context turn(s)
    return "\n".join(t.text for t in sample.context[-max(context_turns, 1):])


def _norm_text(s: str) -> str:
    return " ".join(s.lower().split())


def _dialogue_key(s: Sample) -> str | None:
    return s.dialogue_id


# ------------------------------------------------------------------------------------------- index


@dataclass
class Hit:
    sample: Sample
    score: float


class DemoIndex:
    """A loaded demonstration index: `DemoIndex.load(dir).select(sample, k) -> list[Sample]`."""

    def __init__(self, index: Any, samples: list[Sample], manifest: dict[str, Any], embedder: Embedder):
        self.index, self.samples, self.manifest, self.embedder = index, samples, manifest, embedder
        self.context_turns = int(manifest["key"]["context_turns"])
        self.normalize = bool(manifest["normalize"])
        self._dialogue = [_dialogue_key(s) for s in samples]
        self._norm = [_norm_text(s.text) for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    # -- build / load --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        samples: Sequence[Sample],
        out: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        model: str | None = None,
        context_turns: int = 0,
        normalize: bool = True,
        hnsw_threshold: int = HNSW_THRESHOLD,
        batch_size: int = 32,
        progress: bool = False,
        data_path: str | None = None,
    ) -> DemoIndex:
        """Embed `samples` (only labelled ones are useful as demos) and write the index folder atomically."""
        require("retrieval", "retrieval", "faiss")
        import faiss

        from affect_llm.data_builders.schema import write_samples

        if context_turns < 0:
            raise AffectError(f"context_turns must be >= 0, got {context_turns}")
        pool = [s for s in samples if s.labels]
        if not pool:
            raise AffectError("no labelled samples to index (demonstrations need labels)")
        ids = [s.id for s in pool]
        if len(set(ids)) != len(ids):
            raise AffectError("duplicate sample ids in the pool; ids must be unique")
        emb = embedder or SentenceEmbedder(model)
        t0 = time.perf_counter()
        vecs = emb.encode([key_text(s, context_turns) for s in pool], batch_size=batch_size, progress=progress)
        embed_s = time.perf_counter() - t0
        if vecs.shape != (len(pool), emb.dim):
            raise AffectError(f"embedder returned shape {vecs.shape}, expected ({len(pool)}, {emb.dim})")
        if normalize:
            faiss.normalize_L2(vecs)
        if len(pool) > hnsw_threshold:
            index = faiss.IndexHNSWFlat(emb.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index_type = f"HNSWFlat(M={HNSW_M}, IP)"
        else:
            index = faiss.IndexFlatIP(emb.dim)
            index_type = "FlatIP"
        t1 = time.perf_counter()
        index.add(vecs)
        add_s = time.perf_counter() - t1

        out = Path(out)
        if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise AffectError(f"--out {out} exists and is not an index folder; choose an empty or new folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            write_samples(tmp / SAMPLES_FILE, pool)
            faiss.write_index(index, str(tmp / INDEX_FILE))
            labels: dict[str, int] = defaultdict(int)
            for s in pool:
                labels[s.labels[0]] += 1
            manifest = {
                "format": INDEX_FORMAT,
                "embedding_model": emb.model_id,
                "embedding_fingerprint": emb.fingerprint,
                "dim": emb.dim,
                "normalize": normalize,
                "metric": "inner_product",
                "index_type": index_type,
                "hnsw_threshold": hnsw_threshold,
                "key": {"context_turns": context_turns, "speaker_roles": context_turns > 0},
                "count": len(pool),
                "skipped_unlabelled": len(samples) - len(pool),
                "data_sha256": sha256_file(tmp / SAMPLES_FILE),
                "source": data_path,
                "datasets": sorted({s.dataset for s in pool}),
                "label_distribution": dict(sorted(labels.items(), key=lambda kv: -kv[1])),
                "timings_s": {"embed": round(embed_s, 3), "add": round(add_s, 3)},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(index, pool, manifest, emb)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, embedder: Embedder | None = None,
             model: str | None = None, verify: bool = True) -> DemoIndex:
        """Open an index folder. Uses the manifest's embedding model unless one is given; a different
        model (by weight fingerprint) is an error."""
        require("retrieval", "retrieval", "faiss")
        import faiss

        from affect_llm.data_builders.schema import read_samples

        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise AffectError(f"{path} is not a demonstration index (no {MANIFEST}); build one with "
                              "`affect-llm index build`")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError, OSError) as err:
            raise AffectError(f"{mpath} is damaged ({err}); rebuild the index with `affect-llm index build`") from None
        missing = [k for k in ("data_sha256", "embedding_model", "embedding_fingerprint", "dim", "count")
                   if k not in manifest]
        if missing and manifest.get("format") == INDEX_FORMAT:
            raise AffectError(f"{mpath} is damaged (no {', '.join(missing)}); rebuild the index")
        if manifest.get("format") != INDEX_FORMAT:
            raise AffectError(f"{path}: index format {manifest.get('format')} is not supported "
                              f"(expected {INDEX_FORMAT}); rebuild it")
        if verify and sha256_file(path / SAMPLES_FILE) != manifest["data_sha256"]:
            raise AffectError(f"{path}/{SAMPLES_FILE} does not match the manifest's data hash; rebuild the index")
        if embedder is None:
            embedder = SentenceEmbedder(model or manifest["embedding_model"])
        if embedder.fingerprint != manifest["embedding_fingerprint"] or embedder.dim != manifest["dim"]:
            raise AffectError(
                f"{path} was built with embedding model {manifest['embedding_model']!r} "
                f"(fingerprint {manifest['embedding_fingerprint']}, dim {manifest['dim']}), not "
                f"{embedder.model_id!r} (fingerprint {embedder.fingerprint}, dim {embedder.dim}); "
                "rebuild the index with that model or load it with the original one"
            )
        try:
            index = faiss.read_index(str(path / INDEX_FILE))
        except RuntimeError as err:  # faiss reports a missing or truncated file as a RuntimeError
            why = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
            raise AffectError(f"{path / INDEX_FILE} is damaged or truncated ({why[:160]}); rebuild the index") from None
        samples = read_samples(path / SAMPLES_FILE)
        if index.ntotal != len(samples) or len(samples) != manifest["count"]:
            raise AffectError(f"{path}: index has {index.ntotal} vectors but {len(samples)} samples; rebuild it")
        return cls(index, samples, manifest, embedder)

    # -- query ---------------------------------------------------------------------------------

    def _embed(self, queries: Sequence[Sample]) -> np.ndarray:
        import faiss

        vecs = self.embedder.encode([key_text(q, self.context_turns) for q in queries])
        if self.normalize:
            faiss.normalize_L2(vecs)
        return vecs

    def _allowed(self, q: Sample, j: int) -> bool:
        s = self.samples[j]
        if s.id == q.id:
            return False
        qd = _dialogue_key(q)
        if qd is not None and self._dialogue[j] == qd:
            return False
        qt = _norm_text(q.text)
        return not (qt and qt == self._norm[j])

    def search_many(self, queries: Sequence[Sample], k: int, *, balanced: bool = False,
                    speaker_boost: float = 0.0) -> list[list[Hit]]:
        """Top-k leak-free demonstrations per query, most similar first.

        balanced: round-robin over labels (each label's best candidate in turn, labels ordered by
        their best score) among the nearest candidates, so one frequent class cannot fill all k slots.
        speaker_boost: added to the similarity of candidates by the query's speaker (same name).
        """
        if k < 1:
            raise AffectError(f"k must be >= 1, got {k}")
        if not queries:
            return []
        vecs = self._embed(queries)
        n = len(self.samples)
        want = min(n, max(k * (12 if balanced else 4), k + 64) + (200 if speaker_boost else 0))
        results: list[list[Hit]] = []
        cand_lists = self._knn(vecs, want)
        for qi, q in enumerate(queries):
            cands = cand_lists[qi]
            fetch = want
            while True:
                allowed = [(j, sc) for j, sc in cands if self._allowed(q, j)]
                if len(allowed) >= (k if not balanced else min(n, k * 12)) or fetch >= n:
                    break
                fetch = min(n, fetch * 4)
                cands = self._knn(vecs[qi: qi + 1], fetch)[0]
            if speaker_boost and q.speaker:
                allowed = [(j, sc + speaker_boost if self.samples[j].speaker == q.speaker else sc)
                           for j, sc in allowed]
                allowed.sort(key=lambda t: -t[1])
            picked = _balanced(allowed, self.samples, k) if balanced else allowed[:k]
            results.append([Hit(self.samples[j], float(sc)) for j, sc in picked])
        return results

    def _knn(self, vecs: np.ndarray, fetch: int) -> list[list[tuple[int, float]]]:
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = max(64, fetch)
        scores, idx = self.index.search(vecs, fetch)
        return [[(int(j), float(s)) for j, s in zip(row_i, row_s) if j >= 0] for row_i, row_s in zip(idx, scores)]

    def search(self, query: Sample, k: int, **kw: Any) -> list[Hit]:
        return self.search_many([query], k, **kw)[0]

    def select(self, sample: Sample, k: int, *, balanced: bool = False, speaker_boost: float = 0.0) -> list[Sample]:
        """The k demonstrations for one query sample (the prompt builder's entry point)."""
        return [h.sample for h in self.search(sample, k, balanced=balanced, speaker_boost=speaker_boost)]

    def select_many(self, samples: Sequence[Sample], k: int, **kw: Any) -> list[list[Sample]]:
        return [[h.sample for h in hits] for hits in self.search_many(samples, k, **kw)]

    def knn_vote(self, samples: Sequence[Sample], k: int) -> list[str]:
        """Pure kNN baseline: the label with the largest summed similarity among the k neighbours."""
        out = []
        for hits in self.search_many(samples, k):
            votes: dict[str, float] = defaultdict(float)
            for h in hits:
                for label in h.sample.labels[:1]:
                    votes[label] += h.score
            out.append(max(votes.items(), key=lambda kv: kv[1])[0] if votes else "")
        return out


def _balanced(cands: list[tuple[int, float]], samples: list[Sample], k: int) -> list[tuple[int, float]]:
    by_label: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for j, sc in cands:
        by_label[samples[j].labels[0] if samples[j].labels else ""].append((j, sc))
    order = sorted(by_label, key=lambda lab: -by_label[lab][0][1])
    picked: list[tuple[int, float]] = []
    depth = 0
    while len(picked) < k and any(depth < len(by_label[lab]) for lab in order):
        for lab in order:
            if depth < len(by_label[lab]) and len(picked) < k:
                picked.append(by_label[lab][depth])
        depth += 1
    return sorted(picked, key=lambda t: -t[1])
