"""Label-model heads over the same frozen MiniLM features: what the label model could be, on dev splits.

- MELD-trained: logistic regression on the turn alone and on turn + context features (C = 1, 3), an MLP
  head, a per-label bias fitted for weighted F1 on a held-out tenth of MELD train (applied to dev), the
  turn's TF-IDF alone, and TF-IDF + MiniLM (the recipe's features);
- permissive (GoEmotions + EmoryNLP train, the bundled recipe's data): logistic regression over MiniLM,
  over MiniLM + TF-IDF (the shipped head), and an MLP head, projected onto MELD's and EmoryNLP's 7 labels
  and GoEmotions' 28.

Features come from the embedding cache that `python bench/answer_quality.py embed` fills (runs/emb_cache.npz).

    python bench/label_model_heads.py

Writes bench/results/label_model_heads.{json,md}.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CACHE = ROOT / "runs" / "emb_cache.npz"
D = 384  # MiniLM width: features are [turn | other-speaker context | own previous turn]


def main() -> None:
    from affect_llm.data_builders.label_spaces import LABEL_SPACES
    from affect_llm.data_builders.schema import read_samples
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.neural_network import MLPClassifier

    from affect_llm.label_model import EmbeddingCache, LabelModel, Query, featurize
    from affect_llm.lexical_features import fit_vectorizer
    from affect_llm.retrieval import SentenceEmbedder
    from affect_llm.vocabulary import VOCAB_ALIASES

    cache = EmbeddingCache(SentenceEmbedder(), CACHE)

    def load(name: str):
        ss = [s for s in read_samples(DATA / name) if s.labels and s.text.strip()]
        return ss, featurize(cache, [Query(s.text, s.context, s.speaker) for s in ss])

    rows: list[dict] = []

    def row(data: str, head: str, **scores: float) -> None:
        rows.append({"train": data, "head": head, **{k: round(v, 4) for k, v in scores.items()}})
        print(rows[-1], flush=True)

    meld7 = list(LABEL_SPACES["meld7"])
    mtr, x_tr = load("meld_train.jsonl")
    mdv, x_dv = load("meld_dev.jsonl")
    y_tr = np.array([meld7.index(s.labels[0]) for s in mtr])
    y_dv = np.array([meld7.index(s.labels[0]) for s in mdv])

    def wf1(y, p) -> float:
        return float(f1_score(y, p, average="weighted"))

    for cols, name in ((slice(0, D), "turn"), (slice(0, 3 * D), "turn + context")):
        for c in (1.0, 3.0):
            clf = LogisticRegression(C=c, max_iter=500).fit(x_tr[:, cols], y_tr)
            row("MELD train", f"logistic regression, {name}, C={c}", meld_dev_wf1=wf1(y_dv, clf.predict(x_dv[:, cols])))
    mlp = MLPClassifier(hidden_layer_sizes=(512,), alpha=1e-2, early_stopping=True, max_iter=200, random_state=0)
    row("MELD train", "MLP (512), turn + context", meld_dev_wf1=wf1(y_dv, mlp.fit(x_tr, y_tr).predict(x_dv)))

    vec = fit_vectorizer([s.text for s in mtr])
    t_tr, t_dv = vec.transform([s.text for s in mtr]), vec.transform([s.text for s in mdv])
    row("MELD train", f"logistic regression, TF-IDF alone ({t_tr.shape[1]} terms), C=3",
        meld_dev_wf1=wf1(y_dv, LogisticRegression(C=3.0, max_iter=1000).fit(t_tr, y_tr).predict(t_dv)))
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(sparse.hstack([t_tr, x_tr]).tocsr(), y_tr)
    row("MELD train", "logistic regression, turn + context + TF-IDF, C=1 (the recipe)",
        meld_dev_wf1=wf1(y_dv, clf.predict(sparse.hstack([t_dv, x_dv]).tocsr())))

    # A per-label log-bias for weighted F1 (coordinate ascent), fitted on a held-out tenth of train.
    held = np.random.default_rng(0).random(len(y_tr)) < 0.1
    clf = LogisticRegression(C=3.0, max_iter=500).fit(x_tr[~held], y_tr[~held])
    logp_h, logp_d = np.log(clf.predict_proba(x_tr[held])), np.log(clf.predict_proba(x_dv))
    bias = np.zeros(len(meld7))
    for _ in range(3):
        for k in range(len(bias)):
            best = (-1.0, 0.0)
            for g in np.linspace(-2, 2, 41):
                trial = bias.copy()
                trial[k] = g
                s = wf1(y_tr[held], (logp_h + trial).argmax(1))
                if s > best[0] + 1e-9:
                    best = (s, g)
            bias[k] = best[1]
    row("MELD train (90 %)", "logistic regression C=3, no bias", meld_dev_wf1=wf1(y_dv, logp_d.argmax(1)))
    row("MELD train (90 %)", "logistic regression C=3, + weighted-F1 bias", meld_dev_wf1=wf1(y_dv, (logp_d + bias).argmax(1)))

    # Permissive heads, scored like the bundled label model (projected through the emotion families).
    train, feats = [], []
    for f in ("goemotions_train.jsonl", "emorynlp_train.jsonl"):
        ss, x = load(f)
        train += ss
        feats.append(x)
    x_p = np.concatenate(feats)
    labels = sorted({VOCAB_ALIASES.get(x, x) for s in train for x in s.labels})
    index = {lab: i for i, lab in enumerate(labels)}
    r_idx, ys, ws = [], [], []
    for i, s in enumerate(train):
        labs = list(dict.fromkeys(VOCAB_ALIASES.get(x, x) for x in s.labels))
        for lab in labs:
            r_idx.append(i)
            ys.append(index[lab])
            ws.append(1.0 / len(labs))
    r_idx_a, y_p, w_p = np.array(r_idx), np.array(ys), np.array(ws)
    devs = {"meld": (mdv, x_dv), "emorynlp": load("emorynlp_dev.jsonl"), "goemotions": load("goemotions_dev.jsonl")}
    projector = LabelModel(labels=labels, coef=np.zeros((len(labels), 1)), intercept=np.zeros(len(labels)))

    def permissive_scores(proba, lexical=None) -> dict[str, float]:
        out = {}
        for name, (ss, x) in devs.items():
            if lexical is not None:
                x = sparse.hstack([lexical.transform([s.text for s in ss]), x]).tocsr()
            space = list(LABEL_SPACES["goemotions28" if name == "goemotions" else f"{name}7"])
            _, q = projector.project(proba(x), space)
            pred = q.argmax(1)
            if name == "goemotions":
                gold = [set(s.labels) for s in ss]
                f1s = []
                for k, lab in enumerate(space):
                    tp = sum(1 for g, p in zip(gold, pred) if lab in g and p == k)
                    fp = sum(1 for g, p in zip(gold, pred) if lab not in g and p == k)
                    fn = sum(1 for g, p in zip(gold, pred) if lab in g and p != k)
                    f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
                out["goemotions_dev_macro28"] = float(np.mean(f1s))
            else:
                out[f"{name}_dev_wf1"] = wf1([space.index(s.labels[0]) for s in ss], pred)
        return out

    def full(model):
        def proba(x):
            p = np.zeros((x.shape[0], len(labels)))
            p[:, model.classes_] = model.predict_proba(x)
            return p
        return proba

    t0 = time.perf_counter()
    lr = LogisticRegression(C=1.0, max_iter=300).fit(x_p[r_idx_a], y_p, sample_weight=w_p)
    row("GoEmotions + EmoryNLP", f"logistic regression C=1, MiniLM only ({time.perf_counter() - t0:.0f} s)",
        **permissive_scores(full(lr)))
    t0 = time.perf_counter()
    pvec = fit_vectorizer([s.text for s in train])
    x_pl = sparse.hstack([pvec.transform([s.text for s in train]), x_p]).tocsr()
    lr = LogisticRegression(C=1.0, max_iter=300).fit(x_pl[r_idx_a], y_p, sample_weight=w_p)
    row("GoEmotions + EmoryNLP", f"logistic regression C=1, MiniLM + TF-IDF (shipped; {time.perf_counter() - t0:.0f} s)",
        **permissive_scores(full(lr), pvec))
    t0 = time.perf_counter()
    mlp = MLPClassifier(hidden_layer_sizes=(512,), alpha=1e-2, early_stopping=True, max_iter=100, random_state=0)
    mlp.fit(x_p[r_idx_a], y_p)
    row("GoEmotions + EmoryNLP", f"MLP (512) ({time.perf_counter() - t0:.0f} s)", **permissive_scores(full(mlp)))

    cols = ["train", "head", "meld_dev_wf1", "emorynlp_dev_wf1", "goemotions_dev_macro28"]
    md = "# Label-model heads over frozen MiniLM (+ TF-IDF) features (dev splits)\n\n" + md_table(rows, cols)
    print(md)
    write_results("label_model_heads", {"rows": rows}, md)


if __name__ == "__main__":
    main()
