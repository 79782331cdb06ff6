"""JSON-schema constrained decoding for the in-process backends, on lm-format-enforcer's core.

lm-format-enforcer's own transformers integration imports names that transformers 5 removed, so we
use its maintained core (`TokenEnforcer` + `JsonSchemaParser`) and provide the two small adapters it
needs: the tokenizer table and a logits processor (numpy, so the llama.cpp backend runs without torch)
that masks disallowed tokens. The tokenizer table
costs a decode of the whole vocabulary (~1.7 s), so it is built once per tokenizer, kept on it, and
stored in the asset cache keyed by a hash of the vocabulary, so a cold CLI start does not pay it again.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def tokenizer_data(tokenizer) -> Any:
    """lmfe's tokenizer data (prefix tree) for `tokenizer`, built once and kept on the tokenizer."""
    cached = getattr(tokenizer, "_affect_llm_enforcer_data", None)
    if cached is None:
        import gc

        # lmfe's prefix tree is ~1M small objects: the cyclic GC re-walked them while they were built (half
        # of the 2.4 s here), and again at every later full collection; frozen, it never looks at them again.
        enabled = gc.isenabled()
        gc.disable()
        try:
            cached = _build_tokenizer_data(tokenizer)
        finally:
            if enabled:
                gc.enable()
        gc.freeze()
        _unfreeze_at_exit()
        # Kept on the tokenizer: it lives exactly as long as the table is valid (an id() key can be reused).
        tokenizer._affect_llm_enforcer_data = cached
    return cached


@functools.cache
def _unfreeze_at_exit() -> None:
    """Give frozen objects back to the last collection: extension modules (nanobind's) report what was
    never freed at exit as leaks."""
    import atexit
    import gc

    atexit.register(gc.unfreeze)


def _import_lmfe() -> None:
    """Import lm-format-enforcer without torch when torch is not loaded yet.

    lmfe imports torch at import time for a bitmask mode we do not use (`use_bitmask=False` below), and that
    import is ~2.3 s of a cold llama.cpp answer, whose path is otherwise free of torch. A process that
    already holds torch (the transformers backend) imports lmfe as usual."""
    import sys

    if "lmformatenforcer.tokenlist" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError meanwhile
    try:
        import lmformatenforcer.tokenlist  # noqa: F401
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


def _build_tokenizer_data(tokenizer) -> Any:
    _import_lmfe()
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    vocab_size = len(tokenizer)
    regular = _stored_table(tokenizer)
    if regular is None:
        special = set(tokenizer.all_special_ids)
        token_0 = tokenizer.encode("0", add_special_tokens=False)[-1]
        ids = [i for i in range(vocab_size) if i not in special]
        # Decoding after "0" reveals a leading space that decoding the token alone would strip.
        # batch_decode runs in the Rust tokenizer (measured 1.7 s vs 2.2 s for a per-token Python loop).
        after_0 = [t[1:] for t in tokenizer.batch_decode([[token_0, i] for i in ids])]
        alone = tokenizer.batch_decode([[i] for i in ids])
        # Tokens that decode to a partial UTF-8 sequence derail the character-level parser (it then
        # allows end-of-sequence mid-string); JSON answers never need them, whole characters suffice.
        regular = [(i, a, len(a) > len(b)) for i, a, b in zip(ids, after_0, alone) if "\ufffd" not in a]
        _store_table(tokenizer, regular)

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(regular, decode, tokenizer.eos_token_id, False, vocab_size)


def _table_path(tokenizer):
    import hashlib
    import json

    from affect_llm.assets import cache_dir

    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    key = hashlib.sha256((vocab + repr(tokenizer.all_special_ids)).encode("utf-8")).hexdigest()[:24]
    return cache_dir() / "tokenizer_tables" / f"{key}.json"


