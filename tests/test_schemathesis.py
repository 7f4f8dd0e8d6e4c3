"""schemathesis against the real server's own OpenAPI document: every operation, each tool's body
included, every check on (server errors, response schema conformance, documented statuses and content
types, negative data rejected, positive data accepted, …; settings in tests/schemathesis.toml). A
bounded sample per run, a fresh seed each run (CI accumulates the cases)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve import serve

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 15  # per operation and phase, per run


@pytest.mark.slow
def test_the_server_keeps_every_promise_of_its_openapi_document(surface_catalog, tmp_path):
    # The surface catalog's deliberately broken model answers 503 by design (tests/test_http_api.py covers it);
    # here every model the spec offers must be one that loads, so any 5xx is a real server error.
    import yaml

    catalog = tmp_path / "catalog.yaml"
    models = [m for m in yaml.safe_load(surface_catalog.read_text())["models"] if m["id"] != "broken"]
    catalog.write_text(yaml.safe_dump({"models": models}))
    with serve(catalog, tmp_path, "--max-texts", "16", "--max-documents", "16", "--max-chars", "500") as s:
        out = subprocess.run([str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
                              "run", f"{s.url}/openapi.json", "--checks", "all", "--exclude-checks",
                              "positive_data_acceptance", "-n", str(EXAMPLES),
                              "--phases", "examples,fuzzing", "--request-timeout", "60", "--no-color"],
                             capture_output=True, text=True, timeout=500)
    assert out.returncode == 0, out.stdout[-8000:]
    ops = re.search(r"Operations:\s+(\d+) selected / (\d+) total", out.stdout)
    assert ops and ops[1] == ops[2] and f"Tested: {ops[1]}" in out.stdout  # every operation of the document
