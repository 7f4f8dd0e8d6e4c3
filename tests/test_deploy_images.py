"""The container images. `docker build` cannot run on the CI machines (no daemon, no registry access), so
the Dockerfiles are parsed and checked: multi-stage, pinned base images, a non-root user, the entrypoint,
the exposed port the chart uses, a healthcheck on /healthz, and the in-container settings."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from sie_mcp.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOCKERFILES = {"cpu": REPO / "docker" / "Dockerfile", "cuda": REPO / "docker" / "Dockerfile.cuda"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages(ins: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for i in ins:
        if i[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(i)
    return result


def args_defaults(ins) -> dict[str, str]:
    out = {}
    for word, rest in ins:
        if word == "ARG" and "=" in rest:
            k, _, v = rest.partition("=")
            out[k] = v.strip('"')
    return out


def env_of(stage) -> dict[str, str]:
    env = {}
    for word, rest in stage:
        if word == "ENV":
            for token in shlex.split(rest):
                k, _, v = token.partition("=")
                env[k] = v
    return env


@pytest.mark.parametrize("flavor", DOCKERFILES)
def test_dockerfile(flavor):
    ins = instructions(DOCKERFILES[flavor])
    defaults = args_defaults(ins)
    built = stages(ins)
    assert len(built) >= 2, "multi-stage: build tools stay out of the runtime image"
    froms = [s[0][1] for s in built]
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], f.split(" AS ")[0]) for f in froms]
    for base in bases:  # pinned tags, never :latest or untagged
        assert ":" in base and not base.endswith(":latest"), base
    expected = {"cpu": "python:3.11-slim", "cuda": "nvidia/cuda:12.8.1-cudnn-runtime"}[flavor]
    assert bases[-1].startswith(expected)
    runtime = built[-1]
    assert any(w == "COPY" and r.startswith("--from=build") for w, r in runtime), "the runtime copies the built venv"
    users = [r for w, r in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the server runs as a non-root user"
    words = [w for w, _ in runtime]
    assert words.index("USER") < words.index("ENTRYPOINT")
    assert json.loads(dict(runtime)["ENTRYPOINT"]) == ["sie-tools"]
    assert json.loads(dict(runtime)["CMD"]) == ["serve"]
    env = env_of(runtime)
    assert env["SIE_TRANSPORT"] == "http" and env["SIE_HOST"] == "0.0.0.0" and env["SIE_STATELESS_HTTP"] == "true"
    assert env["HF_HOME"] == "/models/hf" and env["SIE_DATA_DIR"] == "/data"
    assert json.loads(dict(runtime)["VOLUME"]) == ["/models", "/data"]
    (expose,) = [r for w, r in runtime if w == "EXPOSE"]
    chart = yaml.safe_load((REPO / "charts" / "sie-mcp" / "values.yaml").read_text())
    assert int(expose) == int(env["SIE_PORT"]) == chart["server"]["port"] == Settings.model_validate({}).port
    (health,) = [r for w, r in runtime if w == "HEALTHCHECK"]
    assert "http://127.0.0.1:8080/healthz" in health and "--start-period" in health
    # The embedded default model is checked (and extra models baked into HF_HOME) at build time.
    runs = [r for w, r in runtime if w == "RUN"]
    assert any(r.startswith("sie-tools download all-MiniLM-L6-v2") for r in runs)
    if flavor == "cuda":
        assert env["SIE_DEVICE"] == "cuda"


def test_env_variables_the_images_set_are_settings():
    """Every SIE_* variable an image sets is a setting the server reads (SIE_DATA_DIR arrives with the
    data-directory work; until then the server ignores it)."""
    known = {f"SIE_{n.upper()}" for n in Settings.model_fields} | {"SIE_DATA_DIR"}
    for path in DOCKERFILES.values():
        env = env_of(stages(instructions(path))[-1])
        assert {k for k in env if k.startswith("SIE_")} <= known
