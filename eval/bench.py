"""`affect-llm eval bench`: one model over every benchmark cell whose data the user has, one summary table.

A *cell* is a dataset under a named protocol (builder + options + split, the suite that scores it and
the metrics the field reports for it). For each cell the bench builds the canonical JSONL from the
user's copy of the corpus (`--data-root DIR/<folder>`), runs the one evaluation runner
(`runner.EvalRunner`) into `RUN_DIR/<cell>/` and collects the reported figures next to the published
anchors (`anchors.py`). Cells without data are listed as skipped with the reason.

Resuming is the runner's: each cell folder keeps its prediction cache, so rerunning the same command
only explains what is missing. The model is scored once, on the split asked for: nothing here picks a
checkpoint, prompt or threshold, and `--split dev` is the place for any such choice.

`compare_runs` puts bench runs side by side: per cell and metric, the difference to the first run with
a paired bootstrap confidence interval over the samples both runs scored.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from affect_llm.eval.anchors import anchors_for
from affect_llm.eval.metrics import Context, Example, get_metric
from affect_llm.eval.runner import EvalRunner, ExplainerLike, _now, package_versions
from affect_llm.eval.suite import load_suite

from affect_llm.errors import AffectError
from affect_llm.fileio import atomic_write, write_json

CLOSED_METRICS = ("accuracy", "macro_f1", "weighted_f1", "uar", "confusion_matrix")
METRIC_NAMES = {
    "weighted_f1": "weighted F1", "accuracy": "accuracy", "uar": "UAR", "hit_rate": "hit rate",
    "ov.m_avg": "M-avg (OV-MER)", "ov.ew_level1.f1": "EW-L1 F", "ov.ew_level2.f1": "EW-L2 F",
}
LABEL_EXTRACTION = ("none: labels are read from the model's JSON answer by affect_llm.parsing "
                    "(no second model maps free text to labels)")


@dataclass(frozen=True)
class Cell:
    """One row group of the benchmark table."""

    key: str
    dataset: str
    builder: str
    folders: tuple[str, ...]  # accepted folder names under --data-root
    suite: str  # bundled suite the cell runs (closed-text, unibench-hit, ov-text)
    report: tuple[tuple[str, str], ...]  # (metric path, the field's name for it)
    protocol: str
    options: dict[str, str] = field(default_factory=dict)
    test_split: str = "test"
    dev_split: str | None = "dev"

    def metrics(self) -> tuple[str, ...]:
        if self.suite == "closed-text":
            return CLOSED_METRICS
        return tuple(dict.fromkeys(path.split(".")[0] for path, _ in self.report))


_ERC = "test split, speaker-aware window of 8 turns, label set in the prompt"
CELLS: tuple[Cell, ...] = (
    Cell("meld-7", "MELD", "meld", ("MELD",), "closed-text", (("weighted_f1", "weighted F1"),),
         f"7 emotions, {_ERC}"),
    Cell("emorynlp-7", "EmoryNLP", "emorynlp", ("EmoryNLP",), "closed-text", (("weighted_f1", "weighted F1"),),
         f"7 emotions, {_ERC}"),
    Cell("iemocap-6", "IEMOCAP", "iemocap", ("IEMOCAP", "IEMOCAP_full_release"), "closed-text",
         (("weighted_f1", "weighted F1"), ("accuracy", "accuracy")), f"6 classes, Session 5, {_ERC}",
         {"classes": "6"}),
    Cell("iemocap-4", "IEMOCAP", "iemocap", ("IEMOCAP", "IEMOCAP_full_release"), "closed-text",
         (("accuracy", "WA"), ("uar", "UA")), f"4 classes (excited → happy), Session 5, {_ERC}", {"classes": "4"}),
    Cell("mosi-2", "CMU-MOSI", "cmu-mosi", ("CMU-MOSI", "MOSI"), "closed-text",
         (("accuracy", "Acc-2"), ("weighted_f1", "F1")), "negative / positive, score 0 left out (non0), test split",
         {"classes": "2", "binary": "non0"}),
    Cell("mosi-7", "CMU-MOSI", "cmu-mosi", ("CMU-MOSI", "MOSI"), "closed-text", (("accuracy", "Acc-7"),),
         "rounded score -3..3, test split", {"classes": "7"}),
    Cell("mosei-2", "CMU-MOSEI", "cmu-mosei", ("CMU-MOSEI", "MOSEI"), "closed-text",
         (("accuracy", "Acc-2"), ("weighted_f1", "F1")), "negative / positive, score 0 left out (non0), test split",
         {"classes": "2", "binary": "non0"}),
    Cell("mosei-7", "CMU-MOSEI", "cmu-mosei", ("CMU-MOSEI", "MOSEI"), "closed-text", (("accuracy", "Acc-7"),),
         "rounded score -3..3, test split", {"classes": "7"}),
    Cell("sims-2", "CH-SIMS", "ch-sims", ("CH-SIMS", "SIMS"), "closed-text",
         (("accuracy", "Acc-2"), ("weighted_f1", "F1")), "score <= 0 negative, > 0 positive, test split",
         {"classes": "2"}),
    Cell("sims2-2", "CH-SIMS v2", "ch-sims2", ("CH-SIMS-v2", "SIMSv2", "CH-SIMS v2"), "closed-text",
         (("accuracy", "Acc-2"), ("weighted_f1", "F1")), "score <= 0 negative, > 0 positive, test split",
         {"classes": "2"}),
    Cell("mer2023-hit", "MER2023", "mer2023", ("MER2023_text", "MER2023"), "unibench-hit",
         (("hit_rate", "hit rate"),), "MER-UniBench basic emotions: free answers, test1", test_split="test1",
         dev_split=None),
    Cell("mer2024-semi", "MER2024", "mer2024", ("MER2024",), "closed-text", (("weighted_f1", "WAF"),),
         "MER-SEMI test, 6 classes in the prompt", {"track": "semi"}, dev_split=None),
    Cell("mer2024-ov", "MER2024", "mer2024", ("MER2024",), "ov-text",
         (("ov.ew_level1.f1", "EW-L1 F"), ("ov.ew_level2.f1", "EW-L2 F")), "MER-OV test, open vocabulary",
         {"track": "ov"}, dev_split=None),
    Cell("mer2025-semi", "MER2025", "mer2025", ("MER2025",), "closed-text", (("weighted_f1", "WAF"),),
         "Track 1 (MER-SEMI) test, 6 classes in the prompt", {"track": "semi"}, dev_split=None),
    Cell("mer2025-fg", "MER2025", "mer2025", ("MER2025",), "ov-text",
         (("ov.ew_level1.f1", "EW-L1 F"), ("ov.ew_level2.f1", "EW-L2 F")), "Track 2 (MER-FG) test, open vocabulary",
         {"track": "fg"}, dev_split=None),
    Cell("ovmerd", "OV-MERD", "ovmerd", ("OV-MERD",), "ov-text", (("ov.m_avg", "M-avg"),),
         "all samples, open vocabulary (OV-MER protocol)", test_split="all", dev_split=None),
)


def cell_by_key() -> dict[str, Cell]:
    return {c.key: c for c in CELLS}


def select_cells(keys: Sequence[str] | None) -> list[Cell]:
    if not keys:
        return list(CELLS)
    table = cell_by_key()
    bad = [k for k in keys if k not in table]
    if bad:
        raise AffectError(f"unknown bench cell(s) {', '.join(map(repr, bad))}; choose from {', '.join(table)}")
    return [table[k] for k in keys]


def metric_value(metrics: dict[str, Any], path: str) -> float | None:
    """`"ov.ew_level1.f1"` → metrics["ov"]["ew_level1"]["f1"]."""
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) else None


# ------------------------------------------------------------------------------------------ the run


def find_folder(root: Path, cell: Cell) -> Path | None:
    for name in cell.folders:
        if (root / name).is_dir():
            return root / name
    return None


def run_bench(
    out: Path,
    data_root: Path,
    make_explainer: Callable[[], tuple[ExplainerLike, dict[str, Any]]],
    *,
    cells: Sequence[Cell] | None = None,
    split: str = "test",
    limit: int | None = None,
    batch_size: int = 8,
    plots: bool = True,
    progress: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Run every cell with data; write `bench.json`, `bench.md` (and `bench.png`); return the summary.

    `make_explainer()` is called once, at the first cell that has data, and returns the explainer plus
    the provenance the runner records (adapter, base URL).
    """
    from affect_llm.data_builders.registry import build_dataset

    if split not in ("test", "dev"):
        raise AffectError(f"--split must be test or dev, got {split!r}")
    if not data_root.is_dir():
        raise AffectError(f"--data-root {data_root}: no such folder")
    if plots:
        from affect_llm.eval.runner import _require_matplotlib

        _require_matplotlib()
    out.mkdir(parents=True, exist_ok=True)
    random.seed(seed)
    explainer: ExplainerLike | None = None
    provenance: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for cell in cells or CELLS:
        row: dict[str, Any] = {"cell": cell.key, "dataset": cell.dataset, "protocol": cell.protocol,
                               "suite": cell.suite, "builder": cell.builder, "options": cell.options}
        rows.append(row)
        folder = find_folder(data_root, cell)
        data_split = cell.test_split if split == "test" else cell.dev_split
        if folder is None:
            row.update(status="skipped", reason=f"no {' or '.join(cell.folders)} folder under {data_root}")
            continue
        if data_split is None:
            row.update(status="skipped", reason=f"{cell.dataset} has no dev split under this protocol")
            continue
        jsonl = out / "data" / f"{cell.key}.jsonl"
        try:
            card = build_dataset(cell.builder, folder, jsonl, split=data_split, options=dict(cell.options))
        except AffectError as e:
            row.update(status="skipped", reason=str(e))
            continue
        if explainer is None:
            explainer, provenance = make_explainer()
        suite = replace(load_suite(cell.suite), name=f"bench-{cell.key}", data=str(jsonl), metrics=cell.metrics(),
                        limit=limit)
        runner = EvalRunner(suite, out / cell.key, explainer, batch_size=batch_size, plots=plots, progress=progress,
                            provenance=provenance)
        result = runner.run()
        row.update(status="ok", split=data_split, source=str(folder), n=result.n, n_failed=result.n_failed,
                   licence=card["licence"], run_dir=cell.key,
                   values=[{"metric": path, "name": name, "value": metric_value(result.metrics, path),
                            "anchors": [a.as_dict() for a in anchors_for(cell.key, path)]}
                           for path, name in cell.report])
    summary = {
        "created": _now(),
        "split": split,
        "data_root": str(data_root.resolve()),
        "limit": limit,
        "seed": seed,
        "label_extraction": LABEL_EXTRACTION,
        "selection": "scored once on the split above; no checkpoint, prompt or threshold is chosen on test data",
        "explainer": explainer.describe() if explainer is not None else None,
        **({"provenance": provenance} if provenance else {}),
        "packages": package_versions(),
        "rows": rows,
    }
    plot = None
    if plots and any(r["status"] == "ok" for r in rows):
        plot = plot_bench(summary, out / "bench.png")
    write_json(out / "bench.json", summary)
    atomic_write(out / "bench.md", bench_markdown(summary, plot))
    return summary


