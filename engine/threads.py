"""Intra-op threads per CPU batch, picked from measured speed: all of them, or one.

On a CPU whose cores are shared (more runnable threads than cores: other processes, or the server's own
event loop and clients beside the device thread), every parallel region of a forward pass waits at its
barrier for whichever team thread the OS has just preempted. The cost then grows with the number of ops,
not with the work, and one thread is the faster choice, most of all for small batches (measured on a
loaded 2-core EPYC, docs/benchmarks.md: one text 27 ms at 1 thread vs 221 ms at 2; 64 texts 1.5 s vs
4.1 s). On a quiet machine the full team wins. Neither can be known in advance, so the device thread
measures: per batch-size class (powers of two of the batch's tokens) it keeps a running seconds-per-token
for each choice, runs the faster one, and retries the other every `explore_every`-th batch of the class
so that a change of load is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALPHA = 0.3  # weight of the newest measurement in the running per-token cost


@dataclass
class _Class:
    cost: dict[int, float] = field(default_factory=dict)  # threads -> running seconds per token
    batches: int = 0


@dataclass
class ThreadChooser:
    """Owned by the one device thread (no locking). `max_threads` <= 1: always one thread, nothing measured."""

    max_threads: int
    explore_every: int = 16
    _classes: dict[int, _Class] = field(default_factory=dict)

    def options(self) -> tuple[int, ...]:
        return (self.max_threads, 1) if self.max_threads > 1 else (1,)

    def pick(self, tokens: int) -> int:
        """The thread count to run a batch of `tokens` real tokens with."""
        options = self.options()
        if len(options) == 1:
            return options[0]
        c = self._classes.setdefault(max(tokens, 1).bit_length(), _Class())
        c.batches += 1
        untried = [t for t in options if t not in c.cost]
        if untried:
            return untried[0]
        best = min(options, key=lambda t: c.cost[t])
        if c.batches % self.explore_every == 0:
            return next(t for t in options if t != best)
        return best

    def record(self, tokens: int, threads: int, seconds: float) -> None:
        if len(self.options()) == 1:
            return
        c = self._classes.setdefault(max(tokens, 1).bit_length(), _Class())
        per_token = seconds / max(tokens, 1)
        old = c.cost.get(threads)
        c.cost[threads] = per_token if old is None else (1 - ALPHA) * old + ALPHA * per_token
