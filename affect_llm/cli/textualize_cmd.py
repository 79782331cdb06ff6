"""`affect-llm textualize`: turn audio, video, images and text into cue phrases (JSON, JSONL or a table).

Batches: `--audio clips/*.wav` (several files after one flag) and `--audio a.wav --audio b.wav` both work.
Output order follows the input order within each kind (audio, video, image, text). Failure policy:
without `--keep-going` the first unreadable input stops the run with one `error: <file>: …` line and
exit 2, and nothing is written to `--out` (for `--jsonl`, the lines already printed are whole results);
with `--keep-going` that input becomes `{"source", "kind", "error"}` in its place, every other result is
written, and the run still ends with exit 2 and one line naming the failed files. Files are written
atomically (temporary file, then rename): never half a file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from typer.core import TyperCommand

from affect_llm.errors import AffectError

# Flags that take several files after them; the parser sees `--audio a b c` as `--audio a --audio b --audio c`.
MULTI_FILE_FLAGS = frozenset({"--audio", "-a", "--video", "-v", "--image", "-i", "--reference-audio"})


def expand_multi_file_args(args: list[str]) -> list[str]:
    """Repeat a multi-file flag before each bare value that follows it (click options take one value each).

    A value starting with '-' ends the run (it is the next option); `--` ends option parsing as usual.
    `textualize` has no positional arguments, so a bare word can only belong to the preceding flag."""
    out: list[str] = []
    current: str | None = None  # the multi-file flag whose values we are reading
    pending = False  # the flag was just seen and its first value is next
    for i, tok in enumerate(args):
        if tok == "--":
            out.extend(args[i:])
            break
        if pending:
            out.append(tok)
            pending = False
            continue
        if tok.startswith("-") and len(tok) > 1:
            name = tok.split("=", 1)[0]
            current = name if name in MULTI_FILE_FLAGS else None
            pending = current is not None and "=" not in tok
            out.append(tok)
            continue
        if current is not None:
            out.extend([current, tok])
        else:
            out.append(tok)
    return out


class MultiFileCommand(TyperCommand):
    """`textualize` with `--audio a.wav b.wav …`: the extra values are given back to their flag."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
        return super().parse_args(ctx, expand_multi_file_args(list(args)))