# ------------------------------------------------------------------------------------------ reports


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def bench_markdown(summary: dict[str, Any], plot: str | None = None) -> str:
    ex = summary.get("explainer") or {}
    lines = [
        "# affect-llm benchmark",
        "",
        (f"- **model**: `{ex.get('model', 'n/a')}` ({ex.get('backend', 'n/a')}, template {ex.get('template', 'n/a')}, "
         f"temperature {ex.get('temperature', 'n/a')}, seed {ex.get('seed', 'n/a')})"),
        f"- **split**: {summary['split']}" + (f", first {summary['limit']} samples per cell" if summary["limit"] else ""),
        f"- **label extraction**: {summary['label_extraction']}",
        f"- **selection**: {summary['selection']}",
        f"- **data root**: `{summary['data_root']}`; created {summary['created']}",
        "",
        ("Figures in %. Anchors are the papers' test-set figures for the same protocol and metric (see "
         "`affect_llm/eval/anchors.py`; transcribed by hand, check the source before citing)."),
        "",
        "| dataset | protocol | metric | n | this model | published anchors |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        if r["status"] != "ok":
            continue
        for v in r["values"]:
            anchors = "; ".join(f"{_pct(a['value'])} {a['model']} ({a['size']}; {a['source']})" for a in v["anchors"])
            n = f"{r['n']}" + (f" ({r['n_failed']} unreadable)" if r["n_failed"] else "")
            lines.append(f"| {r['dataset']} (`{r['cell']}`) | {r['protocol']} | {v['name']} | {n} | "
                         f"{_pct(v['value'])} | {anchors or '—'} |")
    skipped = [r for r in summary["rows"] if r["status"] != "ok"]
    if skipped:
        lines += ["", "## Skipped (no data)", "", "| cell | dataset | reason |", "|---|---|---|"]
        lines += [f"| `{r['cell']}` | {r['dataset']} | {r['reason'].replace('|', '/')} |" for r in skipped]
    if plot:
        lines += ["", f"![{plot}]({plot})"]
    lines += ["", "Per-cell run folders hold `predictions.jsonl`, `metrics.json`, `report.md` and `run.json`."]
    return "\n".join(lines) + "\n"


def plot_bench(summary: dict[str, Any], path: Path) -> str:
    """Horizontal bars: the model's figure per (cell, metric); anchors as markers on the same row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = [(f"{r['cell']} {v['name']}", v) for r in summary["rows"] if r["status"] == "ok" for v in r["values"]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(items) + 1.2))
    ys = list(range(len(items)))[::-1]
    ax.barh(ys, [100 * (v["value"] or 0.0) for _, v in items], color="#4C72B0", label="this model")
    shown = False
    for y, (_, v) in zip(ys, items):
        for a in v["anchors"]:
            ax.plot(100 * a["value"], y, "k|", markersize=14, label=None if shown else "published anchors")
            shown = True
    ax.set_yticks(ys, [label for label, _ in items])
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path.name


# ------------------------------------------------------------------------------------------ compare


def paired_bootstrap(
    records_a: Sequence[Any],
    records_b: Sequence[Any],
    aggregate: Callable[[list[Any]], float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """CI of `aggregate(b) - aggregate(a)`, resampling the same sample indices for both runs.

    Records are per-sample metric records aligned by sample; each bootstrap draw takes n indices with
    replacement and scores both runs on them, so the spread reflects the samples, not the runs' noise.
    """
    import numpy as np

    n = len(records_a)
    if n != len(records_b) or n == 0:
        raise AffectError(f"paired bootstrap needs two aligned, non-empty runs (got {n} and {len(records_b)} samples)")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    diffs = np.array([aggregate([records_b[i] for i in row]) - aggregate([records_a[i] for i in row]) for row in draws])
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return {"n": n, "diff": aggregate(list(records_b)) - aggregate(list(records_a)), "low": float(low),
            "high": float(high), "n_boot": n_boot, "seed": seed, "confidence": 1 - alpha}


def _per_sample(run_dir: Path) -> tuple[dict[str, Example], Context]:
    preds = {}
    path = run_dir / "predictions.jsonl"
    if not path.is_file():
        raise AffectError(f"{run_dir}: no predictions.jsonl (run the bench first)")
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            preds[rec["id"]] = Example(rec.get("gold") or [], rec.get("labels") or [], rec.get("confidence"))
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return preds, Context(task=run["suite"]["task"], label_space=run.get("label_space"))


def _aggregator(path: str, ctx: Context) -> tuple[Callable[[Example], Any], Callable[[list[Any]], float]]:
    name, _, rest = path.partition(".")
    m = get_metric(name)

    def agg(records: list[Any]) -> float:
        value = m.aggregate(records, ctx)
        got = metric_value({name: value}, path) if rest else value
        return float(got or 0.0)

    return (lambda e: m.per_sample(e, ctx)), agg


def compare_runs(run_dirs: Sequence[Path], out: Path, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Side-by-side table of bench runs; differences to the first run with paired bootstrap CIs."""
    if len(run_dirs) < 2:
        raise AffectError("--compare needs two or more bench run folders")
    summaries = []
    for d in run_dirs:
        p = Path(d) / "bench.json"
        if not p.is_file():
            raise AffectError(f"{d}: no bench.json (not an `affect-llm eval bench` run folder)")
        summaries.append(json.loads(p.read_text(encoding="utf-8")))
    ok = [{r["cell"]: r for r in s["rows"] if r["status"] == "ok"} for s in summaries]
    common = [c for c in ok[0] if all(c in o for o in ok[1:])]
    rows = []
    for cell in common:
        per_run = [_per_sample(Path(d) / ok[i][cell]["run_dir"]) for i, d in enumerate(run_dirs)]
        ids = [sid for sid in per_run[0][0] if all(sid in p for p, _ in per_run[1:])]
        for v in ok[0][cell]["values"]:
            per_sample, agg = _aggregator(v["metric"], per_run[0][1])
            base = [per_sample(per_run[0][0][sid]) for sid in ids]
            row = {"cell": cell, "dataset": ok[0][cell]["dataset"], "metric": v["metric"], "name": v["name"],
                   "n_paired": len(ids), "values": [agg([per_sample(p[sid]) for sid in ids]) for p, _ in per_run],
                   "diffs": []}
            for p, _ in per_run[1:]:
                other = [per_sample(p[sid]) for sid in ids]
                row["diffs"].append(paired_bootstrap(base, other, agg, n_boot=n_boot, seed=seed) if ids else None)
            rows.append(row)
    doc = {"created": _now(), "runs": [str(d) for d in run_dirs],
           "models": [(s.get("explainer") or {}).get("model") for s in summaries],
           "bootstrap": {"n_boot": n_boot, "seed": seed, "confidence": 0.95, "paired_by": "sample id"},
           "rows": rows,
           "not_compared": sorted(set().union(*ok) - set(common))}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", doc)
    atomic_write(out / "compare.md", compare_markdown(doc))
    return doc


def compare_markdown(doc: dict[str, Any]) -> str:
    runs = doc["runs"]
    head = ["dataset", "metric", "n"] + [f"run {i + 1}" for i in range(len(runs))]
    head += [f"run {i + 1} − run 1 [95% CI]" for i in range(1, len(runs))]
    lines = ["# affect-llm benchmark comparison", ""]
    lines += [f"- run {i + 1}: `{r}` (model `{m}`)" for i, (r, m) in enumerate(zip(runs, doc["models"]))]
    lines += ["", (f"Paired bootstrap over the samples every run scored ({doc['bootstrap']['n_boot']} draws, "
                   f"seed {doc['bootstrap']['seed']}); figures in %; * = the interval excludes 0."), "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in doc["rows"]:
        cells = [f"{r['dataset']} (`{r['cell']}`)", r["name"], str(r["n_paired"])] + [_pct(v) for v in r["values"]]
        for d in r["diffs"]:
            if d is None:
                cells.append("n/a")
                continue
            star = "*" if d["low"] > 0 or d["high"] < 0 else ""
            cells.append(f"{100 * d['diff']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]{star}")
        lines.append("| " + " | ".join(cells) + " |")
    if doc["not_compared"]:
        lines += ["", "Not compared (missing from a run): " + ", ".join(f"`{c}`" for c in doc["not_compared"])]
    return "\n".join(lines) + "\n"
