"""One call that turns a batch of inputs (audio, video, image, text) into cues an LLM can cite.

`textualize_inputs` is what `affect-llm textualize` and `affect-llm explain --audio/--video/--image` call;
`iter_textualize` yields the same results one by one as they are ready (big batches stream).
Models (Whisper, FaceLandmarker) load once per process and are reused across inputs and calls.
Results come back in input order: audio, then video, then image, then text.

Speech: an audio/video result carries `language` (ISO 639-1) and `transcript_reliable`. When the ASR's
own signals say the words are unreliable (or the language is uncertain/unsupported), `transcript` and
`words` are None, the raw text sits in `rejected_transcript`, no lexical cue comes from it, and one
speech cue says the words were not used. Consumers building evidence or prompts use `transcript` only
when `transcript_reliable` is true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from affect_llm.errors import AffectError
from affect_llm.extras import is_available
from affect_llm.schema import Cue
from affect_llm.textualize.audio import DEFAULT_MAX_SECONDS
from affect_llm.textualize.prosody import ProsodyFeatures

REFERENCES = ("auto", "speaker", "population")
ASR_CHOICES = ("faster-whisper", "openai-whisper", "none")


class ProsodyReport(ProsodyFeatures):
    """Measured prosody plus what it was compared with and the deviations (z-scores) found."""

    reference: Literal["speaker", "population"]
    reference_clips: int = 0
    deviations: dict[str, float] = Field(default_factory=dict)


class TextualizedInput(BaseModel):
    """Cues and measurements for one input file or text."""

    source: str
    kind: Literal["audio", "video", "image", "text"]
    cues: list[Cue] = Field(default_factory=list)
    transcript: str | None = None  # None when no ASR ran or its text is unreliable
    words: list[dict[str, Any]] | None = None
    asr_backend: str | None = None
    language: str | None = None  # ISO 639-1 spoken language (detected or --language); None if unknown
    language_probability: float | None = None
    transcript_reliable: bool | None = None  # None when no ASR ran
    transcript_issue: str | None = None  # why the transcript was withheld
    rejected_transcript: str | None = None  # the ASR's text when withheld, for inspection only
    prosody: ProsodyReport | None = None
    face: dict[str, Any] | None = None
    text: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's JSON object: `source`, `kind`, `cues` (all six keys each) and the modalities present."""
        out: dict[str, Any] = {"source": self.source, "kind": self.kind, "cues": [c.model_dump() for c in self.cues]}
        for key in ("transcript", "words", "asr_backend", "face", "text"):
            val = getattr(self, key)
            if val is not None:
                out[key] = val
        if self.kind in ("audio", "video") and (self.prosody is not None or self.asr_backend is not None):
            # Always present for speech, null included, so a reader can rely on the keys.
            for key in ("language", "language_probability", "transcript_reliable", "transcript_issue"):
                out[key] = getattr(self, key)
            if self.rejected_transcript is not None:
                out["rejected_transcript"] = self.rejected_transcript
        if self.prosody is not None:
            out["prosody"] = self.prosody.model_dump(mode="json")
        return out


def _transcript_fields(tr: Any, language: str | None) -> dict[str, Any]:
    """TextualizedInput fields from a Transcript: the text only when it is reliable."""
    if tr is None:
        return {"language": language}
    return {
        "transcript": tr.text if tr.reliable else None,
        "words": [w.model_dump() for w in tr.words] if tr.reliable else None,
        "asr_backend": tr.backend,
        "language": tr.language,
        "language_probability": tr.language_probability,
        "transcript_reliable": tr.reliable,
        "transcript_issue": tr.issue,
        "rejected_transcript": (tr.text or None) if not tr.reliable else None,
    }


def withheld_cue(issue: str | None) -> Cue:
    """The cue that tells the reader (and the LLM) that the words were not used, and why."""
    reason = (issue or "transcript unreliable").split(";")[0]  # the reason, without the user-facing advice
    return Cue(modality="speech", cue="spoken words not used (unreliable transcript)",
               evidence=f"{reason}; judge from the voice only")


def _clip_cues(
    feats: ProsodyFeatures, ref: Any, tr: Any, nrc_path: str | Path | None
) -> tuple[list[Cue], dict[str, float]]:
    """Prosody cues (word-timed when the transcript is reliable) + English lexical cues + the withheld note."""
    from affect_llm.textualize.prosody import prosody_cues
    from affect_llm.textualize.text import analyze

    reliable = tr is not None and tr.reliable
    words = (tr.words or None) if reliable else None  # hallucinated words would give made-up spans
    cues, zs = prosody_cues(feats, ref, words)
    if tr is not None and tr.speech_seconds == 0.0:
        # The VAD heard no voice: "loud, slow, rough voice" measured on noise or music describes nobody.
        # The measurements stay in `prosody`; the only cue says there was no speech.
        return [Cue(modality="speech", cue="no speech detected",
                    evidence="voice activity detection found no speech; no voice or word cues")], zs
    if reliable and tr.text and tr.language == "en":  # the lexicons (VADER, NRC) are English
        _, tcues = analyze(text=tr.text if not words else None, words=words, nrc_path=nrc_path)
        cues = cues + tcues
    if tr is not None and not tr.reliable:
        cues = cues + [withheld_cue(tr.issue)]
    return cues, zs


