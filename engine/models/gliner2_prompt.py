"""GLiNER2's schema prompt: a request's schema and texts -> work items (gliner2 2.1.0, span architecture).

One sequence per (text window, schema), no [CLS]/[SEP]. Each task of the schema is a word list

    ( [P] <prompt> ( <marker> field₁ <marker> field₂ … ) )

with marker [E] (entities: one task whose fields are the entity types), [R] (one task per relation type, fields
`head` and `tail`), [L] (a classification task, fields its labels) or [C] (a structure, fields its fields);
<prompt> is the task's name, with ` [DESCRIPTION] field: text` appended per described field. Tasks are joined
by [SEP_STRUCT] in gliner2's order (structures, entities, relations, classifications), then [SEP_TEXT], then
the words. The words are the classification prefix of the structures' choice fields
(`( deal: kind ( merger | acquisition ) )`) then the text's words, lower-cased, from gliner2's whitespace
splitter. gliner2 tokenises every word on its own (`tokenizer.tokenize(word)`): so do we, with a cache.
gliner2 appends "." to a text that does not end in . ! or ?: so do we (the appended word is the model's input;
spans are clipped to the caller's text).

A task's vectors are the hidden states at its [P] and at each field's marker; a word's vector is the hidden
state of its first sub-token. A text longer than the window becomes overlapping word windows, each with the
whole prompt and prefix.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache

from tokenizers import AddedToken, Tokenizer

from engine.errors import InvalidInput, ModelLoadError

SEP_STRUCT, SEP_TEXT, P_TOKEN = "[SEP_STRUCT]", "[SEP_TEXT]", "[P]"
DESC_TOKEN = "[DESCRIPTION]"
SPECIAL_TOKENS = (SEP_STRUCT, SEP_TEXT, P_TOKEN, "[C]", "[E]", "[R]", "[L]", "[EXAMPLE]", "[OUTPUT]", DESC_TOKEN)
CACHE_WORDS = 100_000  # tokenised words kept (gliner2 keeps an LRU of the same kind)


class TaskKind(str, Enum):
    """The four kinds of GLiNER2 task, in the order gliner2 lays them in the prompt."""

    STRUCTURE = "json_structures"
    """Fields of a record ("deal": buyer, target, price …); [C] markers; several instances per text."""
    ENTITIES = "entities"
    """Entity types; [E] markers; one task named `entities`."""
    RELATIONS = "relations"
    """One relation type, fields `head` and `tail`; [R] markers; several instances per text."""
    CLASSIFICATION = "classifications"
    """Labels of one classification task; [L] markers; scored by the classifier head, not spans."""


MARKERS = {TaskKind.STRUCTURE: "[C]", TaskKind.ENTITIES: "[E]", TaskKind.RELATIONS: "[R]",
           TaskKind.CLASSIFICATION: "[L]"}
ORDER = list(TaskKind)


@dataclass(frozen=True)
class Field:
    name: str
    dtype: str = "list"  # "list": every span found; "str": the best one
    choices: tuple[str, ...] | None = None  # a choice field picks among these (scored in the prefix)
    description: str | None = None


@dataclass(frozen=True)
class SchemaTask:
    kind: TaskKind
    name: str
    fields: tuple[Field, ...]
    multi_label: bool = False  # classification: sigmoid per label (else softmax over labels)
    cls_threshold: float = 0.5  # classification, multi-label: labels at or above it are chosen
    description: str | None = None  # relations: `name: description` is the prompt

    @property
    def is_span(self) -> bool:
        return self.kind is not TaskKind.CLASSIFICATION

    def prompt(self) -> str:
        text = f"{self.name}: {self.description}" if self.description else self.name
        for f in self.fields:
            if f.description:
                text += f" {DESC_TOKEN} {f.name}: {f.description}"
        return text

    def words(self) -> list[str]:
        out = ["(", P_TOKEN, self.prompt(), "("]
        for f in self.fields:
            out += [MARKERS[self.kind], f.name]
        return out + [")", ")"]


@dataclass(frozen=True)
class Gliner2Schema:
    """The tasks of one request, kept in gliner2's prompt order."""

    tasks: tuple[SchemaTask, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(sorted(self.tasks, key=lambda t: ORDER.index(t.kind))))

    def prefix_words(self) -> list[str]:
        """The classification prefix gliner2 puts before the text for the structures' choice fields."""
        out: list[str] = []
        for task in self.tasks:
            if task.kind is not TaskKind.STRUCTURE:
                continue
            inner: list[str] = []
            for f in task.fields:
                if f.choices:
                    inner += [f.name, "(", *[w for i, c in enumerate(f.choices) for w in ([c] if i == 0 else ["|", c])],
                              ")", ","]
            if inner:
                out += ["(", f"{task.name}:", *inner[:-1], ")"]
        return out


