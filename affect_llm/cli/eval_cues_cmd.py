"""`affect-llm eval cues`: score explanations — embedding cue matching, grounding, and the EMER judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def cues(
    pred: Annotated[Path, typer.Option("--pred", help="predictions JSONL: {\"id\", \"explanation\"|\"description\", "
                                       "\"labels\"?, \"cues\"?, \"input\"?} per line (explain --json answers and "
                                       "eval run predictions.jsonl work as they are)")],
    gold: Annotated[Path, typer.Option("--gold", help="gold JSONL: {\"id\", \"description\", \"labels\"|\"openset\"?, "
                                       "\"input\"?} per line (canonical dataset JSONL works as it is)")],
    judge: Annotated[str | None, typer.Option(
        "--judge", help="LLM judge for clue/label overlap and label extraction: 'default' (embedded model), "
        "a model folder / asset / hub id, or an OpenAI-compatible server URL (e.g. http://127.0.0.1:8000/v1)")] = None,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="served model name when --judge is a URL")] = None,
    judge_api_key: Annotated[str | None, typer.Option("--judge-api-key", help="API key when --judge is a URL")] = None,
    judge_constrain: Annotated[bool, typer.Option(
        "--judge-constrain/--judge-free-text", help="enforce the {\"score\": 1..10} schema (off: parse free text)")] = True,
    seed: Annotated[int, typer.Option("--seed", help="judge decoding seed (temperature is 0)")] = 0,
    judge_cache: Annotated[Path | None, typer.Option(
        "--judge-cache", help="judge answer cache folder (default: <asset cache>/judge)")] = None,
    metrics: Annotated[str | None, typer.Option(
        "--metrics", help="comma-separated subset of: cue_f1, cue_soft_f1, grounding_rate, clue_overlap, "
        "label_overlap, ov_extracted")] = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="cosine threshold of a cue match (default 0.6, for MiniLM)")] = None,
    embedder: Annotated[str, typer.Option(
        "--embedder", help="sentence-transformers model: asset, folder or hub id")] = "minilm",
    out: Annotated[Path | None, typer.Option(
        "--out", help="also write cues.json (with per-sample scores) and cues.md here")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document (fractions, judge scores 1-10)")] = False,
) -> None:
    """Score free-text emotion explanations against gold descriptions.

    Without --judge: deterministic metrics only (embedding cue P/R/F, and the grounding rate when an
    'input' field records the textualized input). With --judge: also EMER clue overlap, label overlap
    and OV-MER scores of labels extracted with the official MER prompt (cached under the asset cache).
    """
    from affect_llm.errors import AffectError
    from affect_llm.eval.cues import (
        DEFAULT_THRESHOLD,
        CueScorer,
        align_cue_files,
        config_lines,
        markdown_table,
        read_cue_file,
        score_cues,
    )

    if out is not None:
        from affect_llm.fileio import check_output_dir

        check_output_dir(out, inputs=[gold, pred])  # before the embedder or the judge loads
    gold_map = read_cue_file(gold, "gold")
    if not gold_map:
        raise AffectError(f"gold file {gold} has no samples")
    samples = align_cue_files(gold_map, read_cue_file(pred, "prediction"))
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    if names is not None and not names:
        raise AffectError("--metrics is empty")
    scorer = CueScorer(embedder, threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
    judge_obj = None
    if judge is not None:
        from affect_llm.eval.judge import Judge, make_judge_backend

        backend = make_judge_backend(judge, model=judge_model, api_key=judge_api_key)
        judge_obj = Judge(backend, seed=seed, constrained=judge_constrain, progress=not json_out,
                          cache=judge_cache if judge_cache is not None else True)
    elif judge_model or judge_api_key:
        raise AffectError("--judge-model and --judge-api-key need --judge URL")
    report = score_cues(samples, metrics=names, scorer=scorer, judge=judge_obj)
    doc = report.as_dict()
    if out is not None:
        from affect_llm.eval.report import atomic_write, write_json

        write_json(out / "cues.json", report.as_dict(per_sample=True))
        md = f"# Explanation scores — {report.n} gold samples\n\n" + markdown_table(report) + "\n" + "".join(
            f"- {line}\n" for line in config_lines(report))
        atomic_write(out / "cues.md", md)
    if json_out:
        typer.echo(json.dumps(doc))
        return
    from rich.console import Console
    from rich.table import Table

    from affect_llm.eval.cues import HEADER, summary_rows

    table = Table(title=f"Explanation scores — {report.n} gold samples")
    for h in HEADER:
        table.add_column(h, justify="left" if h == "metric" else "right")
    for row in summary_rows(report):
        table.add_row(*row)
    console = Console()
    console.print(table)
    for line in config_lines(report):
        console.print(f"  {line}", style="dim")
