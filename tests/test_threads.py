"""ThreadChooser: the intra-op thread count per CPU batch follows measured speed (engine/threads.py)."""

from __future__ import annotations

import torch

from engine.threads import ThreadChooser


def test_tries_both_then_runs_the_faster_and_keeps_checking_the_other():
    c = ThreadChooser(max_threads=2, explore_every=4)
    first = c.pick(100)
    c.record(100, first, 1.0)
    second = c.pick(100)
    assert {first, second} == {1, 2}
    c.record(100, second, 0.1 if second == 1 else 10.0)  # one thread measured 10x faster
    picks = [c.pick(100) for _ in range(8)]
    assert picks.count(1) == 6 and picks.count(2) == 2  # every 4th batch of the class retries the other


def test_a_change_of_load_flips_the_choice():
    c = ThreadChooser(max_threads=2, explore_every=8)
    c.record(100, 1, 1.0)
    c.record(100, 2, 2.0)  # loaded: one thread faster
    assert c.pick(100) == 1
    for _ in range(10):  # the machine went quiet: the full team is now faster
        c.record(100, 2, 0.2)
    assert [c.pick(100) for _ in range(4)] == [2, 2, 2, 2]


def test_size_classes_are_measured_apart():
    c = ThreadChooser(max_threads=2)
    for t, s in ((1, 1.0), (2, 5.0)):
        c.record(10, t, s)  # small batches: one thread faster
    for t, s in ((1, 5.0), (2, 1.0)):
        c.record(5000, t, s)  # large batches: the team faster
    assert c.pick(10) == 1 and c.pick(5000) == 2


def test_one_thread_configured_means_no_choice():
    c = ThreadChooser(max_threads=1)
    assert {c.pick(n) for n in (1, 100, 10_000)} == {1}
    c.record(100, 1, 1.0)  # nothing to measure, nothing kept
    assert c.pick(100) == 1


def test_the_device_thread_runs_batches_with_the_chosen_count(minilm_dir):
    """The scheduler sets the count on the device thread before each batch and records its time."""
    from engine.offline import OfflineModel

    m = OfflineModel(minilm_dir)
    chooser = m.engine.scheduler._threads
    assert chooser is not None and chooser.max_threads == torch.get_num_threads()
    seen = []
    original = m.engine.scheduler._compute

    def compute(model, encoded):
        seen.append(torch.get_num_threads())
        return original(model, encoded)

    m.engine.scheduler._compute = compute
    for _ in range(3):
        m.embed(["one short text"])
    assert set(seen) <= {1, chooser.max_threads}
    if chooser.max_threads > 1:
        assert set(seen[:2]) == {1, chooser.max_threads}  # both tried first