def _speech_iter(
    items: list[tuple[str, Any]],
    ref_audio: Sequence[str | Path],
    reference: str,
    asr_backend: str,
    asr_model: str | Path | None,
    praat: bool | None,
    max_seconds: float,
    nrc_path: str | Path | None,
    language: str | None,
    beam_size: int | None = None,
) -> Iterator[tuple[list[Cue], ProsodyReport, Any]]:
    """Speech cues for decoded clips `items` = [(name, array)], yielded in order as each is done.

    Prosody of every clip comes first (the speaker reference needs all of them; ~0.1 s per second of
    audio), then ASR clip by clip, so results stream."""
    from affect_llm.textualize import asr as asr_mod
    from affect_llm.textualize.audio import load_audio
    from affect_llm.textualize.prosody import extract_prosody, population_reference, speaker_reference

    feats = [extract_prosody(y, praat=praat) for _, y in items]
    ref_feats = [extract_prosody(load_audio(p, max_seconds), praat=praat) for p in ref_audio]
    method = feats[0].voice_quality_method if feats else "librosa"
    if reference == "speaker" and len(items) + len(ref_feats) < 2:
        raise AffectError("--reference speaker needs at least two clips of the speaker (inputs or --reference-audio)")
    for i, (_name, y) in enumerate(items):
        others = ref_feats if ref_feats else [f for j, f in enumerate(feats) if j != i]
        use_speaker = reference == "speaker" or (reference == "auto" and len(others) >= 1)
        ref = speaker_reference(others) if use_speaker else population_reference(method)
        tr = None
        if asr_backend != "none":
            tr = asr_mod.transcribe(y, backend=asr_backend, model=asr_model, language=language,
                                    beam_size=beam_size or asr_mod.BEAM_SIZE)
        cues, zs = _clip_cues(feats[i], ref, tr, nrc_path)
        report = ProsodyReport(
            **feats[i].model_dump(), reference=ref.kind, reference_clips=ref.n_clips, deviations=zs
        )
        yield cues, report, tr


