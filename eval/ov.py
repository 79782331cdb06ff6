"""Open-vocabulary emotion metrics (OV-MER / emotion-wheel "EW"), exactly as the MER challenges score.

For one mapping `m` (M1, M2, or wheel K at level L; see `affect_llm.emotion_wheel`):

- every label is normalised (lower, strip) and mapped; unmappable labels are dropped;
- per sample, G = mapped gold set, P = mapped prediction set: G empty → sample skipped;
  P empty → p = r = 0; else p = |G∩P|/|P|, r = |G∩P|/|G|;
- precision = mean p, recall = mean r over scored samples (0 if none); F = 2PR/(P+R) (0 if P+R = 0).

EW at level L averages (F, P, R) over the five wheels; M-avg is the mean of the twelve F-scores.

Two entry points share one mapping core (`EmotionWheel.codes`):

- `ov_sample_scores` scores one sample (GRPO rewards, tests, debugging);
- `score_ov` scores a corpus: each distinct label is mapped once, each sample's mapped set becomes a
  NumPy bit set, and the counts are population counts — about 9× less CPU than the official scripts
  on 60k samples (`bench/ov_speed.py`, which also checks that the numbers are bit-identical to a
  transcription of the official code; the tests check it against `ov_sample_scores`).
"""

from __future__ import annotations

import gc
from collections.abc import Hashable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple

from affect_llm.emotion_wheel import LEVELS, OV_METRICS, WHEELS, EmotionWheel, metric_key

__all__ = [
    "PRF",
    "SampleScore",
    "aggregate_hits",
    "aggregate_prf",
    "evaluate_ov",
    "hit_rate",
    "ov_sample_scores",
    "ov_sample_scores_all",
    "ov_summary",
    "sample_hits",
    "sample_prf",
    "score_ov",
    "soft_sample_scores",
    "string_to_list",
]


class SampleScore(NamedTuple):
    """Precision, recall and F of one sample under one mapping."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class PRF:
    """Corpus precision / recall / F of one mapping; `n` = samples scored (gold not empty)."""

    precision: float
    recall: float
    f1: float
    n: int

    def as_dict(self, with_n: bool = True) -> dict[str, float | int]:
        d: dict[str, float | int] = {"f1": self.f1, "precision": self.precision, "recall": self.recall}
        if with_n:
            d["n"] = self.n
        return d


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk work on label lists.

    Reading and scoring a corpus builds ~10⁶ small acyclic objects (dicts, lists, strings); every
    collection the allocations trigger rescans all of them, which costs about a third of the run time
    of `affect-llm eval ov` on 60k samples. Nothing here creates cycles, so nothing is kept alive."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _f(p: float, r: float) -> float:
    # Same expression and operation order as the official code, so the floats agree bit for bit.
    return 0.0 if p + r == 0 else 2 * (p * r) / (p + r)


_QUOTES_TO_COMMA = str.maketrans({"'": ",", '"': ","})


def string_to_list(value: Any) -> list[str]:
    """Parse a label list the way the official `string_to_list` does.

    A list (or tuple) is returned as is; `""` or None gives `[]`; a string such as `"['a', 'b']"` or
    `"[a, b]"` loses one leading `[` and one trailing `]` and is split on quotes and commas, each piece
    stripped and empty pieces dropped.
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if not isinstance(value, str):
        raise TypeError(f"expected a label list or string, got {type(value).__name__}")
    if value == "":
        return []
    if value[0] == "[":
        value = value[1:]
    if value[-1:] == "]":
        value = value[:-1]
    # Same pieces as the official re.split("['\",]", ...), with C-level calls only.
    return list(filter(None, map(str.strip, value.translate(_QUOTES_TO_COMMA).split(","))))


# --------------------------------------------------------------------------- per sample
def sample_prf(gold: AbstractSet[Hashable], pred: AbstractSet[Hashable]) -> SampleScore | None:
    """The official per-sample rule on already-mapped sets (of clusters or their codes); None when the
    sample is skipped (G empty)."""
    if not gold:
        return None
    if not pred:
        return SampleScore(0.0, 0.0, 0.0)
    hit = len(gold & pred)
    p, r = hit / len(pred), hit / len(gold)
    return SampleScore(p, r, _f(p, r))


def ov_sample_scores(
    gold_labels: Iterable[str],
    pred_labels: Iterable[str],
    wheel: EmotionWheel | None = None,
    metric: str = "wheel1_level1",
) -> SampleScore | None:
    """Score one sample under one mapping (`m1`, `m2`, `wheelK_levelL`, or the official `case…` names).

    Returns None when the gold labels map to nothing (the official code skips such samples). This is
    the scoring core the GRPO reward functions call.
    """
    w = wheel or EmotionWheel.default()
    key = metric_key(metric)
    gold_labels, pred_labels = list(gold_labels), list(pred_labels)
    return sample_prf(w.map_set(gold_labels, key), w.map_set(pred_labels, key))


