"""Graceful drain for `serve --transport http`: on SIGTERM (or SIGINT) readiness turns 503 at once while
the listener keeps answering, accepted calls finish, then uvicorn's own shutdown closes the listener.

uvicorn alone closes its listening socket as soon as the signal arrives, so a load balancer probing
/readyz sees "connection refused" instead of a 503 and cannot drain. Here the first signal starts
`drain` (an async callable from the app: stop intake, wait for accepted work up to the drain timeout);
only when it returns does the server begin uvicorn's shutdown (listener closed, in-flight responses
flushed for `timeout_graceful_shutdown`, lifespan shutdown). A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

log = logging.getLogger("sie_mcp")

# After the drain: how long uvicorn waits for responses still being written before it cancels them.
FLUSH_S = 5.0


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self._drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain_task: asyncio.Task | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self._draining or self.should_exit:
            super().handle_exit(sig, frame)  # a second signal: uvicorn's own shutdown, now
            return
        self._draining = True
        self._captured_signals.append(sig)  # re-raised after a clean shutdown, as uvicorn does
        # A signal handler runs between two bytecodes of the loop thread: hand the work to the loop.
        self._loop.call_soon_threadsafe(self._start_drain, signal.Signals(sig).name)

    def _start_drain(self, name: str) -> None:
        log.info("%s: draining (readiness 503; accepted calls finish before the listener closes)", name)
        self._drain_task = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._drain()
        except Exception:  # a failing drain must not keep the process alive
            log.exception("drain failed")
        self.should_exit = True
