"""Tokenisation with `tokenizers`: no padding ever, truncation at the model's max length, reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from engine.errors import InvalidInput, ModelLoadError


@dataclass(frozen=True)
class Encoded:
    """One tokenised input (a text, or a text pair for cross-encoders)."""

    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int]]  # character span per token ((0, 0) for special tokens)
    special: list[int]  # 1 where the token is a special token ([CLS], [SEP], …)
    truncated: bool

    def __len__(self) -> int:
        return len(self.ids)


def validate_texts(texts: object, what: str = "texts") -> list[str]:
    """The one input check every surface relies on.

    An empty list and non-string items are errors. An empty string is allowed: it is encoded as the
    model's special tokens alone (e.g. `[CLS] [SEP]`), exactly as sentence-transformers does, so a list
    with an empty item still gets one result per item.
    """
    if isinstance(texts, str):
        raise InvalidInput(f"{what} must be a list of strings, got a single string")
    if not isinstance(texts, (list, tuple)):
        raise InvalidInput(f"{what} must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise InvalidInput(f"{what} is empty: send at least one string")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InvalidInput(f"{what}[{i}] must be a string, got {type(t).__name__}")
    return list(texts)


class TextTokenizer:
    """Wraps a `tokenizers.Tokenizer`, overriding whatever padding/truncation its file carries."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        self.max_length = max_length
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length, strategy="longest_first")
        self._windowed: dict[int, Tokenizer] = {}  # stride -> a copy that overflows into windows

    @classmethod
    def from_dir(cls, model_dir: Path, max_length: int) -> TextTokenizer:
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(f"{model_dir}: tokenizer.json is missing (only fast tokenizers are supported)")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise ModelLoadError(f"{path}: cannot parse tokenizer ({e})") from e
        return cls(tok, max_length)

    def token_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tok.id_to_token(token_id)

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: Sequence[str], offsets: bool = True) -> list[Encoded]:
        """`offsets=False` skips character offsets and the special-token mask (only NER needs them;
        copying them out of Rust is a third of the tokenising time for short texts)."""
        return [self._wrap(e, offsets) for e in self._tok.encode_batch(list(texts), add_special_tokens=True)]

    def encode_pairs(self, pairs: Sequence[tuple[str, str]], offsets: bool = True) -> list[Encoded]:
        return [self._wrap(e, offsets) for e in self._tok.encode_batch(list(pairs), add_special_tokens=True)]

    def encode_template(self, template: PairTemplate, pairs: Sequence[tuple[str, str]]) -> list[Encoded]:
        """(query, document) pairs formatted into one prompt each. The template spells out every special
        token, so none are added. The tail after `{document}` is tokenised once, on its own, and always
        kept: a prompt over the max length loses the end of its document (then its query), not the tail.
        No offsets or special-token masks (scoring needs none)."""
        tail = self._tok.encode(template.tail, add_special_tokens=False).ids if template.tail else []
        budget = self.max_length - len(tail)
        if budget < 1:
            raise InvalidInput(f"the pair template's fixed tail has {len(tail)} tokens, the model's max length "
                               f"is {self.max_length}")
        prompts = template.prompts([q for q, _ in pairs], [d for _, d in pairs])
        out = []
        for e in self._tok.encode_batch(prompts, add_special_tokens=False):  # truncated at max_length
            ids = e.ids[:budget] + tail
            cut = bool(e.overflowing) or len(e.ids) > budget
            out.append(Encoded(ids=ids, type_ids=[0] * len(ids), offsets=[], special=[], truncated=cut))
        return out

    def encode_windows(self, texts: Sequence[str], stride: int) -> list[list[Encoded]]:
        """Each text as overlapping windows of at most `max_length` tokens (special tokens included), each
        sharing `stride` tokens with the previous one, with offsets into the whole text: the layout
        transformers' token-classification pipeline reads with `stride` (the tokenizer's overflow)."""
        if not 0 <= stride < self.max_length // 2:
            raise InvalidInput(f"stride must be between 0 and {self.max_length // 2 - 1} tokens, got {stride}")
        tok = self._windowed.get(stride)
        if tok is None:  # a copy: truncation settings are the tokenizer's state, shared across threads
            tok = Tokenizer.from_str(self._tok.to_str())
            tok.no_padding()
            tok.enable_truncation(max_length=self.max_length, stride=stride, strategy="longest_first")
            self._windowed[stride] = tok
        out = []
        for e in tok.encode_batch(list(texts), add_special_tokens=True):
            windows = [e, *e.overflowing]
            out.append([Encoded(ids=w.ids, type_ids=w.type_ids, offsets=w.offsets, special=w.special_tokens_mask,
                                truncated=False) for w in windows])
        return out

    def word_continuations(self, text: str, enc: Encoded) -> list[bool]:
        """Per token: does it continue the previous token's word? transformers' rule: with a word-aware
        vocabulary (a continuing-subword prefix such as WordPiece's `##`) a piece whose token is longer
        than its text; otherwise a piece with no space before it and not at the start; never [UNK]."""
        prefix = getattr(self._tok.model, "continuing_subword_prefix", None)
        unk_name = getattr(self._tok.model, "unk_token", None)
        unk = self._tok.token_to_id(unk_name) if unk_name else None
        flags = []
        for token_id, (start, end) in zip(enc.ids, enc.offsets, strict=True):
            if token_id == unk:
                flags.append(False)
            elif prefix:
                flags.append(len(self._tok.id_to_token(token_id) or "") != end - start)
            else:
                flags.append(start > 0 and " " not in text[start - 1:start + 1])
        return flags

    @staticmethod
    def _wrap(e, offsets: bool) -> Encoded:
        return Encoded(ids=e.ids, type_ids=e.type_ids, offsets=e.offsets if offsets else [],
                       special=e.special_tokens_mask if offsets else [], truncated=bool(e.overflowing))


@dataclass(frozen=True)
class PairTemplate:
    """A prompt with one `{query}` and, after it, one `{document}` placeholder (plain replacement, so
    braces elsewhere in the template or in the texts are kept as they are)."""

    head: str  # up to `{document}`, still holding `{query}`
    tail: str  # after `{document}`: the same for every pair

    @classmethod
    def parse(cls, template: str) -> PairTemplate:
        if template.count("{query}") != 1 or template.count("{document}") != 1:
            raise InvalidInput("pair_template must contain `{query}` and `{document}` exactly once each")
        head, _, tail = template.partition("{document}")
        if "{query}" not in head:
            raise InvalidInput("pair_template must place `{query}` before `{document}`")
        return cls(head, tail)

    def prompts(self, queries: Sequence[str], documents: Sequence[str]) -> list[str]:
        """The text before the tail, one per pair."""
        return [self.head.replace("{query}", q) + d for q, d in zip(queries, documents, strict=True)]
