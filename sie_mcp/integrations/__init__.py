"""Client-side adapters for libraries people already use, pointing at a running sie-mcp over HTTP.

- `sie_mcp.integrations.chroma.SieEmbeddingFunction`: a Chroma `EmbeddingFunction`
- `sie_mcp.integrations.langchain.SieEmbeddings`: a LangChain `Embeddings`

Each imports its library on import (install it with `pip install 'sie-agent-tools[examples]'`); examples/agents/README.md.
"""
