"""Cue-overlap and explanation metrics: embedding cue matching, grounding, and the EMER LLM judge.

Metrics (registry `CUE_METRICS`, each with a direction):

- `cue_f1` — deterministic, no LLM (in the spirit of XEmoGPT's EmoCue-360). Gold and predicted
  descriptions are split into atomic cues (`cue_split`, a documented clause splitter), embedded with the
  bundled MiniLM, and matched: a predicted cue is correct when its best cosine with any gold cue is at
  least `threshold`, a gold cue is recalled when its best cosine with any predicted cue is. Per sample
  p = correct / predicted, r = recalled / gold; corpus P, R = means over samples, F = 2PR/(P+R) — the
  same per-sample rule and aggregation as OV-MER (`ov.aggregate_prf`). Gold without cues → not scored;
  a prediction without cues → p = r = 0.
- `cue_soft_f1` — the threshold-free companion: the mean best-match cosines instead of counts
  (BERTScore at cue level). Useful to see how far from the threshold a system is.
- `grounding_rate` — share of cited cues supported by the textualized input (`grounding`).
- `clue_overlap`, `label_overlap` — EMER's 1–10 judge scores (`judge`), mean over scored samples.
- `ov_extracted` — OV-MER scores of labels extracted from descriptions with the official MER prompt
  (labels given in the files are used as they are).

**Threshold.** `DEFAULT_THRESHOLD` = 0.6 for MiniLM (all-MiniLM-L6-v2) cosine. Chosen on the EMER-v2
descriptions (bench/cue_metrics_separation.py): clauses of a deterministic paraphrase of the same
description mostly match at ≥ 0.6, clauses of another sample's description mostly do not. The figures
are in bench/results/cue_metrics_separation.md. Another embedder needs its own threshold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affect_llm.eval.cue_split import DEFAULT_MIN_WORDS, SPLITTER_VERSION, Clue, split_clues
from affect_llm.eval.grounding import (
    Evidence,
    aggregate_grounding,
    cited_from_answer,
    evidence_from_input,
    grounding_scores,
)
from affect_llm.eval.ov import SampleScore, aggregate_prf

from affect_llm.errors import AffectError, lookup

DEFAULT_THRESHOLD = 0.6
DEFAULT_EMBEDDER = "minilm"

__all__ = [
    "CUE_METRICS",
    "DEFAULT_THRESHOLD",
    "CueMetric",
    "CueSample",
    "CueScorer",
    "align_cue_files",
    "get_cue_metric",
    "markdown_table",
    "match_scores",
    "read_cue_file",
    "score_cues",
]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class CueMetric:
    name: str
    direction: str  # "higher" | "lower"
    description: str
    needs: str  # "embedder" | "judge" | "input"
    headline: str


CUE_METRICS: dict[str, CueMetric] = {
    m.name: m
    for m in [
        CueMetric("cue_f1", "higher", "embedding cue matching P/R/F (best-match cosine >= threshold)", "embedder", "f1"),
        CueMetric("cue_soft_f1", "higher", "mean best-match cosine of cues, both ways, harmonic mean", "embedder", "f1"),
        CueMetric("grounding_rate", "higher", "share of cited cues supported by the textualized input", "input", "rate"),
        CueMetric("clue_overlap", "higher", "EMER clue overlap, LLM judge, 1-10", "judge", "mean"),
        CueMetric("label_overlap", "higher", "EMER label overlap, LLM judge, 1-10", "judge", "mean"),
        CueMetric("ov_extracted", "higher", "OV-MER scores of LLM-extracted labels (M-avg headline)", "judge", "m_avg"),
    ]
}
DEFAULT_METRICS = ("cue_f1", "cue_soft_f1", "grounding_rate")
JUDGE_METRICS = ("clue_overlap", "label_overlap", "ov_extracted")


def get_cue_metric(name: str) -> CueMetric:
    return lookup(CUE_METRICS, "cue metric", name)


# --------------------------------------------------------------------------- embedding matching
def match_scores(sim, threshold: float) -> tuple[SampleScore | None, SampleScore | None]:
    """(thresholded, soft) per-sample scores from a (n_gold, n_pred) cosine matrix."""
    import numpy as np

    n_gold, n_pred = sim.shape
    if n_gold == 0:
        return None, None
    if n_pred == 0:
        return SampleScore(0.0, 0.0, 0.0), SampleScore(0.0, 0.0, 0.0)
    best_for_pred = sim.max(axis=0)
    best_for_gold = sim.max(axis=1)
    p = float(np.mean(best_for_pred >= threshold))
    r = float(np.mean(best_for_gold >= threshold))
    sp = float(np.clip(best_for_pred, 0, 1).mean())
    sr = float(np.clip(best_for_gold, 0, 1).mean())
    return _score(p, r), _score(sp, sr)


def _score(p: float, r: float) -> SampleScore:
    return SampleScore(p, r, 0.0 if p + r == 0 else 2 * p * r / (p + r))


class CueScorer:
    """Splits, embeds (cached per text) and matches cues. `embedder` is anything with
    `encode(list[str]) -> array`, or the name of a sentence-transformers model (an asset, a folder or a
    hub id; default: the bundled MiniLM), loaded via affect_llm.retrieval when first needed."""

    def __init__(self, embedder: Any = None, *, threshold: float = DEFAULT_THRESHOLD,
                 min_words: int = DEFAULT_MIN_WORDS) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise AffectError(f"cue threshold is a cosine in [-1, 1], got {threshold}")
        if min_words < 1:
            raise AffectError(f"min_words must be >= 1, got {min_words}")
        self._embedder = embedder
        self.threshold, self.min_words = threshold, min_words
        self._vecs: dict[str, Any] = {}

    @property
    def embedder(self) -> Any:
        """Loaded on first use, so judge-only runs never load it."""
        if self._embedder is None or isinstance(self._embedder, str):
            from affect_llm.retrieval import SentenceEmbedder

            self._embedder = SentenceEmbedder(self._embedder or DEFAULT_EMBEDDER)
        return self._embedder

    @property
    def embedder_id(self) -> str:
        return str(getattr(self.embedder, "model_id", type(self.embedder).__name__))

    def embed(self, texts: Sequence[str]):
        """Unit-normalised float32 rows, one per text; each distinct text is encoded once per scorer."""
        import numpy as np

        new = list(dict.fromkeys(t for t in texts if t not in self._vecs))
        if new:
            vecs = np.asarray(self.embedder.encode(new), dtype=np.float32)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            self._vecs.update(zip(new, vecs))
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._vecs[t] for t in texts])

    def split(self, text: str) -> list[Clue]:
        return split_clues(text or "", min_words=self.min_words)

    def prime(self, texts: Sequence[str], batch: int = 256) -> None:
        """Encode many texts in big batches up front (faster than sample by sample)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._vecs))
        for i in range(0, len(todo), batch):
            self.embed(todo[i : i + batch])

    def score(self, gold: Sequence[Sequence[Clue]], pred: Sequence[Sequence[Clue]]
              ) -> tuple[list[SampleScore | None], list[SampleScore | None]]:
        """Per-sample (thresholded, soft) scores of already-split cue lists."""
        import numpy as np

        self.prime([c.text for cs in (*gold, *pred) for c in cs])
        hard, soft = [], []
        for g, p in zip(gold, pred, strict=True):
            if g and p:
                sim = self.embed([c.text for c in g]) @ self.embed([c.text for c in p]).T
            else:
                sim = np.zeros((len(g), len(p)), dtype=np.float32)
            h, s = match_scores(sim, self.threshold)
            hard.append(h)
            soft.append(s)
        return hard, soft


