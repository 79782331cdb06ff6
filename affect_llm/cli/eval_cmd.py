"""`affect-llm eval ov|run`: score label files with the OV-MER metrics; run an evaluation suite."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from affect_llm.errors import AffectError

app = typer.Typer(
    help="Evaluate: OV-MER emotion-wheel scores of label files, or a full suite run over a dataset.",
    no_args_is_help=True,
)


@app.command("ov")
def ov_cmd(
    pred: Path = typer.Option(..., "--pred", help="predictions JSONL: {\"id\": str, \"labels\": [str]} per line"),
    gold: Path = typer.Option(..., "--gold", help="gold JSONL, same format ('openset': \"[a, b]\" also accepted)"),
    json_out: bool = typer.Option(False, "--json", help="print the scores as one JSON document (fractions)"),
) -> None:
    """Official OV-MER scores (M1, M2, emotion wheels, EW-L1/L2, M-avg) of predictions against gold.

    A gold id without a prediction counts as an empty prediction; a predicted id missing from gold is
    an error.
    """
    from affect_llm.eval.label_files import score_label_files

    doc = score_label_files(gold, pred)
    if json_out:
        typer.echo(json.dumps(doc))
        return
    from rich.console import Console

    from affect_llm.eval.report import ov_table

    Console().print(ov_table(doc, title="OV-MER scores (n = samples whose gold labels map)"))


@app.command("run")
def run_cmd(
    suite: str = typer.Option("ov-text", "--suite", help="suite name (see `affect-llm eval suites`) or a YAML path"),
    data: Path | None = typer.Option(None, "--data", help="canonical JSONL dataset (overrides the suite's)"),
    out: Path = typer.Option(..., "--out", help="run directory; an existing one of the same config is resumed"),
    model: str | None = typer.Option(None, "--model", help="model id or path (default: the suite's / built-in)"),
    backend: str | None = typer.Option(None, "--backend", help="auto | llamacpp | transformers | vllm | openai (auto: llama.cpp for the embedded model when installed)"),
    adapter: str | None = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the bundled tuned "
                                       "adapter when the model is the embedded default)"),
    no_adapter: bool = typer.Option(False, "--no-adapter", help="score the bare model, without the bundled adapter"),
    label_model: Path | None = typer.Option(None, "--label-model", help="label model folder (default: the bundled "
                                            "one when the model is the embedded default)"),
    no_label_model: bool = typer.Option(False, "--no-label-model", help="no label-model prior in the prompts"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    api_key: str | None = typer.Option(None, "--api-key", help="API key for --base-url"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="score only the first N samples"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="requests per explain_many call"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG plots (needs matplotlib)"),
    demos: Path | None = typer.Option(None, "--demos", help="demonstration index folder (affect-llm index build)"),
    k: int = typer.Option(4, "--k", min=1, max=32, help="demonstrations per query with --demos"),
) -> None:
    """Run the explain pipeline over a dataset, cache predictions (resumable), score and write a report."""
    from rich.console import Console

    from affect_llm.eval.runner import EvalRunner
    from affect_llm.eval.suite import load_suite

    if demos is not None and not demos.is_dir():
        raise AffectError(f"demonstration index folder not found: {demos}")
    if adapter is not None and no_adapter:
        raise AffectError("give either --adapter or --no-adapter, not both")
    if adapter is not None and adapter != "default" and not Path(adapter).is_dir():
        raise AffectError(f"adapter folder not found: {adapter}")
    adapter = None if no_adapter else (adapter or "default")
    from affect_llm.cli.explain_cmd import _label_model_choice

    lm = _label_model_choice(label_model, no_label_model)
    s = load_suite(suite)
    s = s.with_overrides(data=data, model=model, backend=backend, limit=limit)
    runner = EvalRunner.from_pipeline(
        s, out, adapter=adapter, base_url=base_url, api_key=api_key, batch_size=batch_size, plots=plots,
        demos=str(demos) if demos else None, k=k if demos else 0, label_model=lm,
    )
    try:
        result = runner.run()
    except KeyboardInterrupt:
        done = runner.predictions_path
        kept = sum(1 for line in done.open("rb") if line.strip()) if done.is_file() else 0
        typer.echo(f"\ninterrupted: {kept} answer(s) are kept in {done}; rerun the same command to resume",
                   err=True)
        raise typer.Exit(130) from None
    console = Console(stderr=True)
    console.print(f"[green]✓[/] {result.n} samples scored → {out}")
    for name, value in result.headline().items():
        console.print(f"  {name}: {value}")


@app.command("bench")
def bench_cmd(
    runs: list[Path] | None = typer.Argument(None, help="with --compare: two or more bench run folders"),
    out: Path = typer.Option(..., "--out", help="bench run folder (resumable), or the comparison folder"),
    data_root: Path | None = typer.Option(None, "--data-root", help="folder holding the corpora (MELD/, IEMOCAP/, "
                                          "CMU-MOSI/, MER2025/, ...); cells without their folder are skipped"),
    cells: str | None = typer.Option(None, "--cells", help="comma-separated cell keys (default: all; see eval/bench.py)"),
    split: str = typer.Option("test", "--split", help="test (the reported protocol) or dev (for any selection)"),
    model: str | None = typer.Option(None, "--model", help="model id or path (default: the built-in model)"),
    backend: str | None = typer.Option(None, "--backend", help="auto | llamacpp | transformers | vllm | openai (auto: llama.cpp for the embedded model when installed)"),
    adapter: str | None = typer.Option(None, "--adapter", help="LoRA adapter folder (default: the bundled one "
                                       "for the embedded model)"),
    no_adapter: bool = typer.Option(False, "--no-adapter", help="score the bare model"),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server URL"),
    api_key: str | None = typer.Option(None, "--api-key", help="API key for --base-url"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="score only the first N samples of each cell"),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="requests per explain_many call"),
    seed: int = typer.Option(0, "--seed", help="decoding seed (and the bootstrap seed with --compare)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write PNG plots (needs matplotlib)"),
    compare: bool = typer.Option(False, "--compare", help="compare the bench runs given as arguments"),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="bootstrap draws with --compare"),
) -> None:
    """Run one model over every benchmark cell whose data you have; write bench.md/.json/.png.

    `--compare RUN_DIR RUN_DIR ...` instead puts finished bench runs side by side, with paired bootstrap
    95% confidence intervals on the differences to the first run.
    """
    from affect_llm.eval.bench import compare_runs, run_bench, select_cells
    from affect_llm.fileio import check_output_dir

    check_output_dir(out, inputs=list(runs or []))  # before any model loads
    if compare:
        doc = compare_runs(list(runs or []), out, n_boot=n_boot, seed=seed)
        typer.echo(f"compared {len(doc['runs'])} runs on {len({r['cell'] for r in doc['rows']})} cells → {out / 'compare.md'}")
        return
    if runs:
        raise AffectError("run folders as arguments need --compare")
    if data_root is None:
        raise AffectError("give --data-root DIR (the folder holding MELD/, IEMOCAP/, CMU-MOSI/, ...)")
    if adapter is not None and no_adapter:
        raise AffectError("give either --adapter or --no-adapter, not both")
    if adapter is not None and adapter != "default" and not Path(adapter).is_dir():
        raise AffectError(f"adapter folder not found: {adapter}")
    if backend == "openai" and not base_url:
        raise AffectError("--backend openai needs --base-url")
    chosen = select_cells([c.strip() for c in cells.split(",") if c.strip()] if cells else None)

    def make_explainer():
        from affect_llm.pipeline import Explainer

        resolved = None if no_adapter else (adapter or "default")
        if backend != "openai":
            from affect_llm.assets import resolve_adapter

            resolved = resolve_adapter(resolved, model)
        kwargs = {"model": model, "adapter": resolved, "base_url": base_url, "api_key": api_key, "seed": seed}
        if backend:
            kwargs["backend"] = backend
        return Explainer(**kwargs), {"adapter": resolved, "base_url": base_url}  # never the API key

    summary = run_bench(out, data_root, make_explainer, cells=chosen, split=split, limit=limit,
                        batch_size=batch_size, plots=plots, seed=seed)
    ok = [r for r in summary["rows"] if r["status"] == "ok"]
    typer.echo(f"{len(ok)} cells scored, {len(summary['rows']) - len(ok)} skipped for lack of data → {out / 'bench.md'}")
    for r in ok:
        figures = ", ".join(f"{v['name']} {100 * v['value']:.2f}" for v in r["values"] if v["value"] is not None)
        typer.echo(f"  {r['cell']:14s} n={r['n']:<6d} {figures}")


@app.command("suites")
def suites_cmd() -> None:
    """List the bundled evaluation suites."""
    from affect_llm.eval.suite import bundled_suites

    for name, s in bundled_suites().items():
        typer.echo(f"{name:16s} {s.task:6s} {s.description}")
