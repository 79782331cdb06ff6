"""The evaluation runner: explain every sample of a dataset, cache the answers, score, write a run folder.

A run folder holds `predictions.jsonl` (one answer per line, appended as batches finish), `metrics.json`,
`report.md`, PNG plots and `run.json` (suite, explainer provenance, template and package versions).

Resuming: `predictions.jsonl` is the cache. Every line is a complete JSON record carrying a hash of the
input it answers, so rerunning the same command after an interruption only explains what is missing
(or what changed); a line cut short by a crash is dropped. A folder written by a different model or
decoding setup is refused rather than mixed. The result files are written to a temporary name and
renamed, so they are either absent or complete.

Anything with `explain_many(requests, batch_size=, progress=)` and `describe()` can be evaluated — the
pipeline's `Explainer` over any backend, or a rule-based baseline.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from affect_llm.eval.metrics import Context, Example, compute, get_metric
from affect_llm.eval.report import atomic_write, markdown_report, plot_confusion, plot_wheels, write_json
from affect_llm.eval.suite import Suite

from affect_llm.errors import AffectError, validation_text
from affect_llm.hashing import sha256_file as _file_sha256
from affect_llm.schema import EmotionReport, Turn

PACKAGES = (
    "affect-llm", "torch", "transformers", "vllm", "peft", "trl", "accelerate", "gguf", "lm-format-enforcer",
    "numpy", "pydantic", "jinja2", "typer", "matplotlib", "sentence-transformers", "faiss-cpu", "httpx",
)


class ExplainerLike(Protocol):
    def explain_many(self, requests: list, batch_size: int = 8, progress: bool = False) -> list[EmotionReport]: ...

    def describe(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class EvalItem:
    """One sample as the runner needs it (the text fields of the canonical sample format)."""

    id: str
    text: str
    labels: tuple[str, ...]
    context: tuple[Turn, ...] = ()
    speaker: str | None = None
    label_space: str | None = None
    # Provenance of the canonical sample, used to keep demonstration retrieval free of leakage
    # (the index never returns the sample itself or another turn of its dialogue).
    dataset: str = "eval"
    split: str = "eval"
    meta: tuple[tuple[str, Any], ...] = ()
    description: str | None = None  # gold explanation, for the suite's cue metrics

    def as_sample(self):
        from affect_llm.data_builders.schema import Sample

        return Sample(id=self.id, dataset=self.dataset, split=self.split, text=self.text, context=list(self.context),
                      speaker=self.speaker, labels=[], meta=dict(self.meta))


def load_items(path: str | os.PathLike[str], limit: int | None = None) -> list[EvalItem]:
    """Read `{"id", "text", "labels", "context"?, "speaker"?, "label_space"?, ...}` lines (other keys of
    the canonical format are ignored); every problem names the file and line."""
    from pydantic import ValidationError

    from affect_llm.fileio import iter_jsonl

    p = Path(path)
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for lineno, obj in iter_jsonl(p, "dataset"):
        if limit is not None and len(items) >= limit:
            break
        where = f"{p}:{lineno}"
        sid, text, labels = obj.get("id"), obj.get("text", ""), obj.get("labels")
        if not isinstance(sid, str) or not sid:
            raise AffectError(f"{where}: field 'id' must be a non-empty string")
        if sid in seen:
            raise AffectError(f"{where}: duplicate id {sid!r} (first on line {seen[sid]})")
        seen[sid] = lineno
        if not isinstance(text, str) or not text.strip():
            raise AffectError(f"{where}: field 'text' must be a non-empty string (this runner scores text and dialogue samples)")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise AffectError(f"{where}: field 'labels' must be a list of strings")
        try:
            context = tuple(Turn.model_validate(t) for t in obj.get("context") or [])
        except ValidationError as e:
            raise AffectError(f"{where}: {validation_text(e, prefix='context')}") from None
        speaker, space = obj.get("speaker"), obj.get("label_space")
        if speaker is not None and not isinstance(speaker, str):
            raise AffectError(f"{where}: field 'speaker' must be a string or null")
        if space is not None and not isinstance(space, str):
            raise AffectError(f"{where}: field 'label_space' must be a label-space name or null")
        meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
        items.append(EvalItem(sid, text, tuple(labels), context, speaker, space,
                              str(obj.get("dataset") or "eval"), str(obj.get("split") or "eval"),
                              tuple(sorted(meta.items())),
                              obj.get("description") if isinstance(obj.get("description"), str) else None))
    if not items:
        raise AffectError(f"dataset {p} has no samples")
    return items


def resolve_label_space(suite: Suite, items: list[EvalItem]) -> tuple[str, ...] | None:
    """The closed label set: the suite's (name or list), else the one space all samples name."""
    if suite.task != "closed":
        return None
    from affect_llm.data_builders.label_spaces import label_space

    if isinstance(suite.label_space, str):
        return label_space(suite.label_space)
    if suite.label_space is not None:
        return tuple(suite.label_space)
    names = {it.label_space for it in items}
    if names == {None}:
        if suite.prompt_label_space:
            raise AffectError(f"suite {suite.name!r} shows a label set to the model, but neither the suite nor the samples name one")
        return None
    if len(names) > 1:
        raise AffectError(f"samples name several label spaces ({', '.join(sorted(map(str, names)))}); set label_space in the suite")
    return label_space(names.pop())


