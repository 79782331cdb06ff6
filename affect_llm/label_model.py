"""A small, fast label model over frozen sentence embeddings: the prior the LLM reconciles and explains.

Why: a 135M LLM fine-tuned on a few hundred samples learns the answer format, not the data; a linear head
over frozen MiniLM embeddings learns from *all* of a corpus in minutes on a CPU (TinyEmo's split of
classification from generation). The features are speaker-aware: the target turn, the mean of the last
two turns by other speakers, and the speaker's own previous turn (zeros where absent), each an
L2-normalised MiniLM embedding, plus the target turn's word / word-pair TF-IDF (lexical_features.py: the
words a sentence embedding smooths away). The head is a multinomial logistic regression (scikit-learn)
whose temperature is fitted on a held-out tenth of the training data, so its probabilities mean something.

At run time it is a matrix product (numpy) after one embedding call; scikit-learn is needed only to train.
A model predicts over the labels it was trained on (the bundled one: GoEmotions' 28 + EmoryNLP's mapped
to emotion words); `project` maps that onto a task's closed label space through the emotion families.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affect_llm.errors import AffectError
from affect_llm.extras import require
from affect_llm.lexical_features import LexicalFeatures

MODEL_FILE = "label_model.npz"
ENCODER_DIR = "encoder"  # a fine-tuned encoder, inside the model folder (train/encoder.py)
CARD_FILE = "label_model.json"
CONTEXT_OTHERS = 2  # how many earlier turns of other speakers are averaged into the context feature


@dataclass
class Query:
    """What the label model sees of one request."""

    text: str
    context: Sequence[Any] = ()  # Turn-like objects with .speaker and .text, oldest first
    speaker: str | None = None


def bundled_label_model_dir() -> Path | None:
    from importlib import resources

    path = Path(str(resources.files("affect_llm").joinpath("label_models/default")))
    return path if (path / MODEL_FILE).is_file() else None


def _context_parts(q: Query) -> tuple[list[str], str | None]:
    others: list[str] = []
    own: str | None = None
    for t in reversed(list(q.context)):
        text = (getattr(t, "text", None) or (t.get("text") if isinstance(t, dict) else "") or "").strip()
        spk = getattr(t, "speaker", None) if not isinstance(t, dict) else t.get("speaker")
        if not text:
            continue
        if q.speaker and spk == q.speaker:
            if own is None:
                own = text
        elif len(others) < CONTEXT_OTHERS:
            others.append(text)
        if own is not None and len(others) >= CONTEXT_OTHERS:
            break
    return others, own


class EmbeddingCache:
    """Text -> normalised embedding, optionally persisted (training embeds 50k+ turns once)."""

    def __init__(self, embedder: Any, path: Path | None = None) -> None:
        self.embedder, self.path = embedder, path
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            with np.load(path) as z:
                self.vectors = dict(zip(z["keys"].tolist(), z["vectors"]))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def embed(self, texts: list[str], progress: bool = False) -> dict[str, np.ndarray]:
        todo = sorted({t for t in texts if self.key(t) not in self.vectors})
        if todo:
            vecs = self.embedder.encode(todo, batch_size=64, progress=progress)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
            for t, v in zip(todo, vecs):
                self.vectors[self.key(t)] = v.astype(np.float32)
            if self.path is not None:
                import io

                from affect_llm.fileio import atomic_write

                buf = io.BytesIO()
                keys = list(self.vectors)
                np.savez(buf, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
                atomic_write(self.path, buf.getvalue())
        return {t: self.vectors[self.key(t)] for t in set(texts)}


def featurize(cache: EmbeddingCache, queries: Sequence[Query], progress: bool = False) -> np.ndarray:
    """(N, 3*d) features: target turn, mean of the last other-speaker turns, the speaker's previous turn."""
    parts = [_context_parts(q) for q in queries]
    texts = [q.text for q in queries] + [t for others, own in parts for t in others + ([own] if own else [])]
    vec = cache.embed(texts, progress=progress)
    d = next(iter(vec.values())).shape[0] if vec else cache.embedder.dim
    out = np.zeros((len(queries), 3 * d), dtype=np.float32)
    for i, (q, (others, own)) in enumerate(zip(queries, parts)):
        out[i, :d] = vec[q.text]
        if others:
            out[i, d : 2 * d] = np.mean([vec[t] for t in others], axis=0)
        if own:
            out[i, 2 * d :] = vec[own]
    return out


