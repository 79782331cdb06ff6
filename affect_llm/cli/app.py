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


def _check_argv(args: list[str]) -> None:
    """Strings are checked at the boundary: an argument with bytes that are not UTF-8 (Python keeps them
    as lone surrogates) or a NUL is refused here, before any command runs."""
    from affect_llm.errors import check_text

    for i, arg in enumerate(args):
        name = args[i - 1] if i and args[i - 1].startswith("-") and not arg.startswith("-") else f"argument {i + 1}"
        check_text(arg, name)


def _click():
    """The click that typer runs on (recent typer vendors its own copy)."""
    try:
        from typer import _click as click
    except ImportError:  # older typer: the click package itself
        import click
    return click


def _usage_error(err) -> int:
    """A click usage error (unknown option, value out of range, missing argument) as one `error:` line."""
    click = _click()

    if isinstance(err, click.exceptions.NoArgsIsHelpError):
        typer.echo(err.ctx.get_help(), err=True)
        return 2
    where = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
    message = " ".join(err.format_message().split())
    typer.echo(f"error: {message}{where}", err=True)
    return err.exit_code


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become one line on stderr and exit code 2, never a traceback.

    Exit codes: 0 success, 2 bad input or environment (one `error:` line), 130 interrupted.
    """
    click = _click()

    # Recent typer's vendored click has no Abort; an `except` naming a missing attribute would itself raise.
    abort = getattr(click, "Abort", None) or getattr(click.exceptions, "Abort", None) or KeyboardInterrupt
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_argv(args)
        rv = app(args=args, standalone_mode=False)
    except AffectError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.ClickException as err:
        sys.exit(_usage_error(err))
    except (abort, KeyboardInterrupt):
        typer.echo("\ninterrupted", err=True)
        sys.exit(130)
    except UnicodeDecodeError as err:  # a reader that bypassed affect_llm.fileio: still one line
        typer.echo(f"error: an input is not UTF-8 text (invalid byte at offset {err.start})", err=True)
        sys.exit(2)
    except OSError as err:
        if err.filename is None:
            raise
        typer.echo(f"error: {err.strerror or err}: {err.filename}", err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
