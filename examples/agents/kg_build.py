"""Build a knowledge graph of a folder and print how to look at it: a thin wrapper over `sie-tools kg build`.

    python examples/agents/kg_build.py tests/data/kg_corpus out/kg                 # in-process
    python examples/agents/kg_build.py tests/data/kg_corpus out/kg --server http://127.0.0.1:8080
    python examples/agents/kg_build.py docs/ out/kg --labels person organization place

Writes out/kg/graph.html (open it in a browser: offline, self-contained), graph.json (node-link JSON,
re-importable with ontology.graph.KnowledgeGraph.from_json), graph.graphml, graph.ttl and graph.jsonld.
With --server the graph also stays on the server: an agent navigates it with graph_search,
graph_neighbors, graph_path and graph_subgraph (the id is printed).
"""

from __future__ import annotations

import sys

from sie_mcp.cli import main

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    folder, out, *rest = sys.argv[1:]
    code = main(["kg", "build", folder, "--out", out, *rest])
    if code == 0:
        print(f"open {out}/graph.html in a browser to explore the graph")
    sys.exit(code)