@cache
def _word_pattern() -> re.Pattern[str]:
    """gliner2's WhitespaceTokenSplitter (URLs, e-mails, @handles, words joined by - or _, single symbols)."""
    marks = "".join(chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)).startswith("M"))
    word = rf"[\w{marks}\u200c\u200d]"
    return re.compile(rf"""(?:https?://[^\s]+|www\.[^\s]+)
        |[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{{2,}}
        |@[a-z0-9_]+
        |{word}+(?:[-_]{word}+)*
        |\S""", re.VERBOSE | re.IGNORECASE)


def normalize_text(text: str) -> str:
    """gliner2's `_normalize_text`: a text must end in sentence punctuation."""
    if not text:
        return "."
    return text if text.endswith((".", "!", "?")) else text + "."


def split_words(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _word_pattern().finditer(text)]


@dataclass(frozen=True)
class Gliner2Item:
    """One sequence: the schema prompt, [SEP_TEXT], the prefix words and a window of one text's words."""

    ids: list[int]
    markers: tuple[tuple[int, ...], ...]  # per task: token index of [P], then of each field's marker
    word_at: list[int]  # token index of each word's first sub-token (prefix words first)
    n_prefix: int  # how many of the words are the classification prefix
    span: tuple[bool, ...]  # per task: scored by spans (else by the classifier)
    single: tuple[bool, ...]  # per task: only its first instance is read (entities)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Window:
    text: int  # index into the request's texts
    first_word: int  # the window's text words: [first_word, end_word)
    end_word: int


@dataclass(frozen=True)
class Prepared:
    """A request as work items: `items[i]` covers `windows[i]`; `words[t]` are text t's word (start, end)
    offsets into its normalised text."""

    schema: Gliner2Schema
    items: list[Gliner2Item]
    windows: list[Window]
    words: list[list[tuple[int, int]]]
    prefix: list[str] = field(default_factory=list)