# --------------------------------------------------------------------------- runner
@dataclass
class RunResult:
    out_dir: Path
    n: int
    n_failed: int
    metrics: dict[str, Any]
    directions: dict[str, str] = field(default_factory=dict)

    def headline(self) -> dict[str, Any]:
        """One number per metric (the main figure of composite results)."""
        out = {}
        for name, value in self.metrics.items():
            if name == "cues":  # explanation metrics: one headline each
                from affect_llm.eval.cues import CUE_METRICS

                out.update({f"cues.{n}": (v or {}).get(CUE_METRICS[n].headline) for n, v in value["metrics"].items()})
                continue
            scalar = get_metric(name).scalar(value)
            if scalar is not None:
                out[name] = scalar
        return out


class EvalRunner:
    """Explain → cache → score → report for one suite over one dataset."""

    def __init__(
        self,
        suite: Suite,
        out_dir: str | os.PathLike[str],
        explainer: ExplainerLike,
        items: list[EvalItem] | None = None,
        *,
        batch_size: int = 8,
        plots: bool = True,
        progress: bool = True,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.suite = suite
        self.out = Path(out_dir)
        self.explainer = explainer
        self.items = items if items is not None else self.prepare(suite)
        self.label_space = resolve_label_space(suite, self.items)
        self.batch_size, self.plots, self.progress = batch_size, plots, progress
        self.provenance = provenance or {}
        check_data(suite, self.items)
        if plots:
            _require_matplotlib()

    @staticmethod
    def prepare(suite: Suite) -> list[EvalItem]:
        if not suite.data:
            raise AffectError(f"suite {suite.name!r} has no dataset; pass --data PATH (canonical JSONL)")
        return load_items(suite.data, suite.limit)

    @classmethod
    def from_pipeline(
        cls,
        suite: Suite,
        out_dir: str | os.PathLike[str],
        *,
        adapter: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 8,
        plots: bool = True,
        demos: str | None = None,
        k: int = 0,
        label_model: str | None = "default",
    ) -> EvalRunner:
        """Validate the suite, the data and the run folder first (cheap), then load the model behind `Explainer`."""
        from affect_llm.fileio import check_output_dir

        items = cls.prepare(suite)
        resolve_label_space(suite, items)
        check_data(suite, items)
        check_output_dir(Path(out_dir), inputs=[Path(suite.data)] if suite.data else [])
        if plots:
            _require_matplotlib()
        from affect_llm.pipeline import Explainer

        if suite.backend != "openai":
            from affect_llm.assets import resolve_adapter

            adapter = resolve_adapter(adapter, suite.model)
        kwargs: dict[str, Any] = {"model": suite.model, "adapter": adapter, "base_url": base_url, "api_key": api_key,
                                  "demos": demos, "k": k, "label_model": label_model}
        if suite.backend:
            kwargs["backend"] = suite.backend
        explainer = Explainer(**kwargs)
        provenance = {"adapter": adapter, "base_url": base_url}  # never the API key
        return cls(suite, out_dir, explainer, items, batch_size=batch_size, plots=plots, provenance=provenance)

    # -- paths ----------------------------------------------------------------------------------
    @property
    def predictions_path(self) -> Path:
        return self.out / "predictions.jsonl"

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """The whole run. A fresh folder that fails before its first answer is removed again, so a
        failed start leaves no half-written run behind; an interrupted run keeps its answers (rerun
        the same command to resume)."""
        fresh = not self.out.exists() or (self.out.is_dir() and not any(self.out.iterdir()))
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            return self._run()
        except BaseException:
            if fresh and not self.predictions_path.is_file():
                import shutil

                shutil.rmtree(self.out, ignore_errors=True)
            raise

    def _run(self) -> RunResult:
        described = self.explainer.describe()
        fingerprint = _fingerprint({"explainer": described, **self.provenance})
        run_path = self.out / "run.json"
        started = _now()
        if run_path.is_file():
            try:
                previous = json.loads(run_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise AffectError(f"{run_path} is damaged; delete it to resume (predictions are kept)") from None
            if previous.get("fingerprint") != fingerprint:
                raise AffectError(
                    f"{self.out} holds a run of another model or setup ({previous.get('explainer', {}).get('model')!r}); "
                    "use a new --out folder"
                )
            started = previous.get("started", started)
        run = self._run_card(described, fingerprint, started, status="running")
        write_json(run_path, run)

        cache = self._load_cache()
        todo = [it for it in self.items if cache.get(it.id, {}).get("input") != self._input_hash(it)]
        self._explain(todo, cache)

        records = [cache[it.id] for it in self.items]
        examples = [Example(list(it.labels), r["labels"], r.get("confidence")) for it, r in zip(self.items, records)]
        ctx = Context(task=self.suite.task, label_space=self.label_space)  # type: ignore[arg-type]
        metrics = {name: compute(name, examples, ctx) for name in self.suite.metrics}
        directions = {name: get_metric(name).direction for name in self.suite.metrics}
        if self.suite.cue_metrics:
            metrics["cues"] = self._cue_metrics(records)
            directions["cues"] = "higher"
        n_failed = sum(1 for r in records if r.get("error"))
        result = RunResult(self.out, len(self.items), n_failed, metrics, directions)
        write_json(self.out / "metrics.json", {
            "suite": self.suite.name, "task": self.suite.task, "n": result.n, "n_failed": n_failed,
            "headline": result.headline(), "directions": directions, "metrics": metrics,
        })
        plots = self._plots(metrics) if self.plots else []
        run = self._run_card(described, fingerprint, started, status="complete", n_failed=n_failed)
        atomic_write(self.out / "report.md", markdown_report(run, metrics, directions, plots))
        write_json(run_path, run)
        return result

    def _explain(self, todo: list[EvalItem], cache: dict[str, dict]) -> None:
        if not todo:
            return
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.items), initial=len(self.items) - len(todo), desc=f"eval {self.suite.name}", unit="sample")
        try:
            with self.predictions_path.open("a", encoding="utf-8") as fh:
                for i in range(0, len(todo), self.batch_size):
                    chunk = todo[i : i + self.batch_size]
                    for rec in self._predict(chunk):
                        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                        cache[rec["id"]] = rec
                    fh.flush()
                    os.fsync(fh.fileno())
                    if bar:
                        bar.update(len(chunk))
        finally:
            if bar:
                bar.close()

    def _requests(self, chunk: list[EvalItem]) -> list:
        from affect_llm.pipeline import request_from

        return [request_from(**self._request_fields(it)) for it in chunk]

    def _request_fields(self, it: EvalItem) -> dict[str, Any]:
        show = self.suite.task == "closed" and self.suite.prompt_label_space and self.label_space
        return {
            "text": it.text,
            "speaker": it.speaker,
            "context": list(it.context),
            "label_space": list(self.label_space) if show else None,
        }

    def _input_hash(self, it: EvalItem) -> str:
        fields = self._request_fields(it)
        fields["context"] = [t.model_dump() for t in it.context]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def _predict(self, chunk: list[EvalItem]) -> list[dict[str, Any]]:
        """Answers for a chunk. An answer the parser cannot read fails that sample only: it is recorded
        with its error, counted in the report, and scored as an empty prediction."""
        from affect_llm.parsing import ParseError

        reqs = self._requests(chunk)
        if hasattr(self.explainer, "with_demos"):  # retrieval once per chunk, queries carry their provenance
            reqs = self.explainer.with_demos(reqs, [it.as_sample() for it in chunk])
        try:
            reports: list[EmotionReport | ParseError] = list(
                self.explainer.explain_many(reqs, batch_size=len(reqs), progress=False)
            )
        except ParseError:
            reports = []
            for req in reqs:
                try:
                    reports.append(self.explainer.explain_many([req], batch_size=1, progress=False)[0])
                except ParseError as err:
                    reports.append(err)
        if len(reports) != len(chunk):
            raise RuntimeError(f"explain_many returned {len(reports)} reports for {len(chunk)} requests")
        out = []
        for it, rep in zip(chunk, reports):
            base = {"id": it.id, "input": self._input_hash(it), "gold": list(it.labels)}
            if isinstance(rep, Exception):
                out.append({**base, "labels": [], "confidence": None, "error": str(rep)})
            else:
                out.append({**base, **rep.to_json_dict()})
        return out

    def _cue_metrics(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Explanation metrics of the answers (`records`, in item order) against the samples' gold
        descriptions (same code as `affect-llm eval cues`); samples without a description are not scored."""
        from affect_llm.eval.cues import CueSample, score_cues

        samples = [CueSample(id=it.id, gold_text=it.description, pred_text=rec.get("explanation") or "",
                             gold_labels=list(it.labels), pred_labels=rec.get("labels") or [])
                   for it, rec in zip(self.items, records) if it.description]
        if not samples:
            raise AffectError("cue metrics: no sample of the dataset has a gold 'description'")
        return score_cues(samples, metrics=list(self.suite.cue_metrics)).as_dict()

    def _load_cache(self) -> dict[str, dict]:
        """Records of `predictions.jsonl` by id (the last line of an id wins). A last line cut short by
        an interruption is removed; damage anywhere else is an error."""
        path = self.predictions_path
        if not path.is_file():
            return {}
        cache: dict[str, dict] = {}
        from affect_llm.fileio import read_text

        text = read_text(path, "predictions cache")
        lines = text.split("\n")
        good_end = 0
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                good_end += len(line) + 1
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if not isinstance(rec, dict) or not isinstance(rec.get("id"), str) or not isinstance(rec.get("labels"), list):
                if lineno == len(lines) or (lineno == len(lines) - 1 and not lines[-1]):
                    atomic_write(path, text[:good_end])  # drop the torn tail, keep every complete record
                    break
                raise AffectError(f"{path}:{lineno}: damaged prediction record; delete the line (or the file) and rerun")
            cache[rec["id"]] = rec
            good_end += len(line) + 1
        else:
            if text and not text.endswith("\n"):
                atomic_write(path, text + "\n")  # a complete last record whose newline was lost
        return cache

    def _plots(self, metrics: dict[str, Any]) -> list[str]:
        names = []
        if "ov" in metrics:
            plot_wheels(metrics["ov"], self.out / "ov_wheels.png")
            names.append("ov_wheels.png")
        if "confusion_matrix" in metrics:
            plot_confusion(metrics["confusion_matrix"], self.out / "confusion_matrix.png")
            names.append("confusion_matrix.png")
        return names

    def _run_card(self, described: dict[str, Any], fingerprint: str, started: str, status: str, n_failed: int = 0) -> dict[str, Any]:
        data = Path(self.suite.data) if self.suite.data else None
        return {
            "status": status,
            "started": started,
            "finished": _now() if status == "complete" else None,
            "command": sys.argv,
            "fingerprint": fingerprint,
            "suite": self.suite.as_dict(),
            "label_space": list(self.label_space) if self.label_space else None,
            "data": {
                "path": str(data) if data else None,
                "sha256": _file_sha256(data) if data and data.is_file() else "",
                "n": len(self.items),
            },
            "explainer": described,
            **self.provenance,
            "batch_size": self.batch_size,
            "n_failed": n_failed,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": package_versions(),
        }


def check_data(suite: Suite, items: list[EvalItem]) -> None:
    """The fields the suite needs, checked on every sample before any model loads."""
    if suite.task == "closed" and any(not it.labels for it in items):
        bad = next(it.id for it in items if not it.labels)
        raise AffectError(f"closed task: sample {bad!r} has no gold label")
    if suite.cue_metrics and not any(it.description for it in items):
        raise AffectError(f"suite {suite.name!r} scores explanations against gold descriptions, but no sample of "
                          f"{suite.data} has a 'description' (use a dataset with descriptions, e.g. OV-MERD, or "
                          "another suite)")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results (absent ones are left out)."""
    from importlib import metadata

    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _require_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise AffectError("plots need matplotlib: pip install 'affect-llm[eval]' (or pass --no-plots)")


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
