"""Readable terminal rendering of an explain answer (rich)."""

from __future__ import annotations

from affect_llm.schema import EmotionReport


def report_panel(report: EmotionReport):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    head = Text()
    head.append("Feels: ", style="bold")
    head.append(", ".join(report.labels), style="bold magenta")
    if report.confidence is not None:
        filled = round(report.confidence * 10)
        head.append(f"   confidence {report.confidence:.2f} ", style="dim")
        head.append("█" * filled + "░" * (10 - filled), style="cyan")
    parts: list = [head, Text(report.explanation or "(no explanation)")]
    if report.explanation_rewritten:  # say so: the sentence is the evidence's, not the model's own words
        parts.append(Text(f"(written from the cited evidence: the model's own sentence {_why(report)})", style="dim"))
    elif report.inconsistent:
        parts.append(Text("(the explanation names emotions outside its labels)", style="dim yellow"))
    if report.cues:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("modality")
        table.add_column("cue")
        table.add_column("evidence", style="dim")
        for c in report.cues:
            table.add_row(c.modality, c.cue, c.evidence)
        parts.append(table)
    gen = report.timings.get("generate_s")
    footer = f"{report.model} · {report.template}" + (f" · {gen:.2f} s" if gen is not None else "")
    return Panel(Group(*parts), title="affect-llm", subtitle=footer, expand=False)


_WHY = {"a quote not in the input": "quoted words not in the input",
        "a quote given to the wrong speaker": "gave a quote to the wrong speaker",
        "cites no evidence": "cited nothing from the input",
        "names emotions outside its labels": "named other emotions than its labels"}


def _why(report: EmotionReport) -> str:
    reasons = [_WHY.get(r, "was broken") for r in report.explanation_rewritten]
    return ", ".join(dict.fromkeys(reasons))
