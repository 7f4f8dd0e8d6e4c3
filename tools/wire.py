"""Numbers as they go out in results (MCP and HTTP alike).

Vectors are float32 inside the engine. `tensor.tolist()` widens each value to a Python float whose
shortest decimal form is the float64 one (`0.02594560571014881`); every serializer downstream (pydantic,
the SDK's json.dumps, the OpenAI route) then writes 17 significant digits that carry no information.
`float32_values` returns Python floats that are the *float32* shortest decimals (`0.025945606`): the same
float32 values bit for bit when read back as float32, about 40 % fewer bytes per vector, and less time
spent formatting them on the event loop (docs/benchmarks.md, issue 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import torch


def float32_values(values: torch.Tensor | np.ndarray | Sequence[float]) -> list[Any]:
    """Nested lists of Python floats (same shape), each the shortest decimal of its float32 value."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    array = np.ascontiguousarray(values, dtype=np.float32)
    # orjson formats float32 with the shortest round-trip repr (ryu); reading it back gives those decimals.
    return orjson.loads(orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY))