def textualize(
    audio: list[Path] = typer.Option(
        [], "--audio", "-a", help="speech file(s) (wav/flac/ogg/mp3/...): `--audio clips/*.wav`; repeatable"
    ),
    video: list[Path] = typer.Option([], "--video", "-v", help="video file(s); several after one flag; repeatable"),
    image: list[Path] = typer.Option([], "--image", "-i", help="still image(s) with a face; several after one flag"),
    text: str | None = typer.Option(None, "--text", "-t", help="text to scan for lexical cues"),
    json_out: bool = typer.Option(False, "--json", help="print a JSON array, one object per input in order"),
    jsonl: bool = typer.Option(False, "--jsonl", help="stream one JSON object per line as each input is done"),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="write the results to this file (JSON array; JSON lines if it ends in .jsonl)"
    ),
    keep_going: bool = typer.Option(
        False, "--keep-going", help="write the other results when an input fails (it gets an 'error' entry); exit 2"
    ),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="progress bar on stderr (default: when stderr is a terminal)"
    ),
    reference: str = typer.Option(
        "auto", "--reference", help="prosody baseline: auto (speaker's other clips if several) | speaker | population"
    ),
    reference_audio: list[Path] = typer.Option(
        [], "--reference-audio", help="other clips of the same speaker, used only as the prosody baseline"
    ),
    asr: str = typer.Option("faster-whisper", "--asr", help="faster-whisper | openai-whisper | none"),
    asr_model: str | None = typer.Option(
        None, "--asr-model", help="CTranslate2 Whisper folder or asset (default: whisper-base, multilingual)"
    ),
    language: str | None = typer.Option(
        None, "--language", help="spoken language, ISO 639-1 (en, de, es, zh, …): skips detection"
    ),
    beam_size: int = typer.Option(1, "--beam-size", min=1, max=10, help="ASR beam width (1 = greedy, fastest)"),
    face_model: Path | None = typer.Option(None, "--face-model", help="face_landmarker.task (default: asset)"),
    fps: float = typer.Option(5.0, "--fps", min=0.1, max=60.0, help="video frames sampled per second"),
    max_seconds: float = typer.Option(600.0, "--max-seconds", min=1.0, help="longest audio/video accepted"),
    praat: bool | None = typer.Option(
        None, "--praat/--no-praat", help="Praat voice quality (default: when praat-parselmouth is installed)"
    ),
    nrc: Path | None = typer.Option(None, "--nrc", help="NRC Emotion Lexicon file (research licence) for emotion words"),
) -> None:
    """Describe how something was said or shown, as cues an LLM can cite."""
    from affect_llm.fileio import atomic_write
    from affect_llm.textualize.core import FailedInput, count_inputs, iter_textualize

    if json_out and jsonl:
        raise AffectError("choose one of --json and --jsonl")
    if out is not None and out.is_dir():
        raise AffectError(f"--out {out} is a folder; give a file name")
    results = iter_textualize(
        audio=audio, video=video, image=image, text=text, reference=reference, reference_audio=reference_audio,
        asr_backend=asr, asr_model=asr_model, language=language, beam_size=beam_size, face_model=face_model, fps=fps,
        max_seconds=max_seconds, praat=praat, nrc_path=nrc, keep_going=keep_going,
    )
    total = count_inputs(audio, video, image, text)
    show = progress if progress is not None else (sys.stderr.isatty() and total > 1)
    done: list[dict] = []
    failed: list[FailedInput] = []
    from tqdm import tqdm

    with tqdm(total=total, disable=not show, file=sys.stderr, unit="input", desc="textualize") as bar:
        for r in results:
            if isinstance(r, FailedInput):
                failed.append(r)
            obj = r.to_json_dict()
            done.append(obj)
            if jsonl:
                typer.echo(json.dumps(obj, ensure_ascii=False))
            elif not json_out and out is None:
                _print_table(r)
            bar.update(1)
    if out is not None:
        if out.suffix.lower() == ".jsonl":
            body = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in done)
        else:
            body = json.dumps(done, ensure_ascii=False, indent=2) + "\n"
        atomic_write(out, body)
    if json_out:
        typer.echo(json.dumps(done, ensure_ascii=False, indent=2))
    if failed:
        names = ", ".join(f.source for f in failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise AffectError(f"{len(failed)} of {total} inputs failed ({names}); first: {failed[0].error}")


def _print_table(r) -> None:  # type: ignore[no-untyped-def]
    from affect_llm.textualize.core import FailedInput

    if isinstance(r, FailedInput):
        typer.echo(f"== {r.source} ({r.kind})\n   error: {r.error}")
        return
    typer.echo(f"== {r.source} ({r.kind})")
    if r.language is not None or r.transcript_reliable is not None:
        prob = f" ({r.language_probability:.2f})" if r.language_probability is not None else ""
        typer.echo(f"   language: {r.language or 'unknown'}{prob}")
    if r.transcript is not None:
        typer.echo(f"   transcript: {r.transcript}")
    elif r.transcript_reliable is False:
        typer.echo(f"   transcript withheld: {r.transcript_issue}")
    if r.face is not None:
        typer.echo(f"   face coverage: {r.face.get('coverage', 0):.0%}")
    if not r.cues:
        typer.echo("   (no cues)")
    for c in r.cues:
        span = f" [{c.start:.2f}-{c.end:.2f} s]" if c.start is not None and c.end is not None else ""
        typer.echo(f"   {c.modality:6s} {c.cue}{span}: {c.evidence}")