# --------------------------------------------------------------------------- samples and files
@dataclass
class CueSample:
    """One scored pair. Labels None = not given (extracted by the judge when a judge metric needs them)."""

    id: str
    gold_text: str
    pred_text: str
    gold_labels: list[str] | None = None
    pred_labels: list[str] | None = None
    pred_cues: list[Clue] | None = None  # structured cues the answer cites (None: use its clauses)
    evidence: Evidence | None = None


_GOLD_TEXT = ("description", "explanation", "reason")
_PRED_TEXT = ("explanation", "description", "reason", "text")


def read_cue_file(path: str | Path, role: str) -> dict[str, dict[str, Any]]:
    """id → record of a JSONL file; every problem names the file and line.

    gold (`role="gold"`): `{"id", "description"|"explanation"|"reason", "labels"|"openset"?, "input"?}` — a
    canonical dataset sample (data_builders) works as it is: without "input", its `cues`, `text` and
    `context` (what the textualizers extracted, the utterance, the dialogue) are the grounding evidence.

    prediction: `{"id", "explanation"|"description"|"reason"|"text", "labels"?, "cues"?, "input"?}` — the
    explain answer (`--json`) and the `eval run` predictions.jsonl record work as they are: `cues` are the
    cues the answer cites; an `input` that is a string (the run's input hash) is ignored; a record with
    an "error" and no explanation is an empty prediction.
    """
    gold = role == "gold"
    from affect_llm.fileio import read_text

    p = Path(path)
    lines = read_text(p, f"{role} file").splitlines()
    out: dict[str, dict[str, Any]] = {}
    fields = _GOLD_TEXT if gold else _PRED_TEXT
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{p}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise AffectError(f"{where}: not valid JSON ({e.msg} at column {e.pos + 1})") from None
        if not isinstance(obj, dict):
            raise AffectError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        sid = obj.get("id")
        if not isinstance(sid, str) or not sid:
            raise AffectError(f"{where}: field 'id' must be a non-empty string, got {sid!r}")
        if sid in out:
            raise AffectError(f"{where}: duplicate id {sid!r}")
        text_key = next((k for k in fields if obj.get(k) is not None), None)
        if text_key is None and not gold and "error" in obj:
            text = ""
        elif text_key is None:
            raise AffectError(f"{where}: needs a description: one of {', '.join(repr(k) for k in fields)}")
        elif not isinstance(obj[text_key], str):
            raise AffectError(f"{where}: field {text_key!r} must be a string, got {obj[text_key]!r}")
        else:
            text = obj[text_key]
        rec: dict[str, Any] = {"text": text, "where": where}
        if obj.get("labels") is not None or obj.get("openset") is not None:
            from affect_llm.eval.ov import string_to_list

            val = obj["labels"] if obj.get("labels") is not None else obj["openset"]
            if not (isinstance(val, str) or (isinstance(val, list) and all(isinstance(x, str) for x in val))):
                raise AffectError(f"{where}: field 'labels' must be a list of strings (or 'openset' a string like \"[a, b]\")")
            rec["labels"] = string_to_list(val)
        raw_input = obj.get("input")
        if isinstance(raw_input, (dict, list)):
            rec["evidence"] = evidence_from_input(raw_input, where=f"{where}: input")
        elif raw_input is not None and not isinstance(raw_input, str):
            raise AffectError(f"{where}: field 'input' must be a textualized input object or a list of them")
        if gold:
            if "evidence" not in rec and (obj.get("cues") or obj.get("context") or obj.get("text")):
                canonical = {"cues": obj.get("cues") or [], "text": obj.get("text") or "",
                             "context": obj.get("context") or []}
                rec["evidence"] = evidence_from_input(canonical, where=where)
        elif obj.get("cues"):
            rec["cues"] = cited_from_answer(obj["cues"], where=where)
        out[sid] = rec
    return out


