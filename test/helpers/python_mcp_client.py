"""The official Python MCP SDK as a user would run it: rerank, then feedback by rerank_id.

Usage: python python_mcp_client.py URL; prints one JSON line {top, stored}. Used by
test/replicas.test.ts through a round-robin balancer (each request may hit another replica).
"""
import asyncio
import json
import sys

from mcp import ClientSession

try:
    from mcp.client.streamable_http import streamablehttp_client as connect
except ImportError:  # renamed in later SDK versions
    from mcp.client.streamable_http import streamable_http_client as connect


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent")


async def main(url: str) -> None:
    async with connect(url) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            ranked = structured(await session.call_tool("rerank", {"query": "hybrid search", "documents": ["def hybrid_search(q): ...", "the weather", "bm25"]}))
            labeled = structured(await session.call_tool("feedback", {"rerank_id": ranked["rerank_id"], "relevant": [0]}))
            print(json.dumps({"top": ranked["results"][0]["index"], "stored": labeled["stored"]}))


asyncio.run(main(sys.argv[1]))