def ov_sample_scores_all(
    gold_labels: Iterable[str], pred_labels: Iterable[str], wheel: EmotionWheel | None = None
) -> dict[str, SampleScore | None]:
    """`ov_sample_scores` for all twelve mappings at once (each label mapped once)."""
    w = wheel or EmotionWheel.default()
    g_codes = [w.codes(lab) for lab in gold_labels]
    p_codes = [w.codes(lab) for lab in pred_labels]
    return {
        name: sample_prf({c[j] for c in g_codes if c[j] >= 0}, {c[j] for c in p_codes if c[j] >= 0})
        for j, name in enumerate(OV_METRICS)
    }


def soft_sample_scores(
    gold_labels: Iterable[str],
    pred_labels: Iterable[str],
    wheel: EmotionWheel | None = None,
    level1_credit: float = 0.5,
) -> SampleScore | None:
    """Partial-credit P/R/F for rewards: a predicted label close to a gold one on the wheels counts.

    Credit of a label pair = `EmotionWheel.relatedness(...).score(level1_credit)` (1 for the same fine
    cluster, `level1_credit` for the same coarse cluster, averaged over wheels where both map).
    Precision = mean over predicted labels of their best credit against the gold labels; recall = the
    same from the gold side. Labels that map to no wheel are dropped, as in the official metric;
    None when no gold label maps. Not an official metric: the official numbers come from `score_ov`.
    """
    w = wheel or EmotionWheel.default()
    first_wheel = OV_METRICS.index("wheel1_level1")

    def on_wheels(labels: Iterable[str]) -> list[str]:
        out = []
        for lab in labels:
            codes = w.codes(lab)
            if any(codes[first_wheel + 2 * k] >= 0 for k in range(len(WHEELS))):
                norm = w.normalize(lab)
                if norm not in out:
                    out.append(norm)
        return out

    gold, pred = on_wheels(gold_labels), on_wheels(pred_labels)
    if not gold:
        return None
    if not pred:
        return SampleScore(0.0, 0.0, 0.0)
    credit = [[w.relatedness(g, p).score(level1_credit) for p in pred] for g in gold]
    r = sum(max(row) for row in credit) / len(gold)
    p = sum(max(credit[i][j] for i in range(len(gold))) for j in range(len(pred))) / len(pred)
    return SampleScore(p, r, _f(p, r))


def aggregate_prf(scores: Iterable[SampleScore | None]) -> PRF:
    """Corpus P/R/F from per-sample scores (None = skipped): means of p and r, F from the means."""
    import numpy as np

    kept = [s for s in scores if s is not None]
    p = float(np.mean([s.precision for s in kept])) if kept else 0.0
    r = float(np.mean([s.recall for s in kept])) if kept else 0.0
    return PRF(p, r, _f(p, r), len(kept))


# --------------------------------------------------------------------------- corpus (vectorised)
def _encode(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], wheel: EmotionWheel):
    """Map each distinct label once: (codes table, gold (row ids, sample index), pred (row ids, sample index))."""
    import numpy as np

    g_flat, p_flat = list(chain.from_iterable(gold)), list(chain.from_iterable(pred))
    distinct = list(set(g_flat).union(p_flat))
    row = dict(zip(distinct, range(len(distinct))))
    codes = np.array(list(map(wheel.codes, distinct)), dtype=np.int64).reshape(len(distinct), len(OV_METRICS))

    def rows_and_owners(samples: Sequence[Sequence[str]], flat: list[str]):
        lens = np.fromiter(map(len, samples), dtype=np.intp, count=len(samples))
        return np.array(list(map(row.__getitem__, flat)), dtype=np.intp), np.repeat(np.arange(len(samples)), lens)

    return codes, rows_and_owners(gold, g_flat), rows_and_owners(pred, p_flat)


def _bitsets(codes, owner, n_samples: int, n_words: int):
    """Per-sample OR of `1 << code` (codes < 0 skipped) → (n_samples, n_words) uint64 bit sets."""
    import numpy as np

    keep = codes >= 0
    c = codes[keep].astype(np.uint64)
    out = np.zeros((n_samples, n_words), dtype=np.uint64)
    np.bitwise_or.at(out, (owner[keep], (c >> np.uint64(6)).astype(np.intp)), np.left_shift(np.uint64(1), c & np.uint64(63)))
    return out