def align_cue_files(gold: dict[str, dict[str, Any]], pred: dict[str, dict[str, Any]]) -> list[CueSample]:
    """Gold-ordered samples. A gold id without a prediction is scored as an empty prediction; a predicted
    id not in gold is an error. The input evidence is taken from the prediction (what the model saw)
    when it records one, else from gold."""
    extra = [i for i in pred if i not in gold]
    if extra:
        shown = ", ".join(repr(i) for i in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise AffectError(f"{len(extra)} prediction id(s) are not in the gold file: {shown}")
    out = []
    for sid, g in gold.items():
        p = pred.get(sid, {})
        out.append(CueSample(
            id=sid, gold_text=g["text"], pred_text=p.get("text", ""), gold_labels=g.get("labels"),
            pred_labels=p.get("labels"), pred_cues=p.get("cues"), evidence=p.get("evidence", g.get("evidence")),
        ))
    return out


# --------------------------------------------------------------------------- scoring
def _mean_scores(scores: Sequence[float | None], refs_present: Sequence[bool]) -> dict[str, Any]:
    vals = [s for s in scores if s is not None]
    failed = sum(1 for s, r in zip(scores, refs_present) if r and s is None)
    return {"mean": sum(vals) / len(vals) if vals else None, "n": len(vals), "failed": failed}


def _prf(records: Sequence[SampleScore | None]) -> dict[str, Any]:
    return aggregate_prf(records).as_dict()


@dataclass
class CueReport:
    """What `score_cues` returns: metric values, per-sample records and the exact configuration."""

    metrics: dict[str, Any]
    per_sample: list[dict[str, Any]]
    config: dict[str, Any]
    n: int
    skipped: dict[str, str] = field(default_factory=dict)

    def headline(self) -> dict[str, float | None]:
        return {name: (v or {}).get(CUE_METRICS[name].headline) for name, v in self.metrics.items()}

    def as_dict(self, per_sample: bool = False) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "n": self.n,
            "metrics": self.metrics,
            "headline": self.headline(),
            "directions": {n: CUE_METRICS[n].direction for n in self.metrics},
            "skipped": self.skipped,
            "config": self.config,
        }
        if per_sample:
            doc["per_sample"] = self.per_sample
        return doc


