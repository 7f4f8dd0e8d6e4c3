"""engine/host_memory.py: the caps and collector settings the server applies at start-up (issue 17)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.host_memory import KERNEL_CACHE_VARIABLES, bound_kernel_caches

ROOT = Path(__file__).resolve().parent.parent

# bf16 linear layers over 800 token counts, as packed batches of varying size run them: RSS growth over the
# first 400 and over the next 400.
SHAPES = """
import json, sys
from engine.host_memory import bound_kernel_caches, trim_heap
bound_kernel_caches(int(sys.argv[1]))
import torch
torch.set_num_threads(1)
def rss():
    trim_heap()  # what stays is what is held, not freed pages
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
w = torch.randn(1536, 384, dtype=torch.bfloat16)
with torch.inference_mode():
    torch.nn.functional.linear(torch.randn(1, 384, dtype=torch.bfloat16), w)
    marks = [rss()]
    for m in range(100, 900):
        torch.nn.functional.linear(torch.randn(m, 384, dtype=torch.bfloat16), w)
        if m in (499, 899):
            marks.append(rss())
print(json.dumps([marks[1] - marks[0], marks[2] - marks[1]]))
"""


def _growth_mb(entries: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_CACHE_VARIABLES}
    out = subprocess.run([sys.executable, "-c", SHAPES, str(entries)], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_kernel_caches_bound_the_memory_of_varying_shapes():
    """Capped (the server's default, 64 entries), the caches fill within the first 400 new shapes and RSS
    stops growing; at the libraries' 1024 entries every shape's kernels stay (about 0.55 MB each where the
    CPU has fast bf16: +220 MB per 400 shapes here)."""
    (_, capped_later), (first, default_later) = _growth_mb(64), _growth_mb(0)
    assert capped_later < 10, f"RSS still grew {capped_later:.0f} MB per 400 shapes with the caches capped"
    assert capped_later < default_later / 4 or first < 40, (capped_later, default_later)


def test_kernel_cache_caps_yield_to_the_environment(monkeypatch):
    for name in KERNEL_CACHE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not bound_kernel_caches(0)  # 0: the libraries' defaults
    assert all(name not in os.environ for name in KERNEL_CACHE_VARIABLES)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "7")  # the operator's own setting wins
    assert bound_kernel_caches(64)
    assert os.environ["LRU_CACHE_CAPACITY"] == "7" and os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"
