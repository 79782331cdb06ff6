"""Entry point of the `affect-llm` command.

Sub-commands are registered here and implemented in sibling modules, which import their heavy
dependencies inside the command functions so `affect-llm --help` stays fast.
"""

from __future__ import annotations

import sys

import typer

from affect_llm.errors import AffectError

app = typer.Typer(
    name="affect-llm",
    help="Explainable emotion reasoning with LLMs: what a person feels, and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from affect_llm.cli import assets_cmd, data_cmd, eval_cmd, explain_cmd, index_cmd

    app.add_typer(assets_cmd.app, name="assets")
    from affect_llm.cli import eval_cues_cmd

    eval_cmd.app.command("cues")(eval_cues_cmd.cues)
    app.add_typer(eval_cmd.app, name="eval")
    app.add_typer(data_cmd.app, name="data")
    app.add_typer(index_cmd.app, name="index")
    app.command("explain")(explain_cmd.explain)
    app.command("chat")(explain_cmd.chat)
    from affect_llm.cli import textualize_cmd

    app.command("textualize", cls=textualize_cmd.MultiFileCommand)(textualize_cmd.textualize)
    from affect_llm.cli import serve_cmd

    app.command("serve")(serve_cmd.serve)
    app.command("demo")(serve_cmd.demo)
    from affect_llm.cli import train_cmd

    app.add_typer(train_cmd.app, name="train")


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app(args=argv, standalone_mode=True)
    except AffectError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