def _video_has_audio(path: Path) -> bool:
    if not is_available("av"):
        return False
    import av

    try:
        with av.open(str(path)) as c:
            return bool(c.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


class FailedInput(BaseModel):
    """An input that could not be read, kept in its place when the caller asked to keep going."""

    source: str
    kind: Literal["audio", "video", "image", "text"]
    error: str

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _check_options(reference: str, asr_backend: str, language: str | None) -> str | None:
    from affect_llm.errors import lookup

    lookup(dict.fromkeys(REFERENCES), "prosody reference", reference)
    lookup(dict.fromkeys(ASR_CHOICES), "ASR backend", asr_backend)
    if language is not None and asr_backend == "none":
        return language.strip().lower()  # reported as given; nothing to check it against
    if language is not None:
        from affect_llm.textualize.asr import check_language

        return check_language(language)
    return None


def count_inputs(audio: Sequence[Any] = (), video: Sequence[Any] = (), image: Sequence[Any] = (),
                 text: str | Sequence[str] | None = None) -> int:
    """How many results `iter_textualize` yields for these inputs."""
    texts = [text] if isinstance(text, str) else list(text or [])
    return len(audio) + len(video) + len(image) + len(texts)


def iter_textualize(
    audio: Sequence[str | Path] = (),
    video: Sequence[str | Path] = (),
    image: Sequence[str | Path] = (),
    text: str | Sequence[str] | None = None,
    *,
    reference: str = "auto",
    reference_audio: Sequence[str | Path] = (),
    asr_backend: str = "faster-whisper",
    asr_model: str | Path | None = None,
    language: str | None = None,
    beam_size: int | None = None,
    face_model: str | Path | None = None,
    fps: float = 5.0,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    praat: bool | None = None,
    nrc_path: str | Path | None = None,
    video_audio: bool = True,
    keep_going: bool = False,
) -> Iterator[TextualizedInput | FailedInput]:
    """Yield one result per input, in order (audio, video, image, text), each as soon as it is ready.

    reference: "auto" compares each audio clip with the speaker's other clips when several are given
    (all `audio` inputs are taken as one speaker) or with `reference_audio`, else with population norms.
    asr_backend: faster-whisper | openai-whisper | none; asr_model: CTranslate2 Whisper folder or ASR
    asset name (default multilingual `whisper-base`); language: ISO 639-1 code to skip detection.
    video_audio: also run speech cues on a video's sound track.
    keep_going: an input that raises `AffectError` (unreadable, truncated, too long, silent …) becomes a
    `FailedInput` in its place and the rest go on; otherwise the first one raises. Option errors
    (unknown backend, language, reference) always raise before any work.
    """
    language = _check_options(reference, asr_backend, language)
    texts = [text] if isinstance(text, str) else list(text or [])
    if not (audio or video or image or texts):
        raise AffectError("nothing to textualize: give at least one of --audio, --video, --image, --text")
    if any(not t.strip() for t in texts):
        raise AffectError("--text is empty")
    if beam_size is not None and beam_size < 1:
        raise AffectError(f"--beam-size must be at least 1, got {beam_size}")
    if asr_backend != "none" and (audio or (video and video_audio)):
        from affect_llm.textualize.asr import resolve_model

        resolve_model(asr_model)  # a missing asset or bad folder fails now, not after the first clip

    def guard(source: str, kind: Any, fn: Callable[[], TextualizedInput]) -> TextualizedInput | FailedInput:
        try:
            return fn()
        except AffectError as err:
            if not keep_going:
                raise
            return FailedInput(source=source, kind=kind, error=str(err))

    if audio:
        from affect_llm.textualize.audio import load_audio

        decoded: list[tuple[str, Any]] = []
        failed: dict[int, FailedInput] = {}
        for i, p in enumerate(audio):  # decode all first: a bad file fails before any model loads
            res = guard(str(p), "audio", lambda p=p: load_audio(p, max_seconds))  # type: ignore[arg-type, return-value]
            if isinstance(res, FailedInput):
                failed[i] = res
            else:
                decoded.append((str(p), res))
        speech = _speech_iter(decoded, reference_audio, reference, asr_backend, asr_model, praat, max_seconds,
                              nrc_path, language, beam_size)
        for i, p in enumerate(audio):
            if i in failed:
                yield failed[i]
                continue
            cues, report, tr = next(speech)
            yield TextualizedInput(source=str(p), kind="audio", cues=cues, prosody=report,
                                   **_transcript_fields(tr, language))
    if video or image:
        from affect_llm.textualize.face import analyze_face

        def one_video(p: str | Path) -> TextualizedInput:
            summary, cues, _frames = analyze_face(p, "video", fps=fps, max_seconds=max_seconds, model=face_model)
            item = TextualizedInput(source=str(p), kind="video", cues=cues, face=summary.model_dump(mode="json"))
            if video_audio and _video_has_audio(Path(p)):
                from affect_llm.textualize.audio import load_audio

                try:
                    y = load_audio(p, max_seconds)
                except AffectError as err:
                    if "silent" not in str(err) and "empty" not in str(err):
                        raise
                else:
                    cues_s, report, tr = next(_speech_iter(
                        [(str(p), y)], reference_audio, "population" if not reference_audio else reference,
                        asr_backend, asr_model, praat, max_seconds, nrc_path, language, beam_size,
                    ))
                    item.cues = sorted(item.cues + cues_s, key=lambda c: -(c.strength or 0.0))
                    item.prosody = report
                    for key, val in _transcript_fields(tr, language).items():
                        setattr(item, key, val)
            return item

        def one_image(p: str | Path) -> TextualizedInput:
            summary, cues, _frames = analyze_face(p, "image", model=face_model)
            return TextualizedInput(source=str(p), kind="image", cues=cues, face=summary.model_dump(mode="json"))

        for p in video:
            yield guard(str(p), "video", lambda p=p: one_video(p))
        for p in image:
            yield guard(str(p), "image", lambda p=p: one_image(p))
    if texts:
        from affect_llm.textualize.text import analyze

        for i, t in enumerate(texts):
            analysis, cues = analyze(text=t, nrc_path=nrc_path)
            yield TextualizedInput(
                source="text" if len(texts) == 1 else f"text[{i}]", kind="text", cues=cues,
                text=analysis.model_dump(mode="json"),
            )


def textualize_inputs(
    audio: Sequence[str | Path] = (),
    video: Sequence[str | Path] = (),
    image: Sequence[str | Path] = (),
    text: str | Sequence[str] | None = None,
    **options: Any,
) -> list[TextualizedInput]:
    """Textualize every input, in order (audio, video, image, text); the first bad input raises.

    `options` are `iter_textualize`'s (one list of names and defaults, documented there) except
    `keep_going`: a list has no place for a failed input. Raises `AffectError` for unreadable inputs; a
    face-less image is a cue-less result.
    """
    if "keep_going" in options:
        raise TypeError("textualize_inputs() raises on the first bad input; use iter_textualize(keep_going=True)")
    return list(iter_textualize(audio, video, image, text, **options))  # type: ignore[arg-type]