def _stored_table(tokenizer) -> list[tuple[int, str, bool]] | None:
    import json

    try:
        path = _table_path(tokenizer)
        rows = json.loads(path.read_text("utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None  # unreadable: rebuild (and rewrite) it
    return [(int(i), str(t), bool(w)) for i, t, w in rows] if isinstance(rows, list) else None


def _store_table(tokenizer, regular: list[tuple[int, str, bool]]) -> None:
    import json

    from affect_llm.fileio import atomic_write

    try:
        atomic_write(_table_path(tokenizer), json.dumps(regular, ensure_ascii=False))
    except OSError:
        pass  # a read-only cache only costs the rebuild next time


def _outside_tokens(tokenizer, alphabet: str) -> np.ndarray:
    """Ids of the regular tokens with a character outside `alphabet` (cached per tokenizer and alphabet)."""
    cache = getattr(tokenizer, "_affect_llm_outside", None)
    if cache is None:
        cache = tokenizer._affect_llm_outside = {}
    if alphabet not in cache:
        allowed = set(alphabet)
        cache[alphabet] = np.array([i for i, text, _ in tokenizer_data(tokenizer).regular_tokens
                                    if any(ch not in allowed for ch in text)], dtype=np.int64)
    return cache[alphabet]


def token_texts(tokenizer) -> dict[int, str]:
    """id -> text of every regular token (from the enforcer's tokenizer table)."""
    cached = getattr(tokenizer, "_affect_llm_token_texts", None)
    if cached is None:
        cached = {i: text for i, text, _ in tokenizer_data(tokenizer).regular_tokens}
        tokenizer._affect_llm_token_texts = cached
    return cached


def quote_tokens(tokenizer) -> list[tuple[int, str]]:
    """(id, text before the first double quote) of every regular token that holds one."""
    cached = getattr(tokenizer, "_affect_llm_quote_tokens", None)
    if cached is None:
        cached = [(i, text.split('"', 1)[0]) for i, text in token_texts(tokenizer).items() if '"' in text]
        tokenizer._affect_llm_quote_tokens = cached
    return cached


def digit_tokens(tokenizer) -> list[int]:
    """Ids of the regular tokens whose text starts with a digit (after spaces)."""
    cached = getattr(tokenizer, "_affect_llm_digit_tokens", None)
    if cached is None:
        cached = [i for i, text in token_texts(tokenizer).items() if text.lstrip()[:1].isdigit()]
        tokenizer._affect_llm_digit_tokens = cached
    return cached


def _ends_sentence(text: str) -> bool:
    return text.rstrip(" '").endswith((".", "!", "?"))


def closing_tokens(tokenizer) -> dict[str, list[tuple[int, str]]]:
    """Tokens that close a JSON string mid-token, grouped by what follows the quote: {'",': [(id, text)]}.

    lm-format-enforcer's fast path inside strings admits only tokens without a quote or ending with one,
    and explores tokens *starting* with a quote; a token like `.",` (text, closing quote, comma) is never
    allowed. Models tokenize the end of a JSON string value that way (SmolLM2 writes `gratitude.",`), so
    without these tokens the constrained model escapes the quote and rambles on inside the string.
    `text` is what comes before the quote; it must itself fit the string (maxLength, allowed characters).
    """
    import json

    cached = getattr(tokenizer, "_affect_llm_closing_tokens", None)
    if cached is None:
        cached = {}
        for token_id, text, _ in tokenizer_data(tokenizer).regular_tokens:
            q = text.find('"')
            if q <= 0 or q == len(text) - 1:
                continue  # no quote, a leading quote (explored by lmfe) or a trailing one (in its cache)
            content = text[:q]
            if (len(content) - len(content.rstrip("\\"))) % 2:
                continue  # the quote is escaped: not a closing quote
            try:
                json.loads(f'"{content}"')
            except json.JSONDecodeError:
                continue
            cached.setdefault(text[q:], []).append((token_id, content))
        tokenizer._affect_llm_closing_tokens = cached
    return cached


def _tightened(schema: Any) -> Any:
    """The schema with every free string's maxLength one lower: lmfe's free-text shortcut admits a token that
    ends one character past maxLength (seen: 141 characters under maxLength 140)."""
    if isinstance(schema, dict):
        out = {k: _tightened(v) for k, v in schema.items()}
        if isinstance(out.get("maxLength"), int) and "enum" not in out and out["maxLength"] > 1:
            out["maxLength"] -= 1
        return out
    if isinstance(schema, list):
        return [_tightened(v) for v in schema]
    return schema


_BIG: dict[tuple[int, int, int], tuple[list[int], np.ndarray]] = {}  # allowed list -> array; see _index


class JsonSchemaLogitsProcessor:
    """Sets the score of every token that would break the schema to -inf, row by row:
    `proc(seqs, scores) -> scores` over a (rows, vocab) numpy array (see `decode_steps`)."""

    def __init__(self, tokenizer, schema: dict[str, Any] | list[dict[str, Any]],
                 label_priors: list[dict[str, float] | None] | None = None, prior_weight: float = 1.0) -> None:
        """`label_priors`: per batch row, a label model's probabilities of the enum values the answer's label
        strings choose from. Where given, the model's score of each label's first token gets
        `prior_weight * log(prior mass of the labels it starts)`: the label is then chosen by the product of
        the two experts, not by the 135M model's reading of the percentages alone."""
        # One whitespace at a time and the schema's field order: a small model otherwise spends its
        # token budget on newlines between JSON tokens.
        import string

        _import_lmfe()
        from lmformatenforcer import CharacterLevelParserConfig, JsonSchemaParser
        from lmformatenforcer.tokenenforcer import TokenEnforcer

        # Strings hold printable ASCII without braces or brackets. A small model that writes `"}` mid-sentence
        # is trying to end the JSON; and after a curly quote or apostrophe (“ ’, multi-byte tokens) the
        # character parser took end-of-sequence as valid mid-string, cutting 13 % of MELD explanations.
        # Labels and ids are ASCII; explanations quote with '.
        alphabet = "".join(ch for ch in string.printable if ch not in "{}[]\t\n\r\x0b\x0c")
        # Nor escapes: lmfe always admits a backslash in strings, and a model that writes \" is quoting JSON
        # (seen: `\"joy\", \"joy\"},` inside an explanation); nor "%": the only percentages in the prompt are
        # the label model's, and a small model copies them out ("anger: 83%, sadness: 4%"). Both are masked
        # in free text.
        self.outside = _outside_tokens(tokenizer, alphabet.replace("\\", "").replace("%", ""))
        config = CharacterLevelParserConfig(alphabet=alphabet,
                                            max_consecutive_whitespaces=1, force_json_field_order=True)
        # One enforcer per distinct schema; `schema` may be a list with one per batch row.
        rows = schema if isinstance(schema, list) else [schema]
        by_key: dict[str, Any] = {}
        self.enforcers = []
        for sc in rows:
            key = repr(sc)
            if key not in by_key:
                by_key[key] = TokenEnforcer(tokenizer_data(tokenizer), JsonSchemaParser(_tightened(sc), config))
            self.enforcers.append(by_key[key])
        self.enforcer = self.enforcers[0]
        self.eos = tokenizer.eos_token_id
        self.prompt_len: int | None = None
        self.closing = closing_tokens(tokenizer)
        self.priors = label_priors
        self.prior_weight = prior_weight
        self.texts = token_texts(tokenizer) if label_priors else {}
        # (id, text before the quote) of every token holding a double quote: the ones that can close a string.
        self.quote_tokens = quote_tokens(tokenizer)
        self.digit_tokens = digit_tokens(tokenizer)
        self._explanation_start: dict[int, int] = {}  # row -> index in its sequence where the explanation began

    def _closing_allowed(self, seq: list[int]) -> list[int]:
        """Mid-token string closers (see `closing_tokens`) that the parser accepts at this point: their
        text before the quote, the quote and the tail are walked through the parser character by character."""
        state = self.enforcer.prefix_states.get(tuple(seq))
        key = state.parser.shortcut_key() if state is not None else None
        if not (isinstance(key, tuple) and key[0] == "json_freetext"):
            return []
        out: list[int] = []
        for tail, tokens in self.closing.items():
            for token_id, content in tokens:
                if self._accepts(state.parser, content + tail):
                    out.append(token_id)
        return out

    @staticmethod
    def _accepts(parser, text: str) -> bool:
        try:
            for ch in text:
                if ch not in parser.get_allowed_characters():
                    return False
                parser = parser.add_character(ch)
        except Exception:  # noqa: BLE001 - lmfe raises on characters it cannot take
            return False
        return True

    def forced_text(self, seq: list[int]) -> str:
        """The text the schema allows as the only continuation after `seq` ('' if there is a choice).

        Structural JSON (`", "cues": ["`) and the rest of an enum value once its start is unique are
        forced; decoding appends their tokens without asking the model, one forward pass for all of them
        (jump-forward decoding). Whitespace is written the way the training targets write JSON
        (`json.dumps`: one space after ':' and ','), never as a choice.
        """
        self.enforcer.get_allowed_tokens(seq)
        state = self.enforcer.prefix_states.get(tuple(seq))
        if state is None:
            return ""
        parser, out = state.parser, ""
        while len(out) < 64:
            if parser.can_end():
                break
            allowed = [c for c in parser.get_allowed_characters() if not c.isspace()]
            if out and out[-1] in ":," and " " in parser.get_allowed_characters():
                allowed = [" "]
            if len(allowed) != 1:
                break
            try:
                parser = parser.add_character(allowed[0])
            except Exception:  # noqa: BLE001 - a parser that refuses its own character: stop forcing
                break
            out += allowed[0]
        return out

    def _prior_bias(self, seq: list[int], idx: np.ndarray, prior: dict[str, float]):
        """Log prior mass per allowed token (`idx`) while the answer writes a label from `prior`, else None.

        The mass is conditional on what of the label is written so far, so over a label's tokens the biases
        add up to `prior_weight * log prior(label)`. Biasing only the first token let a token that starts two
        labels carry both ("s" of surprise 0.31 and sadness 0.05), and the 135M model then finished the one
        the label model ranked low: 24 of 300 MELD turns went surprise -> sadness."""
        from affect_llm.backends.label_prior import token_bias

        state = self.enforcer.prefix_states.get(tuple(seq))
        stack = getattr(state.parser, "object_stack", None) if state is not None else None
        top = stack[-1] if stack else None
        options = getattr(top, "allowed_strings", None)
        written = getattr(top, "parsed_string", None)
        if not options or not isinstance(written, str) or not set(options) <= set(prior):
            return None
        live = {lab: p for lab, p in prior.items() if lab in options and lab.startswith(written)}
        total = sum(live.values())
        if len(live) < 2 or total <= 0:
            return None  # one label left (or none): nothing for the prior to decide
        out = []
        for t in idx.tolist():
            text = self.texts.get(t, "")
            out.append(token_bias(written, text if written else text.lstrip(), live, total, self.prior_weight))
        return np.array(out, dtype=np.float32)

    @staticmethod
    def _index(allowed: list[int]) -> np.ndarray:
        """`allowed` as an index array. Free-text steps allow ~45k ids, rebuilt by lmfe as a new list with
        the same content at nearly every step of every row; converting it costs 1.5 ms, comparing it with a
        kept one 0.08 ms. The last few conversions are kept."""
        if len(allowed) < 4096:
            return np.asarray(allowed, dtype=np.int64)
        key = (len(allowed), allowed[0], allowed[-1])
        hit = _BIG.get(key)
        if hit is None or hit[0] != allowed:
            if len(_BIG) >= 8:
                _BIG.pop(next(iter(_BIG)))
            hit = _BIG[key] = (list(allowed), np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
        return hit[1]

    def _explanation(self, seq: list[int]) -> tuple[Any, str] | None:
        """(string parser state, text so far) while `seq` is inside the explanation string, else None."""
        state = self.enforcer.prefix_states.get(tuple(seq))
        stack = getattr(state.parser, "object_stack", None) if state is not None else None
        if not stack or len(stack) < 2 or getattr(stack[-2], "current_key", None) != "explanation":
            return None
        top = stack[-1]
        body = getattr(top, "parsed_string", None)
        if body is None or not getattr(top, "seen_opening_quote", False) or getattr(top, "seen_closing_quote", True) \
                or getattr(top, "allowed_strings", None):
            return None
        return top, body

    def _unfinished_closers(self, seq: list[int]) -> list[int]:
        """Tokens that would close the explanation before its sentence ends, while there is room to end it.

        The 135M default closed its explanation after a colon or a dangling word ("…with no strong
        feeling:", "…matter-of-fact things like") in 5 of 20 answers; a reader takes that for a cut-off
        answer. Inside the explanation, a closing quote is allowed only once the text ends with . ! or ?
        (a closing single quote may follow), or with less than 40 characters of room left."""
        found = self._explanation(seq)
        if found is None:
            return []
        top, body = found
        if len(body) > (getattr(top, "max_length", None) or 1e9) - 40:
            return []
        return [t for t, before in self.quote_tokens if not _ends_sentence(body + before)]

    def _copied_numbers(self, seq: list[int], prior: dict[str, float]) -> list[int]:
        """Number tokens right after a label of the prior or a colon inside the explanation ("anger: 83",
        "shock: 81"): the only numbers next to labels in the prompt are the label model's percentages,
        which the 135M model copied out ("…'anger: 83; sadness: 4; joy: 4"). Numbers elsewhere (a quoted
        "3, 2, 1") stay."""
        found = self._explanation(seq)
        if found is None:
            return []
        body = found[1]
        tail = body.lower().rstrip(": ")
        if body.rstrip().endswith(":") or any(tail.endswith(label.lower()) for label in prior):
            return self.digit_tokens
        return []

    def _repeats(self, row: int, seq: list[int]) -> list[int]:
        """Tokens that would write a 3-token sequence the explanation already holds.

        The 135M default sometimes loops inside its sentence until the length limit ends it ("…matter;
        matter: matter; matter: matter;", "I bet it has a great story behind it too. I bet it has…"):
        3 of 9 broken explanations in 780 dev answers. No n-gram repeats (transformers' no_repeat_ngram_size=3),
        within the explanation only: the JSON around it repeats by design."""
        if self._explanation(seq) is None:
            self._explanation_start.pop(row, None)
            return []
        start = self._explanation_start.setdefault(row, len(seq))
        written = seq[start:]
        if len(written) < 3:
            return []
        a, b = written[-2], written[-1]
        return [written[i + 2] for i in range(len(written) - 2) if written[i] == a and written[i + 1] == b]

    def register(self, seq: list[int], extra: list[int]) -> None:
        """Walk the parser through appended (forced) tokens one by one, as lmfe derives each state from
        the one before; a jump of several tokens would otherwise look like a new prompt to it."""
        for i in range(1, len(extra)):
            self.enforcer.get_allowed_tokens(seq + extra[:i])

    def __call__(self, seqs: list[list[int]], scores: np.ndarray) -> np.ndarray:
        mask = np.full_like(scores, -np.inf)
        vocab = scores.shape[-1]
        if self.prompt_len is None:
            self.prompt_len = len(seqs[0])
        for row, seq in enumerate(seqs):
            self.enforcer = self.enforcers[row if row < len(self.enforcers) else 0]
            if self.eos in seq[self.prompt_len :]:
                # Finished rows of a padded batch; keep them finite and out of the parser.
                mask[row, self.eos] = 0.0
                continue
            allowed = self.enforcer.get_allowed_tokens(seq).allowed_tokens
            extra = self._closing_allowed(seq)
            if self.eos in allowed or self.eos in extra:
                # End-of-sequence is allowed only once the root object is closed: stop right there
                # instead of letting the model pad the answer with trailing whitespace.
                allowed, extra = [self.eos], []
            idx = self._index(allowed)
            if extra:
                idx = np.concatenate([idx, np.asarray(extra, dtype=np.int64)])
            idx = idx[idx < vocab]
            mask[row, idx] = 0.0  # array ops: a Python filter cost ~4 % of decoding
            state = self.enforcer.prefix_states.get(tuple(seq))
            key = state.parser.shortcut_key() if state is not None else None
            if isinstance(key, tuple) and key[0] == "json_freetext":
                # lmfe's free-text shortcut admits any quote-free token, ignoring the alphabet; its character
                # parser then breaks on the token and allows end-of-sequence mid-string.
                mask[row, self.outside[self.outside < vocab]] = -np.inf
            unfinished = self._unfinished_closers(seq) + self._repeats(row, seq)
            if unfinished:
                cut = mask[row].copy()
                cut[np.asarray(unfinished, dtype=np.int64)] = -np.inf
                if np.isfinite(cut).any():  # never leave the model without a valid token
                    mask[row] = cut
            prior = self.priors[row] if self.priors and row < len(self.priors) else None
            copied = self._copied_numbers(seq, prior or {})
            if copied:
                mask[row, np.asarray(copied, dtype=np.int64)] = -np.inf
            if prior:
                bias = self._prior_bias(seq, idx, prior)
                if bias is not None:
                    mask[row, idx] = bias
        return scores + mask
