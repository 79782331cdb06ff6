"""Write a transformers Llama checkpoint (the base with an adapter merged in) as a GGUF file for llama.cpp.

The embedded LLM ships as a GGUF (Q4_1) whose metadata (hyper-parameters, tokenizer, chat template) is
kept next to the converted checkpoint. A merged checkpoint has the same architecture and vocabulary, only
other weights, so its GGUF is that metadata plus the new tensors, named by gguf-py's tensor map. Linear
weights are written as Q8_0 (the LoRA's updates are small and would be lost again in 4 bits); norms stay F32.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from affect_llm.errors import AffectError

QTYPES = ("Q8_0", "F16", "F32")


def _permute(w, n_head: int):
    # transformers' Llama rotates the two halves of each head; llama.cpp rotates interleaved pairs.
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export_gguf(hf_dir: str | Path, template_gguf: str | Path, out: str | Path, *, qtype: str = "Q8_0") -> Path:
    """Write `hf_dir`'s weights with `template_gguf`'s metadata to `out` (atomically). Returns `out`."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    if qtype not in QTYPES:
        raise AffectError(f"unknown GGUF type {qtype!r}; choose one of: {', '.join(QTYPES)}")
    hf_dir, out = Path(hf_dir), Path(out)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise AffectError(f"GGUF export supports Llama checkpoints only, not {config.get('model_type')!r}")
    reader = gguf.GGUFReader(str(template_gguf))
    arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    n_layers = int(config["num_hidden_layers"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    heads = {"attn_q": int(config["num_attention_heads"]), "attn_k": int(config["num_key_value_heads"])}

    weights = {}
    for shard in sorted(hf_dir.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():
                name = names.get_name(key, try_suffixes=(".weight", ".bias"))
                if name is not None:  # with its ".weight" / ".bias" suffix
                    weights[name] = f.get_tensor(key).float().numpy()
    missing = [t.name for t in reader.tensors if t.name not in weights]
    if missing:
        raise AffectError(f"{hf_dir} does not match {Path(template_gguf).name}: no weights for {missing[:3]}")

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch=arch)
        for field in reader.fields.values():
            if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
                continue  # written by the writer itself
            if field.name == gguf.Keys.General.FILE_TYPE:
                continue
            kind = field.types[0]
            sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
        writer.add_file_type({"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "F16": gguf.LlamaFileType.MOSTLY_F16,
                              "F32": gguf.LlamaFileType.ALL_F32}[qtype])
        for t in reader.tensors:
            w = weights[t.name]
            kind = t.name.split(".")[-2]
            if kind in heads:
                w = _permute(w, heads[kind])
            if w.ndim == 1 or qtype == "F32":
                writer.add_tensor(t.name, np.ascontiguousarray(w, dtype=np.float32))
            elif qtype == "F16":
                writer.add_tensor(t.name, np.ascontiguousarray(w, dtype=np.float16))
            else:
                q = gguf.quants.quantize(np.ascontiguousarray(w, dtype=np.float32), gguf.GGMLQuantizationType.Q8_0)
                writer.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
