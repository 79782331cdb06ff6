"""`AffectLM`: any Hugging Face causal LM + frozen frame encoders + trainable projectors.

The prompt names where non-verbal input goes with placeholders (`<audio>`, `<face>`). `tokenize` expands
each placeholder into `num_tokens` slots per encoder of that modality (e.g. `<audio>` -> 8 Whisper slots +
8 prosody slots) and records, per position, which encoder owns it (`affect_slots`: 0 = text). `splice` looks
the text tokens up in the LM's own embedding table and scatters the projected frames into the slots; the
LM then runs on `inputs_embeds`. Nothing depends on the LM family: no subclass, no new vocabulary entries
(slots carry the pad id, whose embedding is overwritten), so the base model and a LoRA adapter stay
exactly as they are and can be served by anything that accepts prompt embeddings (vLLM `prompt_embeds`).

Training reuses TRL's SFTTrainer unchanged: `attach(model)` registers the projectors as a submodule of the
model the trainer optimises and a forward pre-hook that performs the splice, so the trainer's own forward
(fused LM head, PEFT, accelerate wrapping) runs on the spliced embeddings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from affect_llm.errors import AffectError
from affect_llm.projector.projectors import ProjectorSpec, build_projector

__all__ = ["PLACEHOLDERS", "PROJECTOR_CONFIG", "PROJECTOR_WEIGHTS", "AffectLM", "is_projector_dir"]

PLACEHOLDERS = {"audio": "<audio>", "face": "<face>"}
PROJECTOR_CONFIG = "projector_config.json"
PROJECTOR_WEIGHTS = "projector.safetensors"
FORMAT = "affect-llm-projector"
FORMAT_VERSION = 1
_PLACEHOLDER_RE = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS.values()) + ")")
_MODALITY_OF = {v: k for k, v in PLACEHOLDERS.items()}

Features = dict[str, tuple[torch.Tensor, torch.Tensor]]  # encoder -> (frames [B, T, D], mask [B, T])


def is_projector_dir(path: str | Path) -> bool:
    return (Path(path) / PROJECTOR_CONFIG).is_file()


class AffectLM(nn.Module):
    """A causal LM with soft-token inputs from named encoders (see the module docstring)."""

    def __init__(self, lm: nn.Module, tokenizer: Any, specs: dict[str, ProjectorSpec], modalities: dict[str, str],
                 encoder_versions: dict[str, int] | None = None, base_model: str | None = None) -> None:
        super().__init__()
        unknown = sorted(set(modalities.values()) - set(PLACEHOLDERS))
        if unknown:
            raise AffectError(f"unknown modality {unknown[0]!r}; valid: {', '.join(PLACEHOLDERS)}")
        if set(specs) != set(modalities):
            raise AffectError("every encoder needs both a projector spec and a modality")
        self.lm = lm
        self.tokenizer = tokenizer
        self.specs = dict(sorted(specs.items()))
        self.modalities = {name: modalities[name] for name in self.specs}
        self.encoder_versions = dict(encoder_versions or {})
        self.base_model = base_model
        self.projectors = nn.ModuleDict({name: build_projector(spec) for name, spec in self.specs.items()})
        self.codes = {name: i + 1 for i, name in enumerate(self.specs)}  # slot code per encoder; 0 = text
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._encoders: dict[str, Any] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, lm: nn.Module, tokenizer: Any, encoders: dict[str, tuple[str, int]] | list[str],
              kind: str = "mlp", num_tokens: int = 8, hidden: int = 256, base_model: str | None = None) -> AffectLM:
        """New projectors for `encoders`: registry names, or {name: (modality, frame dim)} for custom ones."""
        versions: dict[str, int] = {}
        if isinstance(encoders, list):
            from affect_llm.projector.encoders import build_encoder

            built = {name: build_encoder(name) for name in encoders}
            versions = {name: enc.version for name, enc in built.items()}
            encoders = {name: (enc.modality, enc.dim) for name, enc in built.items()}
        if not encoders:
            raise AffectError("an AffectLM needs at least one encoder")
        emb = lm.get_input_embeddings().weight
        rms = float(emb.detach().float().pow(2).mean().sqrt())
        out_dim = emb.shape[1]
        specs = {name: ProjectorSpec(kind=kind, in_dim=dim, out_dim=out_dim, num_tokens=num_tokens, hidden=hidden,
                                     embed_rms=rms) for name, (_, dim) in encoders.items()}
        model = cls(lm, tokenizer, specs, {name: mod for name, (mod, _) in encoders.items()}, versions, base_model)
        model.projectors.float()  # projectors train in float32 whatever the LM's dtype
        return model

    def _projector_dtype_device(self) -> tuple[torch.dtype, torch.device]:
        p = next(self.projectors.parameters())
        return p.dtype, p.device

    # ------------------------------------------------------------------ prompt side
    def encoders_for(self, modality: str) -> list[str]:
        return [name for name, mod in self.modalities.items() if mod == modality]

    def tokenize(self, text: str) -> tuple[list[int], list[int]]:
        """Token ids and slot codes for a prompt text with placeholders (no special tokens added)."""
        ids: list[int] = []
        slots: list[int] = []
        pad = self.tokenizer.pad_token_id
        for part in _PLACEHOLDER_RE.split(text):
            if not part:
                continue
            modality = _MODALITY_OF.get(part)
            if modality is None:
                piece = self.tokenizer(part, add_special_tokens=False)["input_ids"]
                ids += piece
                slots += [0] * len(piece)
                continue
            names = self.encoders_for(modality)
            if not names:
                raise AffectError(f"the prompt has {part} but this model has no {modality} encoder "
                                  f"(it has: {', '.join(self.specs)})")
            for name in names:
                n = self.specs[name].num_tokens
                ids += [pad] * n
                slots += [self.codes[name]] * n
        return ids, slots

    def modalities_in(self, text: str) -> list[str]:
        return [_MODALITY_OF[m] for m in _PLACEHOLDER_RE.findall(text)]

    # ------------------------------------------------------------------ features
    def encoder(self, name: str):
        if name not in self._encoders:
            from affect_llm.projector.encoders import build_encoder

            enc = build_encoder(name)
            want = self.encoder_versions.get(name)
            if want is not None and enc.version != want:
                raise AffectError(f"projector was trained on {name} features v{want}, this install computes v{enc.version}")
            self._encoders[name] = enc
        return self._encoders[name]

    def encode(self, media: dict[str, Any]) -> dict[str, np.ndarray]:
        """{modality: path or array} -> {encoder: frames [T, D]} with every encoder of those modalities."""
        from affect_llm.projector.encoders import encode_cached

        out: dict[str, np.ndarray] = {}
        for modality, source in media.items():
            names = self.encoders_for(modality)
            if not names:
                raise AffectError(f"this model has no {modality} encoder (it has: {', '.join(self.specs)})")
            for name in names:
                enc = self.encoder(name)
                out[name] = enc.encode(source) if isinstance(source, np.ndarray) else encode_cached(enc, source)
        return out

    def batch_features(self, per_sample: list[dict[str, np.ndarray]]) -> Features:
        """Right-padded frames and masks per encoder, rows in sample order (samples without it skipped)."""
        dtype, device = self._projector_dtype_device()
        out: Features = {}
        for name in self.specs:
            seqs = [np.asarray(f[name], dtype=np.float32) for f in per_sample if name in f]
            if not seqs:
                continue
            dim = self.specs[name].in_dim
            bad = [s.shape for s in seqs if s.ndim != 2 or s.shape[1] != dim or s.shape[0] == 0]
            if bad:
                raise AffectError(f"{name} features must be [frames > 0, {dim}], got {bad[0]}")
            t = max(len(s) for s in seqs)
            frames = torch.zeros(len(seqs), t, dim, dtype=dtype, device=device)
            mask = torch.zeros(len(seqs), t, dtype=torch.bool, device=device)
            for i, s in enumerate(seqs):
                frames[i, : len(s)] = torch.from_numpy(s).to(dtype)
                mask[i, : len(s)] = True
            out[name] = (frames, mask)
        return out

    # ------------------------------------------------------------------ the splice
    def splice(self, input_ids: torch.Tensor, affect_slots: torch.Tensor, features: Features) -> torch.Tensor:
        """Token embeddings with each encoder's projected tokens written into its slots."""
        embeds = self.lm.get_input_embeddings()(input_ids)
        for name, code in self.codes.items():
            where = affect_slots == code
            n_slots = int(where.sum())
            if not n_slots:
                continue
            if name not in features:
                raise AffectError(f"the prompt has {name} slots but no {name} features were given")
            frames, mask = features[name]
            tokens = self.projectors[name](frames, mask)  # [rows, num_tokens, hidden]
            if n_slots != tokens.shape[0] * tokens.shape[1]:
                raise AffectError(f"{name}: {n_slots} slots in the batch but {tokens.shape[0]} inputs x "
                                  f"{tokens.shape[1]} tokens; one input per placeholder")
            embeds = embeds.masked_scatter(where.unsqueeze(-1), tokens.reshape(-1, tokens.shape[-1]).to(embeds.dtype))
        return embeds

    def _pop_features(self, kwargs: dict[str, Any]) -> Features:
        feats: Features = {}
        for name in self.specs:
            frames = kwargs.pop(f"affect_{name}", None)
            mask = kwargs.pop(f"affect_{name}_mask", None)
            if frames is not None:
                feats[name] = (frames, mask)
        return feats

    def forward(self, input_ids: torch.Tensor, affect_slots: torch.Tensor | None = None, **kwargs: Any):
        feats = self._pop_features(kwargs)
        if affect_slots is None:
            return self.lm(input_ids=input_ids, **kwargs)
        return self.lm(inputs_embeds=self.splice(input_ids, affect_slots, feats), **kwargs)

    def attach(self, model: nn.Module):
        """Make `model` (the LM or its PEFT wrapper, as handed to a trainer) splice soft tokens itself.

        The projectors become `model.affect_projectors` (so the trainer's optimiser sees them) and a
        forward pre-hook turns `input_ids` + `affect_slots` + `affect_<encoder>` batches into `inputs_embeds`.
        """
        model.add_module("affect_projectors", self.projectors)

        def hook(_module, args, kwargs):
            slots = kwargs.pop("affect_slots", None)
            feats = self._pop_features(kwargs)
            if slots is None:
                return args, kwargs
            ids = kwargs.pop("input_ids", None)
            if ids is None and args:
                ids, args = args[0], args[1:]
            kwargs["inputs_embeds"] = self.splice(ids, slots, feats)
            return args, kwargs

        return model.register_forward_pre_hook(hook, with_kwargs=True)

    # ------------------------------------------------------------------ inference
    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def prompt_batch(self, prompts: list[str], media: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Left-padded `input_ids`, `inputs_embeds` and `attention_mask` for chat-templated prompts + media."""
        if len(prompts) != len(media):
            raise AffectError(f"{len(prompts)} prompts but {len(media)} media entries")
        per_sample = []
        for text, m in zip(prompts, media):
            needed = set(self.modalities_in(text))
            missing = sorted(needed - set(m))
            if missing:
                raise AffectError(f"the prompt has <{missing[0]}> but no {missing[0]} input was given")
            per_sample.append(self.encode({k: v for k, v in m.items() if k in needed}))
        toks = [self.tokenize(t) for t in prompts]
        width = max(len(ids) for ids, _ in toks)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(toks), width), pad, dtype=torch.long)
        slots = torch.zeros((len(toks), width), dtype=torch.long)
        attn = torch.zeros((len(toks), width), dtype=torch.long)
        for row, (i, s) in enumerate(toks):
            ids[row, width - len(i):] = torch.tensor(i)
            slots[row, width - len(s):] = torch.tensor(s)
            attn[row, width - len(i):] = 1
        device = next(self.lm.parameters()).device
        with torch.no_grad():
            embeds = self.splice(ids.to(device), slots.to(device), self.batch_features(per_sample))
        # input_ids ride along so generate() treats the prompt like a text prompt (repetition penalty,
        # returned sequences); the model reads the embeddings.
        return {"input_ids": ids.to(device), "inputs_embeds": embeds, "attention_mask": attn.to(device)}

    # ------------------------------------------------------------------ persistence
    def config_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "base_model": self.base_model,
            "hidden_size": next(iter(self.specs.values())).out_dim,
            "placeholders": PLACEHOLDERS,
            "encoders": {name: {"modality": self.modalities[name], "version": self.encoder_versions.get(name),
                                "projector": spec.to_dict()} for name, spec in self.specs.items()},
        }

    def save_projectors(self, out_dir: str | Path) -> Path:
        """Write projector weights + config (separately from any LoRA adapter in the same folder)."""
        from safetensors.torch import save_file

        from affect_llm.fileio import atomic_write, write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.projectors.state_dict().items()}
        tmp = out / f".{PROJECTOR_WEIGHTS}.tmp"
        save_file(state, str(tmp))
        atomic_write(out / PROJECTOR_WEIGHTS, tmp.read_bytes())
        tmp.unlink()
        write_json(out / PROJECTOR_CONFIG, self.config_dict())
        return out

    @staticmethod
    def read_config(projector_dir: str | Path) -> dict[str, Any]:
        path = Path(projector_dir) / PROJECTOR_CONFIG
        if not path.is_file():
            raise AffectError(f"{projector_dir}: not a projector folder (no {PROJECTOR_CONFIG})")
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise AffectError(f"{path}: not valid JSON ({err.msg})") from None
        if cfg.get("format") != FORMAT or cfg.get("format_version") != FORMAT_VERSION:
            raise AffectError(f"{path}: not an {FORMAT} v{FORMAT_VERSION} config")
        return cfg

    @classmethod
    def from_pretrained(cls, projector_dir: str | Path, lm: nn.Module, tokenizer: Any) -> AffectLM:
        """Rebuild projectors saved by `save_projectors` on top of an already loaded LM (+ adapter)."""
        from safetensors.torch import load_file

        cfg = cls.read_config(projector_dir)
        hidden = lm.get_input_embeddings().weight.shape[1]
        if cfg["hidden_size"] != hidden:
            raise AffectError(f"projector in {projector_dir} maps to hidden size {cfg['hidden_size']}, "
                              f"but this LM's is {hidden}; was it trained for {cfg.get('base_model')}?")
        specs = {n: ProjectorSpec(**e["projector"]) for n, e in cfg["encoders"].items()}
        model = cls(lm, tokenizer, specs, {n: e["modality"] for n, e in cfg["encoders"].items()},
                    {n: e["version"] for n, e in cfg["encoders"].items() if e.get("version") is not None},
                    cfg.get("base_model"))
        model.projectors.load_state_dict(load_file(str(Path(projector_dir) / PROJECTOR_WEIGHTS)))
        return model
