"""Face cues from an image or a video: MediaPipe FaceLandmarker blendshapes and head pose, in words.

Per frame, the landmarker (asset `face-landmarker`, the `face_landmarker.task` bundle) gives 52 ARKit-style
blendshape scores in [0, 1] and a face transformation matrix. Head pose is read from that matrix and
corrected for where the face sits in the picture, so a face looking straight at the camera has pitch and
yaw near zero wherever it is in the frame. Conventions: pitch > 0 head lowered (chin down), yaw > 0 head
turned towards the viewer's right, roll > 0 head tilted counter-clockwise as the viewer sees it.

One face is followed: the largest in the first frame where one is found, then the one overlapping the
previous box most. Small faces are re-read from an upscaled crop, and when the whole frame shows no
face, overlapping tiles are tried, since the landmarker's detector is made for faces that fill the
picture. No face at all is a valid answer (coverage 0, no cues), not an error.

Over time each blendshape is summarised by its mean, peak and peak time, and each cue by its onset
(first frame past the threshold). `FACE_RULES` maps them to phrases; a rule fires on the mean ("smiling")
or, in video, on a peak held for at least two sampled frames ("brief smile"). The thresholds are set
so that a neutral face fires none of them and a plain expression fires its own (checked on the sample
photos in tests/test_textualize_face.py).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import threading
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from affect_llm.errors import AffectError
from affect_llm.extras import require
from affect_llm.schema import Cue
from affect_llm.textualize.audio import DEFAULT_MAX_SECONDS, av_stream

FACE_ASSET = "face-landmarker"
DEFAULT_FPS = 5.0
SMALL_FACE = 0.25  # face box narrower than this fraction of the frame -> re-read from an upscaled crop
CROP_SIDE = 512  # crops are scaled so their longer side is this many pixels
# Tile sizes (fractions of the frame, half-overlapping) tried when the whole frame shows no face. The
# detector finds faces down to ~11% of its input, so 0.4-frame tiles reach faces ~4.5% of the frame wide.
TILE_FRACTIONS = (0.6, 0.4)
# Tiles are many small looks, so they raise the odds of seeing a face in a coffee cup (scikit-image's
# coffee() does at 0.5): they use stricter detection / face-presence thresholds than the whole frame (0.5).
# Presence is what separates: 0.9 rejects the cup and keeps a 4.5%-wide real face (tests).
STRICT_DETECTION, STRICT_PRESENCE = 0.6, 0.9
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

# name -> (blendshapes averaged, threshold, graded phrases (>= thr, >= strong), strong threshold)
FACE_RULES: dict[str, tuple[tuple[str, ...], float, tuple[str, str], float]] = {
    "smile": (("mouthSmileLeft", "mouthSmileRight"), 0.4, ("smiling", "broad smile"), 0.7),
    "brows_lowered": (("browDownLeft", "browDownRight"), 0.35, ("brows lowered (frown)", "deep frown"), 0.6),
    "inner_brows_raised": (("browInnerUp",), 0.45, ("inner brows raised (worried look)", "brows pulled up in distress"), 0.7),
    "brows_raised": (("browOuterUpLeft", "browOuterUpRight"), 0.4, ("brows raised", "brows raised high (surprise)"), 0.7),
    "eyes_wide": (("eyeWideLeft", "eyeWideRight"), 0.35, ("eyes wide open", "eyes very wide (startle)"), 0.6),
    "squint": (("eyeSquintLeft", "eyeSquintRight"), 0.5, ("narrowed, squinting eyes", "tightly squinted eyes"), 0.75),
    "jaw_drop": (("jawOpen",), 0.35, ("mouth open", "jaw dropped"), 0.6),
    "lip_press": (("mouthPressLeft", "mouthPressRight"), 0.4, ("lips pressed together", "lips pressed tight"), 0.65),
    "mouth_frown": (("mouthFrownLeft", "mouthFrownRight"), 0.3, ("mouth corners pulled down", "deep downturned mouth"), 0.55),
    "sneer": (("noseSneerLeft", "noseSneerRight"), 0.3, ("nose wrinkled (sneer)", "strong sneer"), 0.55),
    "eyes_closed": (("eyeBlinkLeft", "eyeBlinkRight"), 0.6, ("eyes closed", "eyes shut tight"), 0.85),
}
# head pose thresholds in degrees
HEAD_DOWN_DEG = 15.0
HEAD_UP_DEG = 15.0
HEAD_TILT_DEG = 12.0
HEAD_TURN_DEG = 25.0


class FaceFrame(BaseModel):
    t: float
    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 as fractions of the frame")
    blendshapes: dict[str, float]
    head_pose: dict[str, float]


class FaceSummary(BaseModel):
    """What the face did over the clip (or in the still)."""

    frames: int = Field(description="frames sampled")
    frames_with_face: int = 0
    coverage: float = Field(0.0, description="fraction of sampled frames where the face was found")
    fps: float | None = None
    duration_s: float | None = None
    face_size: float | None = Field(None, description="median face box width as a fraction of the frame width")
    blendshapes_mean: dict[str, float] = Field(default_factory=dict)
    blendshapes_peak: dict[str, float] = Field(default_factory=dict)
    blendshapes_peak_t: dict[str, float] = Field(default_factory=dict)
    head_pose_mean: dict[str, float] = Field(default_factory=dict, description="pitch, yaw, roll in degrees")
    head_pose_sd: dict[str, float] = Field(default_factory=dict)


_LOCK = threading.Lock()
_LANDMARKERS: dict[str, object] = {}


def _close_all() -> None:
    # Close explicitly: MediaPipe's own __del__ fails noisily during interpreter shutdown.
    for lm in _LANDMARKERS.values():
        with contextlib.suppress(Exception):  # best effort at exit, nothing to report to
            lm.close()  # type: ignore[attr-defined]
    _LANDMARKERS.clear()


atexit.register(_close_all)


def _landmarker(model: str | Path | None, strict: bool = False):
    """The process-wide landmarker for `model`; `strict` demands surer detections (tile search)."""
    require("face", "face cues")
    if model is None:
        from affect_llm.assets import asset_path

        path = asset_path(FACE_ASSET) / "face_landmarker.task"
    else:
        path = Path(model).expanduser()
        if path.is_dir():
            path = path / "face_landmarker.task"
    if not path.is_file():
        raise AffectError(f"face landmarker model not found: {path}")
    key = f"{path}|{'strict' if strict else 'default'}"
    det, pres = (STRICT_DETECTION, STRICT_PRESENCE) if strict else (0.5, 0.5)
    with _LOCK:
        if key not in _LANDMARKERS:
            from mediapipe.tasks.python import BaseOptions, vision

            opts = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(path)),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=4,
                min_face_detection_confidence=det,
                min_face_presence_confidence=pres,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
            _LANDMARKERS[key] = vision.FaceLandmarker.create_from_options(opts)
        return _LANDMARKERS[key]


def head_pose(matrix: np.ndarray) -> dict[str, float]:
    """Pitch, yaw, roll (degrees) relative to the line of sight from the camera to the face."""
    m = np.asarray(matrix, dtype=np.float64)
    r, t = m[:3, :3], m[:3, 3]
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    depth = -t[2] if t[2] < 0 else abs(t[2]) + 1e-6
    # A face above the optical axis that looks at the camera is pitched down by atan(ty/depth), etc.
    pitch -= math.degrees(math.atan2(t[1], depth))
    yaw += math.degrees(math.atan2(t[0], depth))
    return {"pitch": round(pitch, 2), "yaw": round(yaw, 2), "roll": round(roll, 2)}


def _detect(lm, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], dict[str, float], dict[str, float]]]:
    import mediapipe as mp

    res = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
    faces = []
    for i, marks in enumerate(res.face_landmarks):
        xs = [p.x for p in marks]
        ys = [p.y for p in marks]
        box = (max(0.0, min(xs)), max(0.0, min(ys)), min(1.0, max(xs)), min(1.0, max(ys)))
        shapes = {c.category_name: float(c.score) for c in res.face_blendshapes[i]} if res.face_blendshapes else {}
        pose = head_pose(res.facial_transformation_matrixes[i]) if res.facial_transformation_matrixes else {}
        faces.append((box, shapes, pose))
    return faces


def _crop_detect(lm, rgb: np.ndarray, box: tuple[float, float, float, float], margin: float):
    """Detect inside `box` (fractions) grown by `margin`, upscaled; boxes mapped back to the frame."""
    from PIL import Image

    h, w = rgb.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0 = max(0, int((box[0] - margin * bw) * w))
    y0 = max(0, int((box[1] - margin * bh) * h))
    x1 = min(w, math.ceil((box[2] + margin * bw) * w))
    y1 = min(h, math.ceil((box[3] + margin * bh) * h))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return []
    crop = rgb[y0:y1, x0:x1]
    scale = CROP_SIDE / max(crop.shape[:2])
    if scale > 1.0:
        size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))
    out = []
    for (cx0, cy0, cx1, cy1), shapes, pose in _detect(lm, crop):
        out.append(
            (
                ((x0 + cx0 * (x1 - x0)) / w, (y0 + cy0 * (y1 - y0)) / h, (x0 + cx1 * (x1 - x0)) / w, (y0 + cy1 * (y1 - y0)) / h),
                shapes,
                pose,
            )
        )
    return out


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _area(box: tuple[float, ...]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _pick(faces, prev):
    if not faces:
        return None
    if prev is not None:
        best = max(faces, key=lambda f: _iou(f[0], prev))
        if _iou(best[0], prev) > 0.1:
            return best
    return max(faces, key=lambda f: _area(f[0]))


def analyze_frame(
    lm, rgb: np.ndarray, prev_box: tuple[float, float, float, float] | None = None, tiles: bool = True, tile_lm=None
):
    """The tracked face in one RGB frame: (box, blendshapes, pose) or None. `tiles`: search small faces."""
    face = _pick(_detect(lm, rgb), prev_box)
    if face is None and prev_box is not None:  # tracking: look where the face was
        face = _pick(_crop_detect(lm, rgb, prev_box, margin=0.8), prev_box)
    if face is None and tiles:  # small faces: overlapping tiles, each upscaled
        for frac in TILE_FRACTIONS:
            starts = sorted({round(min(i * frac / 2, 1.0 - frac), 4) for i in range(int(2 / frac) + 1)})
            boxes = [(x, y, x + frac, y + frac) for y in starts for x in starts]
            found = [f for box in boxes for f in _crop_detect(tile_lm or lm, rgb, box, margin=0.0)]
            face = _pick(found, prev_box)
            if face is not None:
                break
    if face is not None and (face[0][2] - face[0][0]) < SMALL_FACE:
        refined = _pick(_crop_detect(lm, rgb, face[0], margin=0.6), face[0])
        if refined is not None:
            face = refined
    return face


def read_image(path: str | Path) -> np.ndarray:
    """RGB array of an image file, upright as its EXIF orientation says."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise AffectError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise AffectError(f"{path}: cannot read image ({err})") from None


