"""One typed config per recipe: TRL's config plus the few fields affect-llm adds.

Why extend TRL's dataclasses instead of wrapping them: every TRL/transformers option (learning rate,
gradient accumulation, DeepSpeed, logging, ...) stays available under its documented name, in YAML and
on the command line, with no translation table to maintain. The fields added here say which model, data,
adapter and rewards to use. `__post_init__` checks our fields *and* TRL's own validation and raises one
`ConfigError` listing every problem, before any model or dataset is loaded.

YAML files use the same keys as the dataclass; `--key value` overrides are parsed as YAML scalars
(`--learning_rate 1e-4`, `--lora_target_modules [q_proj,v_proj]`).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError
from affect_llm.extras import install_hint, is_bitsandbytes_available, require

__all__ = ["RECIPES", "AffectDPOConfig", "AffectGRPOConfig", "AffectSFTConfig", "ConfigError", "load_config"]

QUANTIZATION = ("none", "8bit", "nf4")
DTYPES = ("float32", "bfloat16", "float16")
NEGATIVE_KINDS = ("hallucinated_cue", "spurious_label", "text_only")


class ConfigError(AffectError):
    """An invalid training config; the message lists every problem found."""


@dataclass
class _AffectFields:
    """Fields shared by every recipe (mixed into each TRL config; all have defaults)."""

    model: str | None = field(
        default=None,
        metadata={"help": "LLM: None/'default' = embedded SmolLM2-135M, a registry name, a folder or an HF id"},
    )
    train_file: str | None = field(
        default=None, metadata={"help": "canonical JSONL (affect-llm data build ...) with labelled samples"}
    )
    eval_file: str | None = field(default=None, metadata={"help": "optional canonical JSONL for evaluation loss"})
    max_samples: int | None = field(default=None, metadata={"help": "use at most this many training samples"})
    data_seed_shuffle: bool = field(default=True, metadata={"help": "shuffle samples before max_samples cut"})
    closed_label_space: float = field(
        default=0.0,
        metadata={"help": "share of samples prompted with their closed label set instead of open labels: "
                          "false/0 = none, true/1 = all, 0.5 = a seeded half"},
    )
    label_model: str | None = field(
        default="default",
        metadata={"help": "label model whose prior goes into the prompt: 'default' (bundled, for the default "
                          "model), 'none', or a folder (affect-llm train label-model)"},
    )
    label_vocabulary: str = field(
        default="emotions",
        metadata={"help": "'emotions': map/keep labels in the bundled vocabulary served by explain; 'free'"},
    )
    use_lora: bool = field(default=True, metadata={"help": "train a LoRA adapter (False = full fine-tuning)"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "module names that get LoRA weights ('all-linear' allowed as one item)"},
    )
    quantization: str = field(
        default="none", metadata={"help": "none | 8bit | nf4 (QLoRA; needs bitsandbytes)"}
    )
    torch_dtype: str = field(default="float32", metadata={"help": "weights dtype: float32 | bfloat16 | float16"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (None = runtime default)"})
    init_adapter: str | None = field(
        default=None,
        metadata={"help": "continue training this LoRA adapter folder (e.g. GRPO after SFT) instead of a new one"},
    )

    def _affect_errors(self) -> list[str]:
        errs: list[str] = []
        if not self.train_file:
            errs.append("train_file: required (a canonical JSONL file)")
        elif not Path(self.train_file).is_file():
            errs.append(f"train_file: no such file {self.train_file!r}")
        out = getattr(self, "output_dir", None)
        if out and Path(out).exists() and not Path(out).is_dir():  # e.g. the training file itself
            errs.append(f"output_dir: {out!r} exists and is not a folder")
        if self.eval_file and not Path(self.eval_file).is_file():
            errs.append(f"eval_file: no such file {self.eval_file!r}")
        if self.max_samples is not None and self.max_samples < 1:
            errs.append(f"max_samples: must be >= 1, got {self.max_samples}")
        if not 0.0 <= float(self.closed_label_space) <= 1.0:
            errs.append(f"closed_label_space: must be true, false or a share in [0, 1], got {self.closed_label_space}")
        if self.label_model not in (None, "default", "none") and not Path(str(self.label_model)).is_dir():
            errs.append(f"label_model: no such folder {self.label_model!r}")
        if self.label_vocabulary not in ("emotions", "free"):
            errs.append(f"label_vocabulary: must be 'emotions' or 'free', got {self.label_vocabulary!r}")
        if self.lora_r < 1:
            errs.append(f"lora_r: must be >= 1, got {self.lora_r}")
        if self.lora_alpha < 1:
            errs.append(f"lora_alpha: must be >= 1, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            errs.append(f"lora_dropout: must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            errs.append("lora_target_modules: must name at least one module")
        if self.quantization not in QUANTIZATION:
            errs.append(f"quantization: must be one of {', '.join(QUANTIZATION)}, got {self.quantization!r}")
        elif self.quantization != "none":
            if not self.use_lora:
                errs.append("quantization: QLoRA needs use_lora: true (quantized weights cannot be trained)")
            if not is_bitsandbytes_available():
                errs.append(f"quantization: {self.quantization} needs bitsandbytes: {install_hint('qlora')}")
        if self.torch_dtype not in DTYPES:
            errs.append(f"torch_dtype: must be one of {', '.join(DTYPES)}, got {self.torch_dtype!r}")
        if self.threads is not None and self.threads < 1:
            errs.append(f"threads: must be >= 1, got {self.threads}")
        if self.init_adapter is not None:
            if not (Path(self.init_adapter) / "adapter_config.json").is_file():
                errs.append(f"init_adapter: {self.init_adapter!r} is not a LoRA adapter folder (no adapter_config.json)")
            if not self.use_lora:
                errs.append("init_adapter: needs use_lora: true")
        return errs

    def _validate(self, trl_post_init, extra: list[str]) -> None:
        errs = self._affect_errors() + extra
        # TRL turns bf16 mixed precision on when it is unset; on a host without a GPU that fails ("setup
        # doesn't support bf16/gpu"). Unset on a GPU-less host therefore means CPU + float32 (set
        # `bf16: true` explicitly for CPU autocast on CPUs with bf16 units).
        if self.bf16 is None and not self.fp16 and not _has_accelerator():
            self.bf16 = False
            self.use_cpu = True
        try:
            trl_post_init(self)
        except (ValueError, TypeError) as err:  # TRL / transformers validation: report it with ours
            errs.append(f"trl: {err}")
        if errs:
            name = type(self).__name__
            raise ConfigError(f"invalid {name} ({len(errs)} problem{'s' if len(errs) > 1 else ''}):\n  - " + "\n  - ".join(errs))


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


def _trl():
    require("train", "training")
    import trl

    return trl


_trl_mod = _trl()


@dataclass
class AffectSFTConfig(_AffectFields, _trl_mod.SFTConfig):
    """SFT: the structured explain answer (explanation, labels, cues) as completion, loss on it only."""

    explanation_from: str = field(
        default="auto",
        metadata={"help": "auto: the sample's description if any, else a short generated one | generated"},
    )
    projector: str | None = field(
        default=None,
        metadata={"help": "train soft-token projectors for audio/face (linear | mlp | qformer); None = text only"},
    )
    projector_encoders: list[str] = field(
        default_factory=lambda: ["whisper"],
        metadata={"help": "frozen frame encoders feeding the projectors: whisper, prosody, face"},
    )
    projector_tokens: int = field(default=8, metadata={"help": "soft tokens per encoder and input"})
    projector_hidden: int = field(default=256, metadata={"help": "projector hidden size (mlp, qformer)"})
    projector_stage: int = field(
        default=2,
        metadata={"help": "1: projector only, target = textualized cue phrases; 2: projector + LoRA on explain"},
    )
    projector_init: str | None = field(
        default=None, metadata={"help": "start from a saved projector folder (e.g. the stage-1 output)"}
    )
    projector_cues: bool = field(
        default=True, metadata={"help": "stage 2: keep the textualized cues in the prompt beside the soft tokens"}
    )

    def _projector_errors(self) -> list[str]:
        from affect_llm.projector.projectors import PROJECTORS

        errs: list[str] = []
        if self.projector is None:
            if self.projector_init:
                errs.append("projector_init: set projector too (linear | mlp | qformer)")
            return errs
        if self.projector not in PROJECTORS:
            errs.append(f"projector: must be one of {', '.join(PROJECTORS)}, got {self.projector!r}")
        from affect_llm.projector.encoders import ENCODERS

        bad = [e for e in self.projector_encoders if e not in ENCODERS]
        if bad or not self.projector_encoders:
            errs.append(f"projector_encoders: unknown {bad}; valid: {', '.join(ENCODERS)}")
        if self.projector_tokens < 1:
            errs.append(f"projector_tokens: must be >= 1, got {self.projector_tokens}")
        if self.projector_hidden < 1:
            errs.append(f"projector_hidden: must be >= 1, got {self.projector_hidden}")
        if self.projector_stage not in (1, 2):
            errs.append(f"projector_stage: must be 1 or 2, got {self.projector_stage}")
        if self.projector_init and not (Path(self.projector_init) / "projector_config.json").is_file():
            errs.append(f"projector_init: {self.projector_init!r} is not a projector folder (no projector_config.json)")
        if self.projector_stage == 1 and self.init_adapter:
            errs.append("init_adapter: stage 1 trains the projector alone (the LM stays frozen)")
        return errs

    def __post_init__(self) -> None:
        extra = self._projector_errors()
        if self.explanation_from not in ("auto", "generated"):
            extra.append(f"explanation_from: must be 'auto' or 'generated', got {self.explanation_from!r}")
        if self.packing:
            extra.append("packing: not supported (completion-only loss on prompt/completion pairs)")
        if self.completion_only_loss is False:
            extra.append("completion_only_loss: must stay true/None (the prompt is not a target)")
        self._validate(_trl_mod.SFTConfig.__post_init__, extra)


@dataclass
class AffectDPOConfig(_AffectFields, _trl_mod.DPOConfig):
    """DPO: EmoPrefer pairs (`pairs_file`) and/or built negatives from canonical samples (`train_file`)."""

    pairs_file: str | None = field(
        default=None, metadata={"help": "preference pairs JSONL (affect-llm data build emoprefer ...)"}
    )
    negatives: list[str] = field(
        default_factory=lambda: list(NEGATIVE_KINDS),
        metadata={"help": "built rejected answers: hallucinated_cue, spurious_label, text_only"},
    )

    def _affect_errors(self) -> list[str]:
        errs = super()._affect_errors()
        if self.pairs_file:  # train_file optional when pairs are given
            errs = [e for e in errs if not e.startswith("train_file: required")]
            if not Path(self.pairs_file).is_file():
                errs.append(f"pairs_file: no such file {self.pairs_file!r}")
        bad = [n for n in self.negatives if n not in NEGATIVE_KINDS]
        if bad:
            errs.append(f"negatives: unknown {bad}; valid: {', '.join(NEGATIVE_KINDS)}")
        if self.train_file and not self.negatives:
            errs.append("negatives: train_file given but no negative kinds to build pairs from it")
        return errs

    def __post_init__(self) -> None:
        self._validate(_trl_mod.DPOConfig.__post_init__, [])


@dataclass
class AffectGRPOConfig(_AffectFields, _trl_mod.GRPOConfig):
    """GRPO with emotion-wheel rewards; `rewards` names functions in `affect_llm.train.rewards`,
    `reward_weights` (TRL's field) weights them in the same order."""

    rewards: list[str] = field(
        default_factory=lambda: ["wheel_f1", "format", "length"],
        metadata={"help": "reward names: wheel_f1, format, length, calibration"},
    )
    level1_credit: float = field(default=0.5, metadata={"help": "wheel_f1 credit for same coarse cluster"})
    think_format: bool = field(
        default=False, metadata={"help": "format reward expects <think>...</think> then the JSON answer"}
    )
    target_chars: int = field(default=240, metadata={"help": "length reward: no penalty up to this many chars"})

    def __post_init__(self) -> None:
        from affect_llm.train.rewards import REWARDS

        extra = []
        bad = [n for n in self.rewards if n not in REWARDS]
        if bad:
            extra.append(f"rewards: unknown {bad}; valid: {', '.join(REWARDS)}")
        if not self.rewards:
            extra.append("rewards: name at least one reward")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            extra.append(
                f"reward_weights: {len(self.reward_weights)} weights for {len(self.rewards)} rewards {self.rewards}"
            )
        if not 0.0 <= self.level1_credit <= 1.0:
            extra.append(f"level1_credit: must be in [0, 1], got {self.level1_credit}")
        if self.target_chars < 1:
            extra.append(f"target_chars: must be >= 1, got {self.target_chars}")
        self._validate(_trl_mod.GRPOConfig.__post_init__, extra)


RECIPES: dict[str, type] = {"sft": AffectSFTConfig, "dpo": AffectDPOConfig, "grpo": AffectGRPOConfig}


def _parse_value(raw: str) -> Any:
    import yaml

    for cast in (int, float):  # YAML 1.1 reads "1e-4" as a string
        try:
            return cast(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    return raw if isinstance(value, bool) else value  # YAML 1.1 reads "no"/"on" as booleans: keep the word


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`['--learning_rate', '1e-4', '--bf16=true']` -> {'learning_rate': 1e-4, 'bf16': True}."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--") or len(a) == 2:
            raise ConfigError(f"override {a!r}: expected --key value")
        key = a[2:].replace("-", "_")
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            raw = args[i + 1]
            i += 2
        else:  # bare flag
            raw = "true"
            i += 1
        out[key] = _parse_value(raw)
    return out


def load_config(recipe: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None):
    """Build the recipe's config from a YAML file plus overrides; unknown keys are errors (all listed)."""
    import yaml

    from affect_llm.errors import lookup

    cls = lookup(RECIPES, "training recipe", recipe)
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML ({err})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of config keys")
        values.update(loaded)
    values.update(overrides or {})
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in values if k not in names]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, names, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"unknown {recipe} config keys: {', '.join(hints)}")
    # `--projector_encoders whisper,prosody` on the command line: comma-separated text for a list field.
    list_fields = {f.name for f in dataclasses.fields(cls) if f.init and str(f.type).startswith("list[")}
    for k in list_fields & set(values):
        if isinstance(values[k], str):
            values[k] = [x.strip() for x in values[k].split(",") if x.strip()]
    problems = value_errors(cls, values)
    if not problems:
        return cls(**values)
    # Impossible values are reported together with every other problem of the config, all at once.
    rest = {k: v for k, v in values.items() if k not in problems}
    try:
        cls(**rest)
    except ConfigError as err:
        problems.update({f"_{i}": line for i, line in enumerate(_problem_lines(str(err)))})
    except (ValueError, TypeError) as err:
        problems["_trl"] = f"trl: {err}"
    lines = list(problems.values())
    raise ConfigError(f"invalid {cls.__name__} ({len(lines)} problem{'s' if len(lines) > 1 else ''}):\n  - "
                      + "\n  - ".join(lines))


