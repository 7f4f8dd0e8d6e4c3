"""A model behind a real Engine without a server: task calls on the production path, from synchronous code.

Used by tests, benchmarks and scripts that want offline calls (`OfflineModel(path).embed(texts)`): every call
goes catalog → pool → scheduler → device thread, exactly as a server request does after its surface.
"""

from __future__ import annotations

import asyncio
import weakref

from engine.catalog import Catalog, CatalogEntry
from engine.engine import Engine
from engine.pool import PoolConfig
from engine.scheduler import SchedulerConfig


class OfflineModel:
    """One model served by a real `Engine` (catalog → pool → scheduler → device thread), for scripts, tests and
    benchmarks that call it without a server.

    Task calls (`embed`, `classify`, `token_logits`, `sparse_embed`, `multi_vector`) take the production path
    through `Engine` on this object's own event loop; everything else (`tokenizer`, `backbone`, `info`,
    `make_batch`, `run` …) is the resident `LoadedModel`'s, for tests of the compute itself."""

    ID = "model-under-test"

    def __init__(self, path, dtype: str = "float32", backend: str | None = None, head: str | None = None,
                 device: str = "cpu", max_batch_tokens: int | None = None, **entry) -> None:
        backend = entry.pop("attention_backend", backend)
        catalog = Catalog()
        catalog.add(CatalogEntry(id=self.ID, source=f"path:{path}", dtype=dtype, load_task=head, **entry))
        self.loop = asyncio.new_event_loop()
        self.engine = Engine(catalog, PoolConfig(device=device, default_dtype=dtype, attention_backend=backend),
                             SchedulerConfig(max_batch_tokens=max_batch_tokens))
        try:
            self._call(self.engine.start(preload=[self.ID]))
        except BaseException:
            _close(self.loop, self.engine)
            raise
        self.model = self.engine.pool.model_info(self.ID)
        weakref.finalize(self, _close, self.loop, self.engine)

    def _call(self, coro):
        return self.loop.run_until_complete(coro)

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def embed(self, texts, normalize=None, dimensions=None, kind=None):
        return self._call(self.engine.embed(self.ID, texts, kind, normalize, dimensions))

    def classify(self, texts, pairs=None):
        """(logits [N, L], truncated), as the tools read them."""
        out = self._call(self.engine.classify(self.ID, texts, pairs))
        return out.logits, out.truncated

    def token_logits(self, texts):
        return self._call(self.engine.token_logits(self.ID, texts))

    def sparse_embed(self, texts, top_k=None):
        return self._call(self.engine.sparse_embed(self.ID, texts, top_k)).vectors

    def multi_vector(self, texts, kind=None):
        return self._call(self.engine.multi_vector(self.ID, texts, kind))


def _close(loop, engine) -> None:
    if not loop.is_closed():
        loop.run_until_complete(engine.shutdown())
        loop.close()
