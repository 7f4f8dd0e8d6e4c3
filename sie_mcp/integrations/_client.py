"""The one HTTP call the adapters make: POST /v1/tools/embed, in slices of the server's per-call limit."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
BATCH = 256  # texts per request: under the server's default --max-texts (512)


def _body(texts: Sequence[str], model: str | None, kind: str | None) -> dict:
    body: dict = {"texts": list(texts)}
    if model:
        body["model"] = model
    if kind:
        body["kind"] = kind
    return body


def _vectors(response: httpx.Response) -> list[list[float]]:
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        raise RuntimeError(f"sie-tools embed failed ({response.status_code}): {message}")
    return response.json()["embeddings"]


def embed(url: str, texts: Sequence[str], model: str | None = None, kind: str | None = None,
          timeout: float = 120.0, headers: dict[str, str] | None = None) -> list[list[float]]:
    out: list[list[float]] = []
    with httpx.Client(base_url=url, timeout=timeout, headers=headers) as client:
        for i in range(0, len(texts), BATCH):
            out += _vectors(client.post("/v1/tools/embed", json=_body(texts[i:i + BATCH], model, kind)))
    return out


async def aembed(url: str, texts: Sequence[str], model: str | None = None, kind: str | None = None,
                 timeout: float = 120.0, headers: dict[str, str] | None = None) -> list[list[float]]:
    out: list[list[float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as client:
        for i in range(0, len(texts), BATCH):
            out += _vectors(await client.post("/v1/tools/embed", json=_body(texts[i:i + BATCH], model, kind)))
    return out
