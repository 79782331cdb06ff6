"""The metric registry: every metric a suite or a user can name, with its direction.

A metric is two pure functions — `per_sample(example, ctx)` → a record, `aggregate(records, ctx)` → a
number (or a dict for composite results such as the OV-MER table) — plus, where it pays, a `batch`
function that computes the same value for a whole corpus faster. `compute` is the one way to run one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from affect_llm.eval import calibration, classification, ov

from affect_llm.errors import AffectError, lookup
from affect_llm.emotion_wheel import OV_METRICS, WHEELS, EmotionWheel

Direction = Literal["higher", "lower", "none"]
Task = Literal["ov", "closed"]


class Example(NamedTuple):
    """What every metric sees of one sample: gold labels, predicted labels, the model's confidence."""

    gold: Sequence[str]
    pred: Sequence[str]
    confidence: float | None = None


@dataclass
class Context:
    """Task-level settings a metric may need."""

    task: Task = "ov"
    label_space: Sequence[str] | None = None
    n_bins: int = 10
    wheel: EmotionWheel | None = None

    def get_wheel(self) -> EmotionWheel:
        if self.wheel is None:
            self.wheel = EmotionWheel.default()
        return self.wheel


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction
    description: str
    per_sample: Callable[[Example, Context], Any]
    aggregate: Callable[[list[Any], Context], Any]
    batch: Callable[[Sequence[Example], Context], Any] | None = None
    headline: str | None = None  # key of the main number when the result is a dict
    tasks: tuple[Task, ...] = ("ov", "closed")

    def scalar(self, value: Any) -> float | None:
        """The number that represents a result (the headline of a dict result)."""
        if isinstance(value, dict):
            return None if self.headline is None else value[self.headline]
        return value


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    return lookup(METRICS, "metric", name)


def compute(name: str, examples: Sequence[Example], ctx: Context | None = None) -> Any:
    """Run metric `name` over `examples`: the batch path when there is one, else per-sample + aggregate."""
    m = get_metric(name)
    ctx = ctx or Context()
    if ctx.task not in m.tasks:
        raise AffectError(f"metric {name!r} does not apply to {ctx.task!r} tasks (only {', '.join(m.tasks)})")
    if m.batch is not None:
        return m.batch(examples, ctx)
    return m.aggregate([m.per_sample(e, ctx) for e in examples], ctx)


# --------------------------------------------------------------------------- open vocabulary
def _ov_aggregate(records: list[dict], ctx: Context) -> dict:
    return ov.ov_summary({k: ov.aggregate_prf(r[k] for r in records) for k in OV_METRICS})


register(Metric(
    name="ov",
    direction="higher",
    description="official OV-MER emotion-wheel scores: M1, M2, 5 wheels × 2 levels, EW-L1/L2, M-avg",
    per_sample=lambda e, ctx: ov.ov_sample_scores_all(e.gold, e.pred, ctx.get_wheel()),
    aggregate=_ov_aggregate,
    batch=lambda es, ctx: ov.evaluate_ov([e.gold for e in es], [e.pred for e in es], ctx.get_wheel()),
    headline="m_avg",
))


def _soft_aggregate(records: list[ov.SampleScore | None], ctx: Context) -> float:
    return ov.aggregate_prf(records).f1


register(Metric(
    name="ov_soft_f1",
    direction="higher",
    description="partial-credit F on the wheels (same fine cluster 1, same coarse cluster 0.5); not official",
    per_sample=lambda e, ctx: ov.soft_sample_scores(e.gold, e.pred, ctx.get_wheel()),
    aggregate=_soft_aggregate,
))

register(Metric(
    name="hit_rate",
    direction="higher",
    description="MER-UniBench hit rate: gold basic label found among the mapped answers (5 wheels, level 1)",
    per_sample=lambda e, ctx: ov.sample_hits(e.gold, e.pred, ctx.get_wheel()),
    aggregate=lambda records, ctx: ov.aggregate_hits(records),
))


# --------------------------------------------------------------------------- closed set
def _closed(fn: Callable[[classification.Counts], Any]) -> Callable[[list, Context], Any]:
    return lambda records, ctx: fn(classification.Counts.from_pairs(records, ctx.label_space))


def _pair(e: Example, ctx: Context) -> tuple[str, str | None]:
    return classification.pair(e.gold, e.pred)


for _name, _fn, _desc in [
    ("accuracy", classification.accuracy, "share of samples whose first answer is the gold class"),
    ("macro_f1", classification.macro_f1, "unweighted mean of per-class F1 over the label space"),
    ("weighted_f1", classification.weighted_f1, "per-class F1 weighted by gold support (WAF)"),
    ("uar", classification.uar, "unweighted average recall over gold classes"),
    ("war", classification.war, "support-weighted average recall (= accuracy)"),
]:
    register(Metric(_name, "higher", _desc, _pair, _closed(_fn), tasks=("closed",)))

register(Metric(
    "confusion_matrix", "none", "counts, rows gold, columns predicted", _pair,
    _closed(lambda c: c.as_dict()), tasks=("closed",),
))


# --------------------------------------------------------------------------- calibration
def _calibration_record(e: Example, ctx: Context) -> calibration.Record | None:
    if e.confidence is None:
        return None
    if ctx.task == "closed":
        g, p = classification.pair(e.gold, e.pred)
        return calibration.record(e.confidence, float(g == p))
    w = ctx.get_wheel()
    precisions = [s.precision for k in WHEELS if (s := ov.ov_sample_scores(e.gold, e.pred, w, f"{k}_level1"))]
    return calibration.record(e.confidence, sum(precisions) / len(precisions) if precisions else None)


register(Metric(
    "ece", "lower", "expected calibration error of the confidence (10 equal-width bins)",
    _calibration_record, lambda records, ctx: calibration.ece(records, ctx.n_bins),
))
register(Metric(
    "brier", "lower", "Brier score of the confidence", _calibration_record,
    lambda records, ctx: calibration.brier(records),
))

__all__ = ["METRICS", "Context", "Example", "Metric", "compute", "get_metric", "register"]
