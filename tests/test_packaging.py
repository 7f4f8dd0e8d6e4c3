"""A name of our own: the distribution, its console scripts and the MCP registry's server.json agree, and no
document tells a user to install PyPI's `sie-mcp` (another project with the same import name)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import jsonschema

REPO = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SERVER = json.loads((REPO / "server.json").read_text())


def test_server_json_follows_the_registry_schema_and_names_our_package():
    schema = json.loads((REPO / "tests" / "data" / "mcp-server-json.schema.json").read_text())
    jsonschema.validate(SERVER, schema, format_checker=jsonschema.FormatChecker())
    (package,) = SERVER["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == PYPROJECT["project"]["name"]
    assert package["version"] == SERVER["version"] == PYPROJECT["project"]["version"]
    assert package["transport"] == {"type": "stdio"}
    # The registry checks ownership of a PyPI package by this line in its README (the package description)
    assert f"mcp-name: {SERVER['name']}" in (REPO / "README.md").read_text()
    # uvx runs the console script named like the package, with the package arguments: `sie-agent-tools serve`
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts[package["identifier"]] == scripts["sie-tools"] == "sie_mcp.cli:main"
    assert [a["value"] for a in package["packageArguments"]] == ["serve"]


def test_the_registry_schema_refuses_what_the_registry_refuses():
    schema = json.loads((REPO / "tests" / "data" / "mcp-server-json.schema.json").read_text())
    for broken in ({**SERVER, "name": "no-slash"}, {**SERVER, "description": "x" * 101},
                   {**SERVER, "packages": [{**SERVER["packages"][0], "version": "latest"}]},
                   {**SERVER, "packages": [{**SERVER["packages"][0], "transport": {"type": "carrier-pigeon"}}]}):
        assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_our_distribution_name_is_not_the_other_projects():
    assert PYPROJECT["project"]["name"] == "sie-agent-tools"
    assert "sie-mcp" not in PYPROJECT["project"]["scripts"]


def test_no_document_installs_or_runs_the_other_project():
    """Every place a user installs or runs us names our distribution and command, never PyPI's sie-mcp."""
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    wrong = re.compile(r"pip install[^\n`]*\bsie-mcp\b(?![-_\w])|uvx sie-mcp\b|bin/sie-mcp\b|\bsie-mcp (serve|kg|models|"
                       r"embed|download|router)\b|sie-mcp\[")
    found = [f"{path}: {m.group(0)}" for path in tracked if not path.startswith("tests/test_packaging")
             and (REPO / path).is_file() and (REPO / path).suffix in {".md", ".sh", ".py", ".yaml", ".yml", ".json",
                                                                     ".toml", ".txt", ""}
             for m in wrong.finditer((REPO / path).read_text(errors="replace"))]
    assert not found, found
