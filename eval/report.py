"""What a person reads after a run: tables (terminal and Markdown) and PNG plots.

Every file is written to a temporary name in the same folder and renamed into place, so a crash never
leaves a half-written report next to valid ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affect_llm.fileio import atomic_write, write_json  # noqa: F401  (re-exported for callers)
from affect_llm.emotion_wheel import LEVELS, WHEELS


# --------------------------------------------------------------------------- OV-MER tables
def ov_rows(doc: dict[str, Any]) -> list[tuple[str, float, float | None, float | None, int | None]]:
    """(name, F1, precision, recall, n) rows of an OV-MER document, in reading order."""
    rows: list[tuple[str, float, float | None, float | None, int | None]] = []
    for key, name in (("m1", "M1"), ("m2", "M2")):
        d = doc[key]
        rows.append((name, d["f1"], d["precision"], d["recall"], None))
    for w in WHEELS:
        for lv in LEVELS:
            d = doc["wheels"][w][lv]
            rows.append((f"{w} {lv}", d["f1"], d["precision"], d["recall"], d["n"]))
    for lv in LEVELS:
        d = doc[f"ew_{lv}"]
        rows.append((f"EW {lv}", d["f1"], d["precision"], d["recall"], None))
    rows.append(("M-avg", doc["m_avg"], None, None, None))
    return rows


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def ov_table(doc: dict[str, Any], title: str = "OV-MER scores"):
    """A rich table of an OV-MER document (percentages)."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("metric", "F1 %", "precision %", "recall %", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, f, p, r, n in ov_rows(doc):
        style = "bold" if name.startswith(("EW", "M-avg")) else None
        table.add_row(name, _pct(f), _pct(p), _pct(r), "" if n is None else str(n), style=style)
    return table


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_report(run: dict[str, Any], metrics: dict[str, Any], directions: dict[str, str], plots: list[str]) -> str:
    """report.md: provenance, one line per scalar metric, the OV-MER table, the confusion matrix."""
    ex = run.get("explainer", {})
    out = [
        f"# Evaluation: {run['suite']['name']}",
        "",
        f"- model: `{ex.get('model')}` ({ex.get('backend')}), template `{ex.get('template')}`",
        f"- data: `{run['data']['path']}` ({run['data']['n']} samples, sha256 {run['data']['sha256'][:12]}…)",
        f"- task: {run['suite']['task']}; failed answers: {run.get('n_failed', 0)} (scored as empty)",
        f"- finished: {run.get('finished')}",
        "",
        "## Scores",
        "",
    ]
    rows = []
    for name, value in metrics.items():
        if name in ("ov", "confusion_matrix", "cues"):
            continue
        rows.append([name, _fmt(value), directions.get(name, "")])
    if "ov" in metrics:
        rows.insert(0, ["ov (M-avg)", _fmt(metrics["ov"]["m_avg"]), directions.get("ov", "")])
    out.append(_md_table(["metric", "value", "better"], rows))
    if "ov" in metrics:
        out += ["", "## OV-MER (emotion wheels)", ""]
        out.append(_md_table(
            ["metric", "F1 %", "precision %", "recall %", "n"],
            [[name, _pct(f), _pct(p), _pct(r), "" if n is None else str(n)] for name, f, p, r, n in ov_rows(metrics["ov"])],
        ))
    if "cues" in metrics:
        from affect_llm.eval.cues import CUE_METRICS

        cues = metrics["cues"]
        out += ["", f"## Explanation cue metrics (n = {cues['n']} samples with a gold description)", ""]
        out.append(_md_table(["metric", "value", "better"], [
            [name, _fmt((value or {}).get(CUE_METRICS[name].headline)), "higher"] for name, value in cues["metrics"].items()
        ]))
    if "confusion_matrix" in metrics:
        cm = metrics["confusion_matrix"]
        out += ["", "## Confusion matrix (rows gold, columns predicted)", ""]
        out.append(_md_table(["gold \\ pred"] + cm["columns"], [[g] + [str(v) for v in row] for g, row in zip(cm["labels"], cm["matrix"])]))
    if plots:
        out += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots
def _save(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write(path, buf.getvalue())


def plot_confusion(cm: dict[str, Any], path: Path) -> None:
    """Row-normalised confusion matrix heat map with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.array(cm["matrix"], dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(cm["columns"]) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cm["columns"])), cm["columns"], rotation=45, ha="right")
    ax.set_yticks(range(len(cm["labels"])), cm["labels"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of gold row")
    ax.set_title("Confusion matrix")
    _save(fig, path)
    plt.close(fig)


def plot_wheels(doc: dict[str, Any], path: Path) -> None:
    """Per-wheel F1 bars at both levels, with the EW averages as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(WHEELS))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, (lv, color) in enumerate(zip(LEVELS, ("tab:blue", "tab:orange"))):
        vals = [100 * doc["wheels"][w][lv]["f1"] for w in WHEELS]
        ax.bar(x + (k - 0.5) * 0.38, vals, width=0.38, label=f"{lv}", color=color)
        ax.axhline(100 * doc[f"ew_{lv}"]["f1"], color=color, linestyle="--", linewidth=1, label=f"EW {lv}")
    ax.set_xticks(x, WHEELS)
    ax.set_ylabel("F1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"OV-MER F1 per emotion wheel (M-avg {100 * doc['m_avg']:.1f})")
    ax.legend(ncol=2, fontsize=8)
    _save(fig, path)
    plt.close(fig)
