"""The server one writes by hand: FastAPI + sentence-transformers (a peer in bench/bench_peers.py).

    python bench/peer_st_server.py MODEL_DIR PORT [float32|bfloat16]

POST /embed {"texts": [...]} -> {"embeddings": [[...], ...]}; `model.encode` in FastAPI's threadpool
(a plain `def` endpoint), one call per request, no batching across requests.
"""

from __future__ import annotations

import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model_dir, port = sys.argv[1], int(sys.argv[2])
dtype = torch.bfloat16 if len(sys.argv) > 3 and sys.argv[3] == "bfloat16" else torch.float32
model = SentenceTransformer(model_dir, device="cpu").to(dtype)
app = FastAPI()


class EmbedRequest(BaseModel):
    texts: list[str]


@app.post("/embed")
def embed(req: EmbedRequest) -> dict:
    vectors = model.encode(req.texts, batch_size=32, convert_to_tensor=True).float()
    return {"embeddings": vectors.tolist()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