def iter_video_frames(path: str | Path, fps: float = DEFAULT_FPS, max_seconds: float = DEFAULT_MAX_SECONDS):
    """Yield (time_s, RGB frame) sampled at about `fps` frames per second (PyAV)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise AffectError(f"{path}: no such video file")
    if fps <= 0:
        raise AffectError(f"--fps must be positive, got {fps}")
    last_slot = -1
    with av_stream(path, "video") as (container, stream):
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else (last_slot + 1) / fps
                if t > max_seconds:
                    raise AffectError(f"{path}: video is over the limit of {max_seconds:g} s (raise --max-seconds)")
                slot = math.floor(t * fps + 1e-6)  # one frame per 1/fps slot, free of float drift
                if slot > last_slot:
                    last_slot = slot
                    yield t, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as err:
            raise AffectError(f"{path}: cannot decode video ({err})") from None


def summarize(frames: list[FaceFrame], n_sampled: int, fps: float | None, duration: float | None) -> FaceSummary:
    s = FaceSummary(frames=n_sampled, frames_with_face=len(frames), fps=fps, duration_s=duration)
    s.coverage = round(len(frames) / n_sampled, 4) if n_sampled else 0.0
    if not frames:
        return s
    names = list(frames[0].blendshapes)
    mat = np.array([[f.blendshapes.get(n, 0.0) for n in names] for f in frames])
    ts = np.array([f.t for f in frames])
    s.blendshapes_mean = {n: round(float(v), 4) for n, v in zip(names, mat.mean(0))}
    s.blendshapes_peak = {n: round(float(v), 4) for n, v in zip(names, mat.max(0))}
    s.blendshapes_peak_t = {n: round(float(ts[i]), 3) for n, i in zip(names, mat.argmax(0))}
    for key in ("pitch", "yaw", "roll"):
        vals = np.array([f.head_pose[key] for f in frames if key in f.head_pose])
        if len(vals):
            s.head_pose_mean[key] = round(float(vals.mean()), 2)
            s.head_pose_sd[key] = round(float(vals.std()), 2)
    s.face_size = round(float(np.median([f.box[2] - f.box[0] for f in frames])), 4)
    return s


def face_cues(frames: list[FaceFrame], summary: FaceSummary, still: bool) -> list[Cue]:
    """Phrases for the blendshape rules and head pose; empty when no face was seen."""
    if not frames:
        return []
    ts = np.array([f.t for f in frames])
    cues: list[Cue] = []
    for shapes, thr, (plain, strong), strong_thr in FACE_RULES.values():
        series = np.mean([[f.blendshapes.get(b, 0.0) for b in shapes] for f in frames], axis=1)
        mean, peak = float(series.mean()), float(series.max())
        label = shapes[0].removesuffix("Left")
        above = series >= thr
        if mean >= thr:
            phrase = strong if mean >= strong_thr else plain
            level = mean
        elif not still and above.sum() >= 2:
            phrase, level = f"brief {plain.split(' (')[0]}", peak
        else:
            continue
        onset = float(ts[np.argmax(above)]) if above.any() else float(ts[0])
        offset = float(ts[len(above) - 1 - np.argmax(above[::-1])]) if above.any() else float(ts[-1])
        if still:
            ev, start, end = f"{label} {mean:.2f}", None, None
        else:
            ev = f"{label} mean {mean:.2f}, peak {peak:.2f} at {float(ts[np.argmax(series)]):.1f} s; onset {onset:.1f} s"
            start, end = onset, offset
        cues.append(Cue(modality="face", cue=phrase, evidence=ev, start=start, end=end, strength=round(min(1.0, level), 3)))
    pose = summary.head_pose_mean
    span = (None, None) if still else (float(ts[0]), float(ts[-1]))
    if pose:
        p, y, r = pose.get("pitch", 0.0), pose.get("yaw", 0.0), pose.get("roll", 0.0)
        if p >= HEAD_DOWN_DEG:
            cues.append(Cue(modality="face", cue="head lowered", evidence=f"pitch {p:+.0f} deg",
                            start=span[0], end=span[1], strength=round(min(1.0, p / 45), 3)))
        elif p <= -HEAD_UP_DEG:
            cues.append(Cue(modality="face", cue="head raised, chin up", evidence=f"pitch {p:+.0f} deg",
                            start=span[0], end=span[1], strength=round(min(1.0, -p / 45), 3)))
        if abs(r) >= HEAD_TILT_DEG:
            side = "viewer's left" if r > 0 else "viewer's right"
            cues.append(Cue(modality="face", cue="head tilted", evidence=f"roll {r:+.0f} deg (top towards {side})",
                            start=span[0], end=span[1], strength=round(min(1.0, abs(r) / 45), 3)))
        if abs(y) >= HEAD_TURN_DEG:
            cues.append(Cue(modality="face", cue="head turned away", evidence=f"yaw {y:+.0f} deg",
                            start=span[0], end=span[1], strength=round(min(1.0, abs(y) / 60), 3)))
    cues.sort(key=lambda c: -(c.strength or 0.0))
    return cues


def analyze_face(
    path: str | Path,
    kind: str = "auto",
    fps: float = DEFAULT_FPS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    model: str | Path | None = None,
) -> tuple[FaceSummary, list[Cue], list[FaceFrame]]:
    """Face summary and cues for an image or a video file (`kind`: auto | image | video)."""
    path = Path(path)
    lm = _landmarker(model)
    tile_lm = _landmarker(model, strict=True)
    if kind == "auto":
        kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"
    if kind not in ("image", "video"):
        raise AffectError(f"unknown face input kind {kind!r}; choose one of: auto, image, video")
    frames: list[FaceFrame] = []
    if kind == "image":
        face = analyze_frame(lm, read_image(path), tile_lm=tile_lm)
        if face is not None:
            frames.append(FaceFrame(t=0.0, box=face[0], blendshapes=face[1], head_pose=face[2]))
        summary = summarize(frames, 1, None, None)
        return summary, face_cues(frames, summary, still=True), frames
    prev = None
    n = 0
    last_t = 0.0
    tile_every = max(1, round(fps))  # the costly tile search at most once per second without a face
    for t, rgb in iter_video_frames(path, fps, max_seconds):
        n += 1
        last_t = t
        face = analyze_frame(lm, rgb, prev, tiles=prev is None and (n - 1) % tile_every == 0, tile_lm=tile_lm)
        if face is not None:
            prev = face[0]
            frames.append(FaceFrame(t=round(t, 3), box=face[0], blendshapes=face[1], head_pose=face[2]))
    if n == 0:
        raise AffectError(f"{path}: no frames could be decoded")
    summary = summarize(frames, n, fps, round(last_t, 3))
    return summary, face_cues(frames, summary, still=False), frames