def score_ov(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    wheel: EmotionWheel | None = None,
    metrics: Iterable[str] = OV_METRICS,
) -> dict[str, PRF]:
    """Corpus P/R/F for each mapping in `metrics`; `gold[i]` and `pred[i]` are label lists of sample i.

    Equivalent to `aggregate_prf(ov_sample_scores(g, p, wheel, m) for g, p in zip(gold, pred))` per
    mapping: each distinct label is mapped once, each sample's mapped set becomes a bit set, and
    |G|, |P|, |G∩P| are population counts.
    """
    import numpy as np

    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} samples, pred has {len(pred)}")
    w = wheel or EmotionWheel.default()
    n = len(gold)
    codes, (g_ids, g_owner), (p_ids, p_owner) = _encode(gold, pred, w)
    out: dict[str, PRF] = {}
    for name in metrics:
        key = metric_key(name)
        col = codes[:, OV_METRICS.index(key)]
        # Renumber the clusters that occur so the bit sets stay narrow (M1 has 1,255 possible values).
        mapped = col >= 0
        present, dense = np.unique(col[mapped], return_inverse=True)
        col = np.full_like(col, -1)
        col[mapped] = dense
        n_words = max(1, -(-len(present) // 64))
        gm = _bitsets(col[g_ids], g_owner, n, n_words)
        pm = _bitsets(col[p_ids], p_owner, n, n_words)
        n_gold = np.bitwise_count(gm).sum(axis=1, dtype=np.int64)
        n_pred = np.bitwise_count(pm).sum(axis=1, dtype=np.int64)
        hit = np.bitwise_count(gm & pm).sum(axis=1, dtype=np.int64)
        scored = n_gold > 0
        n_gold, n_pred, hit = n_gold[scored], n_pred[scored], hit[scored].astype(np.float64)
        has_pred = n_pred > 0
        p = np.zeros(len(hit))
        r = np.zeros(len(hit))
        p[has_pred] = hit[has_pred] / n_pred[has_pred]
        r[has_pred] = hit[has_pred] / n_gold[has_pred]
        mp = float(np.mean(p)) if len(hit) else 0.0
        mr = float(np.mean(r)) if len(hit) else 0.0
        out[key] = PRF(mp, mr, _f(mp, mr), len(hit))
    return out


def ov_summary(per_metric: dict[str, PRF]) -> dict[str, Any]:
    """The `affect-llm eval ov --json` document from the twelve per-mapping scores."""
    import numpy as np

    missing = [m for m in OV_METRICS if m not in per_metric]
    if missing:
        raise ValueError(f"ov_summary needs all twelve mappings; missing {missing}")
    doc: dict[str, Any] = {
        "m1": per_metric["m1"].as_dict(with_n=False),
        "m2": per_metric["m2"].as_dict(with_n=False),
        "wheels": {w: {lv: per_metric[f"{w}_{lv}"].as_dict() for lv in LEVELS} for w in WHEELS},
    }
    for lv in LEVELS:
        rows = [[per_metric[f"{w}_{lv}"].f1, per_metric[f"{w}_{lv}"].precision, per_metric[f"{w}_{lv}"].recall]
                for w in WHEELS]
        f, p, r = np.mean(rows, axis=0).tolist()
        doc[f"ew_{lv}"] = {"f1": f, "precision": p, "recall": r}
    doc["m_avg"] = float(np.mean([per_metric[m].f1 for m in OV_METRICS]))
    return doc


def evaluate_ov(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], wheel: EmotionWheel | None = None
) -> dict[str, Any]:
    """All OV-MER numbers of a corpus, in the `--json` shape (see `ov_summary`)."""
    return ov_summary(score_ov(gold, pred, wheel))


# --------------------------------------------------------------------------- hit rate (MER-UniBench)
def sample_hits(
    gold_labels: Iterable[str], pred_labels: Iterable[str], wheel: EmotionWheel | None = None
) -> tuple[int | None, ...]:
    """MER-UniBench hits of one sample, one entry per wheel (level 1): |G∩P|, the number of mapped gold
    clusters the prediction hits (0 or 1 for a single gold label), or None where the gold label maps
    to nothing on that wheel (the sample does not count there)."""
    w = wheel or EmotionWheel.default()
    gold_labels, pred_labels = list(gold_labels), list(pred_labels)
    out: list[int | None] = []
    for k in WHEELS:
        g = w.map_set(gold_labels, f"{k}_level1")
        out.append(len(g & w.map_set(pred_labels, f"{k}_level1")) if g else None)
    return tuple(out)


def aggregate_hits(records: Iterable[tuple[int | None, ...]]) -> float:
    """Hit rate from `sample_hits` records: per wheel the mean over counted samples (0 if none), then
    the mean over the five wheels — the official `hitrate_metric_calculation` order."""
    import numpy as np

    columns: list[list[int]] = [[] for _ in WHEELS]
    for rec in records:
        for col, v in zip(columns, rec):
            if v is not None:
                col.append(v)
    return float(np.mean([float(np.mean(c)) if c else 0.0 for c in columns]))


def hit_rate(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], wheel: EmotionWheel | None = None) -> float:
    """MER-UniBench hit rate for closed-set tasks scored from open-vocabulary answers (gold = the one
    basic label, prediction = the model's labels), as the official `hitrate_metric_calculation`."""
    w = wheel or EmotionWheel.default()
    return aggregate_hits(sample_hits(g, p, w) for g, p in zip(gold, pred))