@dataclass
class LabelModel:
    labels: list[str]
    coef: np.ndarray  # (L, D) over the MiniLM features
    intercept: np.ndarray  # (L,)
    temperature: float = 1.0
    embedder: str = "minilm"
    lexical: LexicalFeatures | None = None  # the turn's TF-IDF terms, when the model was trained with them
    lex_coef: np.ndarray | None = None  # (L, V)
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    _cache: EmbeddingCache | None = None

    # -- inference -------------------------------------------------------------------------------
    def attach_cache(self, cache: EmbeddingCache) -> None:
        """Use `cache` (e.g. a persisted one while building training data) for the embeddings."""
        self._cache = cache

    def warm(self) -> None:
        """Load the embedding model now (a server or CLI pays it at start-up, not in the first answer)."""
        self._embedder_cache()

    def _embedder_cache(self) -> EmbeddingCache:
        if self._cache is None:
            from affect_llm.retrieval import SentenceEmbedder

            self._cache = EmbeddingCache(SentenceEmbedder(self.embedder))
        if len(self._cache.vectors) > 50_000:  # a long-running server must not grow without bound
            self._cache.vectors.clear()
        return self._cache

    def logits(self, feats: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """`feats` from `featurize`; `texts` the target turns (for the lexical terms)."""
        z = feats @ self.coef.T + self.intercept
        if self.lexical is not None and self.lex_coef is not None:
            z = z + self.lexical.logits(texts, self.lex_coef)
        return z

    def predict_features(self, feats: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        z = self.logits(feats, texts) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, queries: Sequence[Query]) -> np.ndarray:
        """(N, L) label probabilities."""
        if not queries:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.predict_features(featurize(self._embedder_cache(), queries), [q.text for q in queries])

    def project(self, probs: np.ndarray, space: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
        """Probabilities over a closed `space` (None: the model's own labels). Mass of labels with no place
        in the space is dropped and the rest renormalised."""
        if not space:
            return list(self.labels), probs
        from affect_llm.emotion_groups import mapping_to_space

        idx = mapping_to_space(self.labels, space)
        out = np.zeros((probs.shape[0], len(space)), dtype=np.float64)
        for j, i in enumerate(idx):
            if i is not None:
                out[:, i] += probs[:, j]
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / len(space))
        return list(space), np.where(total > 0, out / np.maximum(total, 1e-12), uniform)

    # -- files -----------------------------------------------------------------------------------
    def save(self, out_dir: Path) -> None:
        import io

        from affect_llm.fileio import atomic_write, write_json

        out_dir = Path(out_dir)
        buf = io.BytesIO()
        lexical = {}
        if self.lexical is not None and self.lex_coef is not None:
            # float16 keeps the shipped file small; the logit error (< 1e-2) is far below the label margins
            lexical = {"lex_terms": np.array(self.lexical.terms), "lex_idf": self.lexical.idf,
                       "lex_coef": self.lex_coef.astype(np.float16)}
        np.savez_compressed(buf, coef=self.coef.astype(np.float32), intercept=self.intercept.astype(np.float32),
                            labels=np.array(self.labels), **lexical)
        atomic_write(out_dir / MODEL_FILE, buf.getvalue())
        write_json(out_dir / CARD_FILE, {**self.card, "labels": self.labels, "temperature": self.temperature,
                                         "embedder": self.embedder})

    @classmethod
    def load(cls, path: str | Path) -> "LabelModel":
        path = Path(path)
        if not (path / MODEL_FILE).is_file() or not (path / CARD_FILE).is_file():
            raise AffectError(f"label model folder {path} lacks {MODEL_FILE} / {CARD_FILE} "
                              "(make one with `affect-llm train label-model`)")
        try:
            card = json.loads((path / CARD_FILE).read_text("utf-8"))
            with np.load(path / MODEL_FILE) as z:
                coef, intercept, labels = z["coef"], z["intercept"], [str(x) for x in z["labels"]]
                lexical, lex_coef = None, None
                if "lex_terms" in z.files:
                    lexical = LexicalFeatures(terms=[str(t) for t in z["lex_terms"]], idf=z["lex_idf"])
                    lex_coef = z["lex_coef"].astype(np.float32)
                    if lex_coef.shape != (len(labels), len(lexical)):
                        raise ValueError(f"lexical weights {lex_coef.shape} do not fit {len(labels)} labels")
        except (OSError, ValueError, KeyError) as err:
            raise AffectError(f"label model in {path} is damaged: {err}") from None
        embedder = str(card.get("embedder", "minilm"))
        if embedder == ENCODER_DIR:  # the model's own fine-tuned encoder (whole, or LoRA adapters)
            from affect_llm.train.encoder import BASE_FILE, encoder_folder

            enc = path / ENCODER_DIR
            if not ((enc / "modules.json").is_file() or (enc / BASE_FILE).is_file()):
                raise AffectError(f"label model in {path} is damaged: its fine-tuned encoder folder {enc} is missing")
            embedder = str(encoder_folder(enc))
        return cls(labels=labels, coef=coef, intercept=intercept, temperature=float(card.get("temperature", 1.0)),
                   embedder=embedder, card=card, path=path, lexical=lexical,
                   lex_coef=lex_coef)


def resolve_label_model(choice: str | None, model: str | None) -> LabelModel | None:
    """"default" = the bundled label model (for the embedded LLM only, like the bundled adapter), None = off,
    anything else a folder."""
    if choice is None:
        return None
    if choice == "default":
        from affect_llm.assets import DEFAULT_LLM

        if model not in (None, DEFAULT_LLM):
            return None
        bundled = bundled_label_model_dir()
        return LabelModel.load(bundled) if bundled else None
    if not Path(choice).is_dir():
        raise AffectError(f"label model folder not found: {choice}")
    return LabelModel.load(choice)


# ---------------------------------------------------------------------------------------- training
def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising held-out negative log-likelihood (a 1-d search)."""
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 61)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = float(-(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def train_label_model(
    train_files: Sequence[str | Path],
    output_dir: str | Path,
    *,
    embedder: str | None = None,
    to_vocabulary: bool = False,
    c: float = 1.0,
    max_iter: int = 300,
    seed: int = 0,
    embedding_cache: str | Path | None = None,
    lexical: bool = True,
    encoder_epochs: float = 0.0,
    encoder_lora: int = 0,
    progress: bool = True,
) -> tuple[LabelModel, dict[str, Any]]:
    """Train on canonical JSONL files (any builder's output). Multi-label samples count once per label with
    weight 1/n. `to_vocabulary` maps closed-set words (joyful, mad, ...) to the bundled emotion words;
    `lexical` adds the turn's TF-IDF terms to the MiniLM features; `encoder_epochs` > 0 first fine-tunes the
    encoder on the training turns (train/encoder.py) and saves it inside the model folder (`encoder_lora` > 0:
    only LoRA adapters of that rank)."""
    require("retrieval", "training a label model", "sklearn")
    import contextlib
    import shutil

    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from affect_llm.data_builders.schema import read_samples
    from affect_llm.hashing import sha256_file
    from affect_llm.lexical_features import fit_vectorizer, from_vectorizer
    from affect_llm.retrieval import SentenceEmbedder
    from affect_llm.train.data import data_licences
    from affect_llm.vocabulary import VOCAB_ALIASES

    start = time.perf_counter()
    queries: list[Query] = []
    targets: list[tuple[int, list[str]]] = []
    for f in train_files:
        for s in read_samples(f):
            labels = [VOCAB_ALIASES.get(x, x) if to_vocabulary else x for x in s.labels]
            labels = list(dict.fromkeys(labels))
            if not labels or not s.text.strip():
                continue
            targets.append((len(queries), labels))
            queries.append(Query(text=s.text, context=s.context, speaker=s.speaker))
    label_set = sorted({x for _, labs in targets for x in labs})
    if len(label_set) < 2:
        raise AffectError(f"a label model needs at least 2 labels in its training data; found {label_set or 'none'}")
    texts = [q.text for q in queries]
    index = {lab: i for i, lab in enumerate(label_set)}
    rows, ys, ws = [], [], []
    for qi, labs in targets:
        for lab in labs:
            rows.append(qi)
            ys.append(index[lab])
            ws.append(1.0 / len(labs))
    rows_a, y, w = np.array(rows), np.array(ys), np.array(ws)
    # Held-out tenth, split by query (a multi-label query never straddles the split), for the temperature.
    rng = np.random.default_rng(seed)
    held = rng.random(len(queries)) < 0.1
    fit = ~held[rows_a]
    out_dir = Path(output_dir)
    if encoder_lora and encoder_epochs <= 0:
        raise AffectError("--encoder-lora needs --encoder-epochs N (N > 0): the adapters are what those epochs train")
    with contextlib.ExitStack() as cleanup:
        encoder_info: dict[str, Any] | None = None  # set when the encoder is fine-tuned (staged until saved)
        staged_encoder: Path | None = None
        if encoder_epochs > 0:
            import tempfile

            from affect_llm.retrieval import resolve_embedder
            from affect_llm.train.encoder import encoder_folder, finetune_encoder

            # The held-out tenth stays out of the encoder's training too: the temperature is fitted on turns
            # the whole model never saw. The encoder is staged beside the output and moved in with the head.
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
            cleanup.callback(shutil.rmtree, staging, ignore_errors=True)  # gone once moved in; removed on failure
            staged_encoder = staging / ENCODER_DIR
            base_id, base_folder = resolve_embedder(embedder)
            encoder_info = finetune_encoder(
                base_folder, [texts[i] for i in rows_a[fit]], y[fit], w[fit], len(label_set), staged_encoder,
                epochs=encoder_epochs, seed=seed, lora_rank=encoder_lora, base_name=base_id, progress=progress)
            # the cache holds the base encoder's vectors: not for these
            embedder, embedding_cache = str(encoder_folder(staged_encoder)), None
        emb = SentenceEmbedder(embedder)
        cache = EmbeddingCache(emb, Path(embedding_cache) if embedding_cache else None)
        feats = featurize(cache, queries, progress=progress)
        vec = fit_vectorizer(texts) if lexical else None
        design = sparse.hstack([vec.transform(texts), sparse.csr_matrix(feats)]).tocsr() if vec is not None else feats
        n_lex = design.shape[1] - feats.shape[1]
        lexical_features = from_vectorizer(vec) if vec is not None else None

        def fit_on(mask: np.ndarray) -> LabelModel:
            clf = LogisticRegression(C=c, max_iter=max_iter)
            clf.fit(design[rows_a[mask]], y[mask], sample_weight=w[mask])
            coef, intercept = np.zeros((len(label_set), design.shape[1])), np.zeros(len(label_set))
            if clf.coef_.shape[0] == 1:  # binary: scikit-learn keeps one row, the logit of classes_[1] against [0]
                coef[clf.classes_[1]], intercept[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
            else:
                coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
            return LabelModel(labels=label_set, coef=coef[:, n_lex:], intercept=intercept,
                              embedder=ENCODER_DIR if staged_encoder else emb.model_id,
                              lexical=lexical_features, lex_coef=coef[:, :n_lex] if vec is not None else None)

        model = fit_on(fit)
        hv = ~fit
        acc, temperature = float("nan"), 1.0
        if hv.any():
            logits = model.logits(feats[rows_a[hv]], [texts[i] for i in rows_a[hv]])
            temperature = _fit_temperature(logits, y[hv])
            acc = float((logits.argmax(1) == y[hv]).mean())
            model = fit_on(np.ones_like(fit))  # the shipped weights learn from all of the data; T carries over
        model.temperature = temperature
        counts = {lab: int((y == i).sum()) for lab, i in index.items()}
        model.card = {
            "kind": "affect-llm label model", "version": 2 if n_lex else 1,
            "features": f"MiniLM(target) | mean MiniLM(last {CONTEXT_OTHERS} other-speaker turns) | MiniLM(own previous turn)"
                        + (f" | TF-IDF of the target's words and word pairs ({n_lex} terms)" if n_lex else ""),
            "head": f"multinomial logistic regression (scikit-learn), C={c}, temperature fitted on a held-out tenth, "
                    "then refit on all samples",
            "train_files": [{"path": str(f), "sha256": sha256_file(f)} for f in train_files],
            "data_licences": {k: v for f in train_files for k, v in data_licences(f).items()},
            "to_vocabulary": to_vocabulary, "samples": len(queries), "rows": len(rows), "label_counts": counts,
            "embedder_fingerprint": emb.fingerprint, "heldout_accuracy": round(acc, 4),
            "train_seconds": round(time.perf_counter() - start, 1), "seed": seed,
        }
        if staged_encoder is not None:
            from affect_llm.fileio import replace_dir

            model.card["encoder"] = {**encoder_info, "folder": ENCODER_DIR, "heldout_excluded": True}
            model.card["features"] = model.card["features"].replace("MiniLM", "fine-tuned MiniLM")
            model.save(staged_encoder.parent)
            replace_dir(staged_encoder.parent, out_dir)
            model.path = out_dir
            model.embedder = str(encoder_folder(out_dir / ENCODER_DIR))
            model._cache = None
        else:
            model.save(out_dir)
    return model, model.card