def score_cues(
    samples: Sequence[CueSample],
    *,
    metrics: Sequence[str] | None = None,
    scorer: CueScorer | None = None,
    judge: Any = None,
) -> CueReport:
    """Score `samples` with the named metrics (default: the embedding metrics, grounding when any sample
    has input evidence, and the judge metrics when a `judge.Judge` is given)."""
    if not samples:
        raise AffectError("no samples to score")
    if metrics is None:
        names = list(DEFAULT_METRICS) + (list(JUDGE_METRICS) if judge is not None else [])
    else:
        names = list(dict.fromkeys(metrics))
        for n in names:
            get_cue_metric(n)
    needs_judge = [n for n in names if CUE_METRICS[n].needs == "judge"]
    if needs_judge and judge is None:
        raise AffectError(f"metric(s) {', '.join(needs_judge)} need an LLM judge: pass --judge (a model or a server URL)")
    scorer = scorer or CueScorer()
    per = [{"id": s.id} for s in samples]
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    config: dict[str, Any] = {"splitter": f"cue_split@{SPLITTER_VERSION}", "min_words": scorer.min_words}

    if any(CUE_METRICS[n].needs in ("embedder", "input") for n in names):
        config.update(embedder=scorer.embedder_id, threshold=scorer.threshold)
    if "cue_f1" in names or "cue_soft_f1" in names:
        gold_clues = [scorer.split(s.gold_text) for s in samples]
        pred_clues = [scorer.split(s.pred_text) for s in samples]
        hard, soft = scorer.score(gold_clues, pred_clues)
        for rec, g, p, h, so in zip(per, gold_clues, pred_clues, hard, soft):
            rec.update(gold_cues=len(g), pred_cues=len(p))
            if "cue_f1" in names:
                rec["cue_f1"] = h._asdict() if h else None
            if "cue_soft_f1" in names:
                rec["cue_soft_f1"] = so._asdict() if so else None
        if "cue_f1" in names:
            results["cue_f1"] = _prf(hard)
        if "cue_soft_f1" in names:
            results["cue_soft_f1"] = _prf(soft)
    if "grounding_rate" in names:
        if not any(s.evidence is not None for s in samples):
            skipped["grounding_rate"] = "no sample records its textualized input ('input' field)"
        else:
            cited = [s.pred_cues or cited_from_answer(None, s.pred_text, min_words=scorer.min_words) for s in samples]
            g = grounding_scores(cited, [s.evidence for s in samples], scorer.embed, scorer.threshold)
            for rec, x in zip(per, g):
                rec["grounding"] = None if x is None else {"cited": x.cited, "supported": x.supported, "rate": x.rate}
            results["grounding_rate"] = aggregate_grounding(g)
    if needs_judge:
        config["judge"] = judge.info()
        if "clue_overlap" in names:
            sc = judge.clue_overlap([s.gold_text for s in samples], [s.pred_text for s in samples])
            for rec, x in zip(per, sc):
                rec["clue_overlap"] = x
            results["clue_overlap"] = _mean_scores(sc, [bool(s.gold_text.strip()) for s in samples])
        if "label_overlap" in names or "ov_extracted" in names:
            gold_labels, pred_labels, sources = _labels(samples, judge)
            config["labels"] = sources
            for rec, gl, pl in zip(per, gold_labels, pred_labels):
                rec.update(gold_labels=gl, pred_labels=pl)
            if "label_overlap" in names:
                sc = judge.label_overlap(gold_labels, pred_labels)
                for rec, x in zip(per, sc):
                    rec["label_overlap"] = x
                results["label_overlap"] = _mean_scores(sc, [bool(g) for g in gold_labels])
            if "ov_extracted" in names:
                from affect_llm.eval.ov import evaluate_ov

                results["ov_extracted"] = evaluate_ov(gold_labels, pred_labels)
        config["judge"].update(generated=judge.generated, cache_hits=judge.cache_hits)
    if "grounding_rate" in skipped:
        names = [n for n in names if n != "grounding_rate"]
    ordered = {n: results[n] for n in names if n in results}
    return CueReport(metrics=ordered, per_sample=per, config=config, n=len(samples), skipped=skipped)


