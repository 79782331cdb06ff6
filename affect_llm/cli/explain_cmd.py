"""`affect-llm explain` (one query) and `affect-llm chat` (interactive multi-turn REPL)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError

ModelOpt = typer.Option(None, "--model", "-m", help="asset name, local checkpoint folder or HF id (default: embedded)")
BackendOpt = typer.Option("auto", "--backend", "-b", help="auto | llamacpp | transformers | vllm | openai (auto: "
                          "llama.cpp for the embedded model when installed, else transformers)")
BaseUrlOpt = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
ApiKeyOpt = typer.Option(None, "--api-key", envvar="AFFECT_LLM_API_KEY", help="Bearer key for --base-url")
AdapterOpt = typer.Option(None, "--adapter", help="LoRA adapter folder to load on the model (default: the bundled "
                          "tuned adapter when --model is the embedded default)")
NoAdapterOpt = typer.Option(False, "--no-adapter", help="use the bare model, without the bundled tuned adapter")
FreeOpt = typer.Option(False, "--free-labels", help="allow any label string (default: the bundled emotion words)")
LabelModelOpt = typer.Option(None, "--label-model", help="label model folder (affect-llm train label-model); default: "
                             "the bundled one when --model is the embedded default")
NoLabelModelOpt = typer.Option(False, "--no-label-model", help="no label-model prior: the LLM alone picks the labels")


def _label_space(raw: Optional[str]) -> Optional[list[str]]:
    if raw is None:
        return None
    labels = [x.strip() for x in raw.split(",") if x.strip()]
    if not labels:
        raise AffectError("--label-space is empty; give comma-separated labels, e.g. 'anger,joy,neutral'")
    return labels


def _bundled_or_folder(kind: str, folder: Optional[Path], off: bool) -> Optional[str]:
    """--KIND DIR, --no-KIND, or the bundled default ("default", resolved by the Explainer)."""
    if folder is not None and off:
        raise AffectError(f"give either --{kind} or --no-{kind}, not both")
    if off:
        return None
    if folder is None:
        return "default"
    if not folder.is_dir():
        raise AffectError(f"{kind.replace('-', ' ')} folder not found: {folder}")
    return str(folder)


def _label_model_choice(label_model: Optional[Path], no_label_model: bool) -> Optional[str]:
    return _bundled_or_folder("label-model", label_model, no_label_model)


def _adapter_choice(adapter: Optional[Path], no_adapter: bool) -> Optional[str]:
    return _bundled_or_folder("adapter", adapter, no_adapter)


def _make_explainer(model, backend, base_url, api_key, adapter, free_labels, max_new_tokens, temperature, seed, dtype,
                    demos=None, k=0, projector=None, label_model="default"):
    from affect_llm.backends import backend_names
    from affect_llm.pipeline import Explainer

    if backend != "auto" and backend not in backend_names():
        raise AffectError(f"unknown backend {backend!r}; choose one of: auto, {', '.join(backend_names())}")
    if backend == "auto" and base_url:
        backend = "openai"  # an endpoint was given: use it
    if backend == "openai" and not base_url:
        raise AffectError("--backend openai needs --base-url")
    return Explainer(
        model=model, backend=backend, base_url=base_url, api_key=api_key, adapter=adapter, dtype=dtype,
        max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
        label_vocabulary=None if free_labels else "emotions", demos=demos, k=k, projector=projector,
        label_model=label_model,
    )


def _projector_media(projector: Path, audio: list[Path], video: list[Path], image: list[Path]) -> dict[str, str]:
    """The inputs a projector model takes as soft tokens: the first recording per modality it has encoders for."""
    from affect_llm.projector.affect_lm import AffectLM

    modalities = {e["modality"] for e in AffectLM.read_config(projector)["encoders"].values()}
    media: dict[str, str] = {}
    if "audio" in modalities and audio:
        media["audio"] = str(audio[0])
    if "face" in modalities and (video or image):
        media["face"] = str((video or image)[0])
    if not media:
        raise AffectError(f"--projector takes {' or '.join(sorted(modalities))} input; give it with "
                          "--audio / --video / --image")
    return media


def _check_media(kind: str, paths: list[Path]) -> None:
    for p in paths:
        if not p.exists():
            raise AffectError(f"{kind} file not found: {p}")
        if not p.is_file():
            raise AffectError(f"{kind} path is not a file: {p}")


def _textualize(audio: list[Path], video: list[Path], image: list[Path]):
    """Media -> (cues, transcript). Models load once for the whole call."""
    from affect_llm.textualize import textualize_inputs

    items = textualize_inputs(audio=audio, video=video, image=image)
    cues = [c for item in items for c in item.cues]
    # Only transcripts the recogniser trusts become the text (an unreliable one is withheld as None).
    transcript = " ".join(item.transcript for item in items if item.transcript and item.transcript_reliable)
    issues = [item.transcript_issue for item in items if getattr(item, "transcript_issue", None)]
    return cues, transcript, issues


def explain(
    text: Optional[str] = typer.Option(None, "--text", "-t", help="the utterance (optional with --audio/--video)"),
    audio: Optional[list[Path]] = typer.Option(None, "--audio", help="speech recording(s): transcript + prosody cues"),
    video: Optional[list[Path]] = typer.Option(None, "--video", help="face video(s): facial + voice cues"),
    image: Optional[list[Path]] = typer.Option(None, "--image", help="face photo(s): facial cues"),
    demos: Optional[Path] = typer.Option(None, "--demos", help="demonstration index folder (affect-llm index build)"),
    k: int = typer.Option(4, "--k", min=1, max=32, help="demonstrations to retrieve with --demos"),
    context: Optional[Path] = typer.Option(None, "--context", help="dialogue so far, JSONL of {speaker, text}"),
    speaker: Optional[str] = typer.Option(None, "--speaker", help="who says --text"),
    label_space: Optional[str] = typer.Option(None, "--label-space", help="closed label set, comma-separated"),
    json_out: bool = typer.Option(False, "--json", help="print the answer as one JSON object"),
    model: Optional[str] = ModelOpt,
    backend: str = BackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    api_key: Optional[str] = ApiKeyOpt,
    adapter: Optional[Path] = AdapterOpt,
    no_adapter: bool = NoAdapterOpt,
    projector: Optional[Path] = typer.Option(None, "--projector", help="projector folder (train sft --projector): "
                                             "--audio/--video also go in as soft tokens"),
    free_labels: bool = FreeOpt,
    label_model: Optional[Path] = LabelModelOpt,
    no_label_model: bool = NoLabelModelOpt,
    max_new_tokens: int = typer.Option(DECODING["max_new_tokens"], min=8, max=2048),
    temperature: float = typer.Option(0.0, min=0.0, max=2.0),
    seed: int = typer.Option(0),
    dtype: Optional[str] = typer.Option(None, help="float32 | bfloat16 (transformers backend; default float32 on "
                                        "CPUs without native bf16)"),
) -> None:
    """What does the speaker feel, and why? Prints a panel, or JSON with --json."""
    from affect_llm.dialogue_io import read_context
    from affect_llm.pipeline import request_from

    # Validate every input before loading any model.
    audio, video, image = audio or [], video or [], image or []
    for kind, paths in (("audio", audio), ("video", video), ("image", image)):
        _check_media(kind, paths)
    if text is None and not (audio or video or image):
        raise AffectError("give --text, or a recording with --audio/--video (its transcript becomes the text)")
    if text is not None and not text.strip():
        raise AffectError("invalid input: text: text is empty")
    turns = read_context(context) if context is not None else []
    adapter_arg = _adapter_choice(adapter, no_adapter)
    lm_arg = _label_model_choice(label_model, no_label_model)
    media = {}
    if projector is not None:
        media = _projector_media(projector, audio, video, image)
        if adapter is None and not no_adapter:
            # A projector is trained against one LM: stage 2 saves its LoRA beside it; stage 1 used the bare model.
            adapter_arg = str(projector) if (projector / "adapter_config.json").is_file() else None
    if demos is not None and not demos.is_dir():
        raise AffectError(f"demonstration index folder not found: {demos}")
    start = time.perf_counter()
    cues = []
    if audio or video or image:
        cues, transcript, issues = _textualize(audio, video, image)
        if text is None:
            if not transcript.strip():
                why = f" ({issues[0]})" if issues else ""
                raise AffectError(f"no usable words in the recording{why}; pass the words with --text")
            text = transcript
    req = request_from(text=text, speaker=speaker, context=turns, cues=cues, label_space=_label_space(label_space),
                       media=media)
    from affect_llm.limits import check_request

    check_request(req)  # the character bound before the model loads; the token bound before generating
    explainer = _make_explainer(model, backend, base_url, api_key, adapter_arg, free_labels, max_new_tokens,
                                temperature, seed, dtype, str(demos) if demos else None, k,
                                str(projector) if projector else None, lm_arg)
    report = explainer.explain(request=req)
    report.timings["load_s"] = round(explainer.load_seconds, 3)
    report.timings["total_s"] = round(time.perf_counter() - start, 3)
    if json_out:
        typer.echo(json.dumps(report.to_json_dict(), ensure_ascii=False))
    else:
        from rich.console import Console

        from affect_llm.cli.render import report_panel

        Console().print(report_panel(report))


CHAT_HELP = "Type what someone says; the model explains how they feel, using the conversation so far. " \
            "Commands: /reset (forget the conversation), /json (toggle JSON output), /quit."


def chat(
    speaker: str = typer.Option("You", "--speaker", help="name of the speaker in the conversation"),
    json_out: bool = typer.Option(False, "--json", help="start in JSON mode"),
    model: Optional[str] = ModelOpt,
    backend: str = BackendOpt,
    base_url: Optional[str] = BaseUrlOpt,
    api_key: Optional[str] = ApiKeyOpt,
    adapter: Optional[Path] = AdapterOpt,
    no_adapter: bool = NoAdapterOpt,
    free_labels: bool = FreeOpt,
    label_model: Optional[Path] = LabelModelOpt,
    no_label_model: bool = NoLabelModelOpt,
    history: int = typer.Option(8, min=0, help="how many earlier turns are given as context"),
    max_new_tokens: int = typer.Option(DECODING["max_new_tokens"], min=8, max=2048),
) -> None:
    """Interactive multi-turn emotion conversation (a rich REPL)."""
    from rich.console import Console

    from affect_llm.cli.render import report_panel
    from affect_llm.pipeline import request_from
    from affect_llm.schema import Turn

    console = Console()
    adapter_arg = _adapter_choice(adapter, no_adapter)
    lm_arg = _label_model_choice(label_model, no_label_model)
    with console.status("loading model …"):
        explainer = _make_explainer(model, backend, base_url, api_key, adapter_arg, free_labels,
                                    max_new_tokens, 0.0, 0, None, label_model=lm_arg)
    console.print(f"[bold]affect-llm chat[/] — {explainer.backend.model_id}. {CHAT_HELP}")
    turns: list[Turn] = []
    while True:
        try:
            line = console.input("[bold cyan]" + speaker + "> [/]")
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        except UnicodeDecodeError as err:  # a terminal in another encoding: this line only
            console.print(f"[red]error:[/] the line is not UTF-8 text (invalid byte at offset {err.start})")
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd = line.split()[0].lower()
            if cmd in ("/quit", "/exit", "/q"):
                break
            if cmd == "/reset":
                turns.clear()
                console.print("[dim]conversation cleared[/]")
            elif cmd == "/json":
                json_out = not json_out
                console.print(f"[dim]JSON output {'on' if json_out else 'off'}[/]")
            else:
                console.print(f"[red]unknown command {cmd}[/]; {CHAT_HELP}")
            continue
        try:
            req = request_from(text=line, speaker=speaker, context=turns[-history:] if history else [])
            with console.status("thinking …"):
                report = explainer.explain(request=req)
        except AffectError as err:
            console.print(f"[red]error:[/] {err}")
            continue
        if json_out:
            console.print_json(json.dumps(report.to_json_dict(), ensure_ascii=False))
        else:
            console.print(report_panel(report))
        turns.append(Turn(speaker=speaker, text=line))
