"""An agent loop for LLMs that speak OpenAI-style function calling but not MCP.

    python examples/agents/function_calling_loop.py --server http://127.0.0.1:8080 \
        --llm-base-url https://api.openai.com/v1 --llm-model gpt-4o-mini "Which of these tickets are urgent? ..."

The tools come from `GET /v1/tools` (`openai_functions`), and each tool call the LLM makes is executed with
`POST /v1/tools/{name}`; the results go back to the LLM as tool messages. Needs an OpenAI-compatible LLM
endpoint (OPENAI_API_KEY); sie-mcp itself needs no key.
"""

from __future__ import annotations

import argparse
import json

import httpx


def run(question: str, server: str, llm_base_url: str, llm_model: str, max_turns: int = 6) -> str:
    from openai import OpenAI

    llm = OpenAI(base_url=llm_base_url)
    tools = httpx.get(f"{server}/v1/tools").json()["openai_functions"]
    messages = [{"role": "user", "content": question}]
    for _ in range(max_turns):
        reply = llm.chat.completions.create(model=llm_model, messages=messages, tools=tools).choices[0].message
        messages.append(reply.model_dump(exclude_none=True))
        if not reply.tool_calls:
            return reply.content or ""
        for call in reply.tool_calls:
            response = httpx.post(f"{server}/v1/tools/{call.function.name}",
                                  json=json.loads(call.function.arguments or "{}"), timeout=120)
            # Errors are returned to the LLM as text too: their messages say what to change.
            messages.append({"role": "tool", "tool_call_id": call.id, "content": response.text})
    return "(stopped after max_turns)"


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("question")
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--llm-base-url", default="https://api.openai.com/v1")
    ap.add_argument("--llm-model", default="gpt-4o-mini")
    args = ap.parse_args()
    print(run(args.question, args.server, args.llm_base_url, args.llm_model))