def _labels(samples: Sequence[CueSample], judge: Any) -> tuple[list[list[str]], list[list[str]], dict[str, Any]]:
    """Gold and predicted label sets: as given in the files, else extracted by the judge (one batch)."""
    need = [(k, side) for k, s in enumerate(samples) for side in ("gold", "pred")
            if (s.gold_labels if side == "gold" else s.pred_labels) is None]
    texts = [samples[k].gold_text if side == "gold" else samples[k].pred_text for k, side in need]
    extracted = dict(zip(need, judge.extract_labels(texts))) if need else {}
    gold = [s.gold_labels if s.gold_labels is not None else extracted[(k, "gold")] for k, s in enumerate(samples)]
    pred = [s.pred_labels if s.pred_labels is not None else extracted[(k, "pred")] for k, s in enumerate(samples)]
    n_gold_x = sum(1 for _, side in need if side == "gold")
    n_pred_x = len(need) - n_gold_x
    return gold, pred, {
        "gold": {"given": len(samples) - n_gold_x, "extracted": n_gold_x},
        "pred": {"given": len(samples) - n_pred_x, "extracted": n_pred_x},
    }


# --------------------------------------------------------------------------- tables
def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def summary_rows(report: CueReport) -> list[tuple[str, str, str, str, str]]:
    """(metric, value, precision/micro, recall/failed, n) display rows."""
    rows = []
    for name, v in report.metrics.items():
        if name in ("cue_f1", "cue_soft_f1"):
            rows.append((name, _pct(v["f1"]), _pct(v["precision"]), _pct(v["recall"]), str(v["n"])))
        elif name == "grounding_rate":
            rows.append((name, _pct(v["rate"]), f"micro {_pct(v['micro'])}", f"{v['supported']}/{v['cited']} cues", str(v["n"])))
        elif name in ("clue_overlap", "label_overlap"):
            mean = "–" if v["mean"] is None else f"{v['mean']:.2f}"
            rows.append((name, mean, "", f"{v['failed']} failed", str(v["n"])))
        elif name == "ov_extracted":
            rows.append((name, _pct(v["m_avg"]), f"M1 {_pct(v['m1']['f1'])}", f"M2 {_pct(v['m2']['f1'])}",
                         str(_ov_n(v))))
    return rows


def _ov_n(doc: dict[str, Any]) -> int:
    """Samples scored by OV-MER (gold not empty): the n of the first wheel's first level."""
    first_wheel = next(iter(doc["wheels"].values()))
    return int(next(iter(first_wheel.values()))["n"])


HEADER = ("metric", "value", "precision / detail", "recall / detail", "n")


def markdown_table(report: CueReport) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(report)]
    return "\n".join(lines) + "\n"


def config_lines(report: CueReport) -> list[str]:
    c = report.config
    out = [f"splitter {c['splitter']} (min {c['min_words']} words)"]
    if "embedder" in c:
        out.append(f"embedder {c['embedder']}, cosine threshold {c['threshold']}")
    if "judge" in c:
        j = c["judge"]
        out.append(f"judge {j['model']} ({j['backend']}), {', '.join(j['templates'].values())}, "
                   f"temperature {j['temperature']}, seed {j['seed']}, {'constrained' if j['constrained'] else 'free text'}")
    for name, why in report.skipped.items():
        out.append(f"{name} skipped: {why}")
    return out

