"""`affect-llm train sft|dpo|grpo --config FILE.yaml [--key value ...]`.

Every config key (ours and TRL's) can be overridden with `--key value`; the config is validated, with
all problems listed at once, before any model or data loads. `affect-llm train show sft` prints the
resolved config without training.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from affect_llm.errors import AffectError

app = typer.Typer(help="Fine-tune: LoRA/QLoRA SFT, DPO, GRPO with emotion-wheel rewards.", no_args_is_help=True)

_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML config (same keys as the recipe dataclass)")


def _run(recipe: str, config: Path | None, args: list[str]) -> None:
    from affect_llm.train import run
    from affect_llm.train.config import parse_overrides

    if config is not None and not config.is_file():
        raise AffectError(f"config file not found: {config}")
    card = run(recipe, config, parse_overrides(list(args)))
    m = card["metrics"]
    typer.echo(
        f"{recipe}: {card['n_train_rows']} rows, {m.get('train_runtime', 0):.1f} s, "
        f"train_loss {m.get('train_loss', float('nan')):.4f} -> {card['config']['output_dir']} (run_card.json)"
    )


@app.command("sft", context_settings=_EXTRA)
def sft(ctx: typer.Context, config: Path | None = ConfigOpt) -> None:
    """Supervised fine-tuning on the structured explain answer (completion-only loss)."""
    _run("sft", config, ctx.args)


@app.command("dpo", context_settings=_EXTRA)
def dpo(ctx: typer.Context, config: Path | None = ConfigOpt) -> None:
    """DPO on EmoPrefer pairs and built negatives (hallucinated cues, spurious labels, text-only)."""
    _run("dpo", config, ctx.args)


@app.command("grpo", context_settings=_EXTRA)
def grpo(ctx: typer.Context, config: Path | None = ConfigOpt) -> None:
    """GRPO with emotion-wheel F1, format, length and calibration rewards."""
    _run("grpo", config, ctx.args)


@app.command("show", context_settings=_EXTRA)
def show(ctx: typer.Context, recipe: str = typer.Argument(..., help="sft | dpo | grpo"),
         config: Path | None = ConfigOpt) -> None:
    """Validate a config and print the resolved affect-llm keys as JSON (no training)."""
    from affect_llm.train.config import config_to_dict, load_config, parse_overrides
    from affect_llm.train.runcard import _CARD_KEYS

    cfg = load_config(recipe, config, parse_overrides(list(ctx.args)))
    d = config_to_dict(cfg)
    typer.echo(json.dumps({k: v for k, v in d.items() if k in _CARD_KEYS or k == "output_dir"}, indent=2))


@app.command("configs")
def configs() -> None:
    """List the example configs shipped with the package."""
    from importlib import resources

    folder = resources.files("affect_llm.train").joinpath("configs")
    for f in sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml")):
        typer.echo(str(folder.joinpath(f)))


@app.command("label-model")
def label_model(
    train_file: list[Path] = typer.Option(..., "--train_file", "--train-file",
                                          help="canonical JSONL (affect-llm data build); repeat for several"),
    output_dir: Path = typer.Option(..., "--output_dir", "--output-dir", help="folder for the label model"),
    embedder: str = typer.Option("minilm", "--embedder", help="sentence embedding model (asset, folder or HF id)"),
    to_vocabulary: bool = typer.Option(False, "--to-vocabulary",
                                       help="map closed-set words (joyful, mad, ...) to the bundled emotion words"),
    c: float = typer.Option(1.0, "--C", min=1e-4, help="inverse L2 strength of the logistic regression"),
    embedding_cache: Path | None = typer.Option(None, "--embedding-cache", help="npz file that keeps embeddings "
                                                "between runs"),
    lexical: bool = typer.Option(True, "--lexical/--no-lexical",
                                 help="add the turn's word / word-pair TF-IDF to the MiniLM features"),
    encoder_epochs: float = typer.Option(0.0, "--encoder-epochs", min=0.0, max=20.0,
                                         help="first fine-tune the encoder this many epochs on the training turns "
                                              "(0: frozen; MELD train, 2 epochs: ~10 min on 2 CPU cores)"),
    encoder_lora: int = typer.Option(0, "--encoder-lora", min=0, max=256,
                                     help="with --encoder-epochs: train rank-R LoRA adapters instead of all encoder "
                                          "weights (~1 MB to keep instead of 90 MB)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train the fast label model (MiniLM + TF-IDF features, logistic regression) on any labelled corpus."""
    from affect_llm.fileio import check_output_dir
    from affect_llm.label_model import train_label_model

    for f in train_file:
        if not f.is_file():
            raise AffectError(f"training file not found: {f}")
    check_output_dir(output_dir, inputs=train_file)
    model, card = train_label_model(train_file, output_dir, embedder=embedder, to_vocabulary=to_vocabulary, c=c,
                                    embedding_cache=embedding_cache, seed=seed, lexical=lexical,
                                    encoder_epochs=encoder_epochs, encoder_lora=encoder_lora)
    typer.echo(f"label model: {card['samples']} samples, {len(model.labels)} labels, held-out accuracy "
               f"{card['heldout_accuracy']:.3f}, temperature {model.temperature:.2f}, {card['train_seconds']} s "
               f"-> {output_dir}")