def _problem_lines(message: str) -> list[str]:
    return [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")] or [message]


#: Training numbers that have a valid range whatever the recipe: (key, lowest, lowest allowed?, highest).
_RANGES: dict[str, tuple[float, bool, float | None]] = {
    "learning_rate": (0.0, False, None), "num_train_epochs": (0.0, False, None),
    "per_device_train_batch_size": (1, True, None), "per_device_eval_batch_size": (1, True, None),
    "gradient_accumulation_steps": (1, True, None), "warmup_ratio": (0.0, True, 1.0),
    "warmup_steps": (0, True, None), "weight_decay": (0.0, True, None), "max_grad_norm": (0.0, True, None),
    "logging_steps": (0.0, False, None), "save_steps": (0.0, False, None), "eval_steps": (0.0, False, None),
    "max_length": (1, True, None), "max_prompt_length": (1, True, None), "max_completion_length": (1, True, None),
    "num_generations": (1, True, None), "beta": (0.0, True, None), "temperature": (0.0, False, None),
    "max_samples": (1, True, None), "seed": (0, True, None),
}


def value_errors(cls: type, values: dict[str, Any]) -> dict[str, str]:
    """key -> problem for values of the wrong type (by the field's annotation) or outside their range."""
    import math

    annotations = {f.name: str(f.type) for f in dataclasses.fields(cls) if f.init}
    out: dict[str, str] = {}
    for key, value in values.items():
        ann = annotations.get(key, "")
        if value is None or "str" in ann or "Any" in ann or "dict" in ann or "list" in ann:
            continue
        kinds = [k for k in ("bool", "int", "float") if k in ann]
        if not kinds and key not in _RANGES:
            continue
        is_bool = isinstance(value, bool)
        ok = (is_bool and ("bool" in kinds or "float" in kinds)) or (not is_bool and (  # false/true read as 0/1
            (isinstance(value, int) and ("int" in kinds or "float" in kinds or not kinds))
            or (isinstance(value, float) and ("float" in kinds or not kinds
                                              or ("int" in kinds and value.is_integer())))))
        if not ok:
            want = " or ".join({"bool": "true/false", "int": "an integer", "float": "a number"}[k] for k in kinds)
            out[key] = f"{key}: must be {want or 'a number'}, got {value!r}"
            continue
        if is_bool:
            continue
        if not math.isfinite(value):
            out[key] = f"{key}: must be finite, got {value!r}"
            continue
        if key == "max_steps" and not (value == -1 or value >= 1):
            out[key] = f"max_steps: must be -1 (use the epochs) or >= 1, got {value!r}"
        if key in _RANGES:
            low, inclusive, high = _RANGES[key]
            if value < low or (value == low and not inclusive) or (high is not None and value > high):
                rng = f"{'>=' if inclusive else '>'} {low:g}" + (f" and <= {high:g}" if high is not None else "")
                out[key] = f"{key}: must be {rng}, got {value!r}"
    return out


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-safe dict of every init field (for run cards)."""
    import json

    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        v = getattr(config, f.name)
        try:
            json.dumps(v)
        except TypeError:
            v = str(v)
        out[f.name] = v
    return out
