"""What the HTTP layer adds: the same prompts through `candor serve` and through the engine in-process.

    .venv/bin/python benchmarks/gateway.py [--prompts 8] [--max-tokens 16]

Prints median time to first token and total latency both ways and the difference (goal: under
5 ms added), then requests/s and output tokens/s with 1, 4 and 16 concurrent streaming clients
(the embedded engine runs one generation at a time, so concurrency shows queueing, not batching).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time

import httpx

from candor.chat import Message
from candor.chat.service import ChatParams, stream_chat
from candor.engine.base import TextDelta
from candor.engine.hub import EngineHub
from candor.registry import load_registry

TOPICS = ["rivers", "bread", "the moon", "chess", "bees", "winter", "trains", "libraries", "tea", "volcanoes",
          "owls", "maps", "glass", "rain", "bridges", "salt"]


def prompts(n: int) -> list[str]:
    return [f"Write two sentences about {TOPICS[i % len(TOPICS)]}." for i in range(n)]


async def in_process(hub: EngineHub, text: str, max_tokens: int) -> tuple[float, float]:
    model = await hub.get("candor-instant")
    start, first = time.perf_counter(), None
    async for event in stream_chat(model, [Message("user", text)], None, ChatParams(max_tokens, temperature=0)):
        if isinstance(event, TextDelta) and first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return (first or end) - start, end - start


async def over_http(client: httpx.AsyncClient, text: str, max_tokens: int) -> tuple[float, float, int]:
    body = {"model": "candor-instant", "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": text}]}
    start, first, out = time.perf_counter(), None, 0
    async with client.stream("POST", "/v1/messages", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:") and '"text_delta"' in line and first is None:
                first = time.perf_counter()
            if line.startswith("data:") and '"message_delta"' in line:
                out = int(line.split('"output_tokens":')[1].split("}")[0].split(",")[0])
    end = time.perf_counter()
    return (first or end) - start, end - start, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    texts = prompts(args.prompts)

    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "candor", "serve", "--port", str(port), "--no-auth",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=os.environ.copy())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for _ in range(600):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            await over_http(client, "warm up", 2)
            http_runs = [await over_http(client, t, args.max_tokens) for t in texts]
            concurrency = {}
            for clients in (1, 4, 16):
                batch = [texts[i % len(texts)] for i in range(clients * 2)]
                sem = asyncio.Semaphore(clients)

                async def one(t, sem=sem):
                    async with sem:
                        return await over_http(client, t, args.max_tokens)

                start = time.perf_counter()
                results = await asyncio.gather(*(one(t) for t in batch))
                elapsed = time.perf_counter() - start
                concurrency[clients] = (len(batch) / elapsed, sum(r[2] for r in results) / elapsed,
                                        statistics.median(r[0] for r in results))
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)

    hub = EngineHub(load_registry())
    await in_process(hub, "warm up", 2)
    local_runs = [await in_process(hub, t, args.max_tokens) for t in texts]
    await hub.close()

    ttft_http, ttft_local = statistics.median(r[0] for r in http_runs), statistics.median(r[0] for r in local_runs)
    tot_http, tot_local = statistics.median(r[1] for r in http_runs), statistics.median(r[1] for r in local_runs)
    print(f"{len(texts)} prompts, max_tokens={args.max_tokens}, temperature 0, candor-instant")
    print(f"{'':<22}{'in-process':>12}{'HTTP':>10}{'added':>10}")
    print(f"{'time to first token':<22}{ttft_local * 1000:>10.1f}ms{ttft_http * 1000:>8.1f}ms"
          f"{(ttft_http - ttft_local) * 1000:>8.1f}ms")
    print(f"{'total latency':<22}{tot_local * 1000:>10.1f}ms{tot_http * 1000:>8.1f}ms"
          f"{(tot_http - tot_local) * 1000:>8.1f}ms")
    print(f"\n{'clients':<10}{'requests/s':>12}{'output tok/s':>14}{'median TTFT':>14}")
    for clients, (rps, tps, ttft) in concurrency.items():
        print(f"{clients:<10}{rps:>12.2f}{tps:>14.1f}{ttft:>12.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