class Gliner2Front:
    """Turns (texts, schema) into work items. Needs no weights: the pool keeps it after a drop."""

    def __init__(self, tokenizer: Tokenizer, max_length: int, max_width: int) -> None:
        self.max_length = max_length
        self.max_width = max_width
        self._tok = tokenizer
        self._tok.no_padding()
        self._tok.no_truncation()
        missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
        if missing:  # gliner2 adds them at load (`add_special_tokens`), after the vocabulary, in this order
            tokenizer.add_special_tokens([AddedToken(t, special=True) for t in missing])
        ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        self.special_ids: list[int] = [i for i in ids if i is not None]
        if len(self.special_ids) != len(ids):
            raise ModelLoadError(f"the tokenizer cannot hold GLiNER2's special tokens {', '.join(missing)}")
        self._ids: dict[str, list[int]] = {}

    def _encode(self, words: Sequence[str]) -> list[list[int]]:
        """Each word tokenised on its own (gliner2's `tokenizer.tokenize(word)`), cached. Safe across threads:
        a lookup never depends on the shared cache still holding what it held a moment before."""
        found = {w: self._ids.get(w) for w in set(words)}
        new = [w for w, ids in found.items() if ids is None]
        if new:
            if len(self._ids) + len(new) > CACHE_WORDS:
                self._ids = {}
            for w, enc in zip(new, self._tok.encode_batch(new, add_special_tokens=False), strict=True):
                found[w] = self._ids[w] = enc.ids
        return [found[w] or [] for w in words]

    def prepare(self, texts: Sequence[str], schema: Gliner2Schema) -> Prepared:
        """Work items for many texts and one schema: the prompt is tokenised once and prefixes every window."""
        head_words: list[str] = []
        markers_at: list[list[int]] = []  # per task: word indices of [P] and the field markers
        for i, task in enumerate(schema.tasks):
            if i:
                head_words.append(SEP_STRUCT)
            words = task.words()
            markers_at.append([len(head_words) + 1] + [len(head_words) + j for j in range(4, len(words) - 2, 2)])
            head_words += words
        head_words.append(SEP_TEXT)
        prefix = schema.prefix_words()
        head = self._encode(head_words)
        starts = [0]
        for ids in head:
            starts.append(starts[-1] + len(ids))
        head_ids = [t for ids in head for t in ids]
        markers = tuple(tuple(starts[w] for w in m) for m in markers_at)
        prefix_ids = self._encode(prefix)
        kinds = (tuple(t.is_span for t in schema.tasks), tuple(t.kind is TaskKind.ENTITIES for t in schema.tasks))
        fixed = len(head_ids) + sum(len(x) for x in prefix_ids)
        budget = self.max_length - fixed
        if budget < self.max_width:
            raise InvalidInput(f"the schema takes {fixed} of the model's {self.max_length} tokens, leaving no room "
                               "for text; send fewer or shorter labels, fields or descriptions")
        items: list[Gliner2Item] = []
        windows: list[Window] = []
        all_words: list[list[tuple[int, int]]] = []
        for t, raw in enumerate(texts):
            text = normalize_text(raw)
            spans = split_words(text)
            all_words.append(spans)
            word_ids = self._encode([text[s:e].lower() for s, e in spans])
            for first, end in self._windows([len(x) for x in word_ids], budget):
                windows.append(Window(t, first, end))
                items.append(self._item(head_ids, markers, prefix_ids, word_ids[first:end], budget, kinds))
        return Prepared(schema, items, windows, all_words, prefix)

    def _windows(self, counts: list[int], budget: int) -> list[tuple[int, int]]:
        """[first, end) word windows of at most `budget` tokens, overlapping by max_width - 1 words (every span
        the head can score lies whole in some window). A text that fits is one window."""
        if sum(counts) <= budget:
            return [(0, len(counts))]
        out: list[tuple[int, int]] = []
        start = 0
        while True:
            end, tokens = start, 0
            while end < len(counts) and tokens + counts[end] <= budget:
                tokens += counts[end]
                end += 1
            end = max(end, start + 1)  # one word longer than a window: its tail is cut (_item)
            out.append((start, end))
            if end >= len(counts):
                return out
            start = max(end - (self.max_width - 1), start + 1)

    @staticmethod
    def _item(head_ids: list[int], markers: tuple[tuple[int, ...], ...], prefix_ids: list[list[int]],
              word_ids: list[list[int]], budget: int, kinds: tuple[tuple[bool, ...], tuple[bool, ...]]
              ) -> Gliner2Item:
        ids = list(head_ids)
        word_at: list[int] = []
        for piece in [*prefix_ids, *word_ids]:
            word_at.append(len(ids))  # a word with no sub-token points at the next one, as in gliner2
            ids += piece
        ids = ids[:len(head_ids) + sum(len(p) for p in prefix_ids) + budget]
        word_at = [min(w, len(ids) - 1) for w in word_at]
        return Gliner2Item(ids, markers, word_at, len(prefix_ids), *kinds)
