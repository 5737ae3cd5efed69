"""Throughput under load: Candor's HTTP API against llama.cpp's own `llama-server`, same model.

Streams OpenAI chat completions (temperature 0.8, story requests sharing a system prompt, each
prompt new: no request repeats an earlier one) to each server from 1, 2,
4, 8 and 16 concurrent clients, each client sending its requests one after another, and prints
aggregate output tokens/s, requests/s and time to first token (median, p95) per level; the
single-client decode rate (output tokens after the first / time after the first); the time to
first token of a follow-up turn in a ~1,000-token conversation while 8 other clients stream; and
a multi-turn test (`--conversations`, 12 by default): people chatting at once, each reading an
answer for 0.5-3 s before the next turn, answers of 32-128 tokens, so that sequences end at
different steps and a follow-up is fast only if its conversation is still cached.

`llama-server` comes from `benchmarks/build_llama_server.sh` (llama.cpp's sources in the
llama-cpp-python source package the engine runs; same CPU flags); without it that column is
skipped with a note. Both servers get the same slots, context per slot, threads and flash
attention; both stay loaded and each level runs on one, then the other, for several rounds
(medians), so drift in the machine's speed hits both alike. Nothing else should run on the
machine (README, "Measured").

    .venv/bin/python benchmarks/concurrency.py [--levels 1,2,4,8,16] [--slots 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from candor.engine.llama import available_cores
from candor.engine.weights import ensure_weights
from candor.registry import load_registry

SYSTEM = "You are a helpful assistant. Answer clearly."
METRICS_KEY = "sk-concurrency-benchmark"  # an admin key for this run's /metrics only
TOPICS = ["a lighthouse keeper", "a lost kitten", "a city under the sea", "a clockmaker", "a dragon who hates fire",
          "a robot learning to paint", "two rival bakers", "a mountain village in winter", "a ship's cat",
          "a library that never closes", "an old violin", "a garden on the moon", "a detective who is a dog",
          "a train that runs backwards", "the last bookshop", "a friendly ghost"]
FILLER = ("The mill stood by the river, and every morning the miller counted the sacks of grain that the "
          "farmers brought from the valley. ")


_REQUESTS = itertools.count(1)


def story(i: int) -> list[dict]:
    """A story request no earlier request repeats: the number after the shared system prompt makes
    each prompt new to both servers. (With the same 16 prompts every round, llama-server's 16
    slots answered repeats from their cached prompts, 1 token to prefill, while Candor, keeping its
    running sequences in adjacent slots, had overwritten those caches: that measured the cache, not
    serving; README, "Concurrency".)"""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Story {next(_REQUESTS)}: write a short story about {TOPICS[i % len(TOPICS)]}."}]


FOLLOW_UPS = ["What happens next?", "Tell me more about the main character.", "How does it end?",
              "Give the story a title and explain it."]
ANSWER_LENGTHS = [32, 96, 64, 128]  # max_tokens per turn, varied so that sequences end at different steps


@dataclass
class Result:
    ttft: float
    total: float
    tokens: int


async def stream(client: httpx.AsyncClient, model: str, messages: list[dict], max_tokens: int) -> tuple[Result, str]:
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.8, "stream": True,
            "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    first = None
    chunks, usage, text = 0, None, []
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            data = json.loads(line[5:])
            if data.get("usage"):
                usage = data["usage"].get("completion_tokens")
            for choice in data.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    chunks += 1
                    text.append(piece)
                    first = first or time.perf_counter()
    end = time.perf_counter()
    return Result((first or end) - start, end - start, usage if usage is not None else chunks), "".join(text)


async def level(client: httpx.AsyncClient, model: str, clients: int, per_client: int, max_tokens: int) -> dict:
    async def one_client(c: int) -> list[Result]:
        return [(await stream(client, model, story(c * per_client + r), max_tokens))[0] for r in range(per_client)]

    start = time.perf_counter()
    results = [r for rs in await asyncio.gather(*(one_client(c) for c in range(clients))) for r in rs]
    wall = time.perf_counter() - start
    ttfts = sorted(r.ttft for r in results)
    decode = [(r.tokens - 1) / (r.total - r.ttft) for r in results if r.tokens > 1 and r.total > r.ttft]
    return {"tok_s": sum(r.tokens for r in results) / wall, "req_s": len(results) / wall,
            "ttft_median": statistics.median(ttfts), "ttft_p95": ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))],
            "decode": statistics.median(decode), "tokens": statistics.mean(r.tokens for r in results),
            "ttft_mean": statistics.mean(ttfts)}


async def conversations(client: httpx.AsyncClient, model: str, clients: int, turns: int) -> dict:
    """`clients` people in multi-turn chats at once: each sends a turn, reads the answer for a
    while (0.5-3 s, the same pauses for every server), then sends the next turn with the whole
    history. Answers vary in length, so sequences end at different steps and slots free up
    between the others; a follow-up finds its conversation cached only if its slot kept it."""
    async def one(c: int) -> list[tuple[int, Result]]:
        pauses = random.Random(c)
        history = [{"role": "system", "content": SYSTEM}]
        out = []
        for t in range(turns):
            ask = (f"Conversation {next(_REQUESTS)}: tell me a story about {TOPICS[c % len(TOPICS)]}." if t == 0
                   else FOLLOW_UPS[(t - 1) % len(FOLLOW_UPS)])
            history.append({"role": "user", "content": ask})
            result, answer = await stream(client, model, history, ANSWER_LENGTHS[(c + t) % len(ANSWER_LENGTHS)])
            out.append((t, result))
            history.append({"role": "assistant", "content": answer.strip() or "(no answer)"})
            await asyncio.sleep(pauses.uniform(0.5, 3.0))
        return out

    start = time.perf_counter()
    results = [r for rs in await asyncio.gather(*(one(c) for c in range(clients))) for r in rs]
    wall = time.perf_counter() - start
    firsts = sorted(r.ttft for t, r in results if t == 0)
    follows = sorted(r.ttft for t, r in results if t > 0)
    return {"tok_s": sum(r.tokens for _, r in results) / wall, "first_median": statistics.median(firsts),
            "follow_median": statistics.median(follows),
            "follow_p95": follows[min(len(follows) - 1, int(0.95 * len(follows)))]}


async def follow_up_under_load(client: httpx.AsyncClient, model: str, busy: int, max_tokens: int,
                               repeats: int) -> tuple[float, float]:
    """Median time to first token of a conversation's first turn and of its follow-up, while
    `busy` other clients stream stories without pause."""
    stop = asyncio.Event()

    async def busy_client(c: int) -> None:
        i = 0
        while not stop.is_set():
            await stream(client, model, story(100 + c * 50 + i), max_tokens)
            i += 1

    tasks = [asyncio.create_task(busy_client(c)) for c in range(busy)]
    await asyncio.sleep(2.0)
    firsts, follows = [], []
    try:
        for r in range(repeats):
            history = [{"role": "system", "content": SYSTEM}]
            for turn in range(4):
                history += [{"role": "user", "content": f"Part {r}.{turn}: tell me about the mill. " + FILLER * 2},
                            {"role": "assistant", "content": "The mill was busy. " + FILLER * 3}]
            history.append({"role": "user", "content": "Summarise the story so far in one sentence."})
            result, answer = await stream(client, model, history, 24)
            firsts.append(result.ttft)
            history += [{"role": "assistant", "content": answer},
                        {"role": "user", "content": "And what happens next?"}]
            result, _ = await stream(client, model, history, 8)
            follows.append(result.ttft)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return statistics.median(firsts), statistics.median(follows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(base: str, process: asyncio.subprocess.Process, path: str) -> None:
    deadline = time.time() + 300
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while time.time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError("server did not become ready")


class Server:
    """One server process under test, started before and stopped after all rounds."""

    def __init__(self, name: str, command: list[str], env: dict, port: int, metrics_key: str | None = None):
        self.name, self.command, self.env, self.port = name, command, env, port
        self.metrics_key = metrics_key  # Candor: read its forward-pass counters around each level
        self.base = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        self.process = await asyncio.create_subprocess_exec(*self.command, env={**os.environ, **self.env},
                                                            stdout=asyncio.subprocess.DEVNULL,
                                                            stderr=asyncio.subprocess.DEVNULL)
        await wait_ready(self.base, self.process, "/health")
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=30)
        except TimeoutError:
            self.process.kill()

    async def passes(self, client: httpx.AsyncClient) -> tuple[float, ...] | None:
        """Candor's /metrics totals of batched forward passes (calls, tokens, seconds, slot runs) and
        of its own time to first token on the chat endpoint (sum, count: from the start of the
        generation, after the request was read, checked and admitted, to the first token)."""
        if self.metrics_key is None:
            return None
        text = (await client.get("/metrics", headers={"x-api-key": self.metrics_key})).text
        found = {"ttft_sum": 0.0, "ttft_count": 0.0}
        for line in text.splitlines():
            for name in ("calls", "tokens", "seconds", "slot_runs"):
                if line.startswith(f"candor_engine_decode_{name}_total{{"):
                    found[name] = float(line.split()[-1])
            for part in ("sum", "count"):
                if line.startswith(f'candor_time_to_first_token_seconds_{part}{{endpoint="/v1/chat/completions"}}'):
                    found[f"ttft_{part}"] = float(line.split()[-1])
        return (found["calls"], found["tokens"], found["seconds"], found["slot_runs"], found["ttft_sum"],
                found["ttft_count"])

    def client(self) -> httpx.AsyncClient:
        # A new connection per request for both servers: llama-server's HTTP library closes a
        # kept-alive connection after a few requests, which a client would see as a dropped request.
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
        return httpx.AsyncClient(base_url=self.base, timeout=600, limits=limits)


def between(before: tuple[float, ...] | None, after: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """Candor's /metrics totals (`Server.passes`) accrued between two readings; None for a server
    without them, or when no forward pass ran."""
    if not before or not after or after[0] <= before[0]:
        return None
    return tuple(a - b for a, b in zip(after, before))


async def measure_all(servers: list[Server], model: str, args) -> dict[str, dict]:
    """Both servers stay loaded (an idle one takes no CPU); each level runs on one server, then on
    the other, for `--rounds` rounds, so drift in the machine's speed hits both alike."""
    runs: dict[str, dict[int, list[dict]]] = {s.name: {c: [] for c in args.levels} for s in servers}
    chats: dict[str, list[dict]] = {s.name: [] for s in servers}
    for server in servers:
        async with server.client() as client:
            await stream(client, model, story(0), 8)  # warm up
    for r in range(args.rounds):
        for clients in args.levels:
            for server in servers:
                async with server.client() as client:
                    before = await server.passes(client)
                    row = await level(client, model, clients, args.per_client, args.max_tokens)
                    after = await server.passes(client)
                runs[server.name][clients].append(row)
                inside = ""
                if (passed := between(before, after)) is not None:
                    calls, tokens, seconds, slot_runs, ttft_sum, ttft_count = passed
                    inside = (f"; inside: {tokens / calls:.1f} tokens, {slot_runs / calls:.2f} slot runs and "
                              f"{1000 * seconds / calls:.1f} ms per forward pass; TTFT mean {row['ttft_mean']:.3f} s "
                              f"at the client, {ttft_sum / max(1, ttft_count):.3f} s from the generation's start")
                print(f"  round {r + 1} {server.name:<12} {clients:>2} clients: {row['tok_s']:6.1f} tok/s, "
                      f"{row['req_s']:.2f} req/s, TTFT median {row['ttft_median']:.2f} s p95 {row['ttft_p95']:.2f} s, "
                      f"{row['tokens']:.0f} tokens/answer{inside}", flush=True)
        if args.conversations:
            for server in servers:
                async with server.client() as client:
                    before = await server.passes(client)
                    row = await conversations(client, model, args.conversations, args.turns)
                    after = await server.passes(client)
                chats[server.name].append(row)
                inside = ""
                if (passed := between(before, after)) is not None:
                    calls, tokens, _, slot_runs, _, _ = passed
                    inside = f"; inside: {tokens / calls:.1f} tokens and {slot_runs / calls:.2f} slot runs per forward pass"
                print(f"  round {r + 1} {server.name:<12} {args.conversations} conversations x {args.turns} turns: "
                      f"{row['tok_s']:6.1f} tok/s, first-turn TTFT median {row['first_median']:.2f} s, follow-up TTFT "
                      f"median {row['follow_median']:.2f} s p95 {row['follow_p95']:.2f} s{inside}", flush=True)
    results: dict[str, dict] = {}
    for server in servers:
        out: dict = {"levels": {c: {k: statistics.median(row[k] for row in rows) for k in rows[0]}
                                for c, rows in runs[server.name].items()}}
        if chats[server.name]:
            out["conversations"] = {k: statistics.median(row[k] for row in chats[server.name])
                                    for k in chats[server.name][0]}
        async with server.client() as client:
            out["follow_first"], out["follow_up"] = await follow_up_under_load(
                client, model, args.busy, args.max_tokens, args.follow_repeats)
        print(f"  {server.name:<12} follow-up with {args.busy} busy clients: first turn TTFT "
              f"{out['follow_first']:.2f} s, follow-up TTFT {out['follow_up']:.2f} s", flush=True)
        results[server.name] = out
    return results


def llama_server_binary(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("CANDOR_HOME") or "~/.candor").expanduser()
    path = home / "cache" / "llama-server-src" / "build" / "bin" / "llama-server"
    return path if path.is_file() else None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--slot-context", type=int, default=4096)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--per-client", type=int, default=2, help="requests each client sends in turn")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per level (medians reported)")
    parser.add_argument("--busy", type=int, default=8, help="streaming clients during the follow-up test")
    parser.add_argument("--follow-repeats", type=int, default=3)
    parser.add_argument("--llama-server", help="path of llama-server (default: the build script's output)")
    parser.add_argument("--only", choices=["candor", "llama-server"])
    parser.add_argument("--conversations", type=int, default=12,
                        help="people chatting at once in the multi-turn test (0: skip it)")
    parser.add_argument("--turns", type=int, default=4, help="turns per conversation in the multi-turn test")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",") if x]
    path = ensure_weights(load_registry().get("candor-instant"))
    threads = available_cores()
    print(f"model {path.name}; {threads} threads; {args.slots} slots x {args.slot_context} tokens; flash attention on; "
          f"answers up to {args.max_tokens} tokens at temperature 0.8; {args.per_client} requests per client, {args.rounds} interleaved rounds (medians)\n")
    servers: list[Server] = []
    if args.only != "llama-server":
        port = free_port()
        servers.append(Server("candor", [sys.executable, "-m", "candor", "serve", "--port", str(port), "--no-auth",
                                         "--api-key", METRICS_KEY],
                              {"CANDOR_SLOTS": str(args.slots), "CANDOR_SLOT_CONTEXT": str(args.slot_context)}, port,
                              metrics_key=METRICS_KEY))
    binary = llama_server_binary(args.llama_server)
    if args.only != "candor":
        if binary is None:
            print("  llama-server: not built (run benchmarks/build_llama_server.sh); column skipped")
        else:
            port = free_port()
            servers.append(Server("llama-server", [
                str(binary), "-m", str(path), "-np", str(args.slots), "-c", str(args.slot_context * args.slots),
                "-t", str(threads), "-tb", str(threads), "-fa", "on", "--port", str(port), "--host", "127.0.0.1",
                "--no-webui"], {}, port))
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            await stack.enter_async_context(server)
        results = await measure_all(servers, "candor-instant", args)
    report(results, args)


def report(results: dict[str, dict], args) -> None:
    names = list(results)
    print("\n| clients | " + " | ".join(f"{n} tok/s" for n in names)
          + (" | ratio" if len(names) == 2 else "") + " | " + " | ".join(f"{n} req/s" for n in names)
          + " | " + " | ".join(f"{n} TTFT median / p95" for n in names) + " |")
    print("|" + "---|" * (1 + 3 * len(names) + (len(names) == 2)))
    for clients in args.levels:
        rows = [results[n]["levels"][clients] for n in names]
        cells = [f"{r['tok_s']:.1f}" for r in rows]
        if len(rows) == 2:
            cells.append(f"{rows[0]['tok_s'] / rows[1]['tok_s']:.2f}")
        cells += [f"{r['req_s']:.2f}" for r in rows]
        cells += [f"{r['ttft_median']:.2f} / {r['ttft_p95']:.2f} s" for r in rows]
        print(f"| {clients} | " + " | ".join(cells) + " |")
    print()
    for n in names:
        if "conversations" in results[n]:
            c = results[n]["conversations"]
            print(f"{n}: {args.conversations} conversations x {args.turns} turns: follow-up TTFT median "
                  f"{c['follow_median']:.2f} s, p95 {c['follow_p95']:.2f} s; first turn {c['first_median']:.2f} s; "
                  f"{c['tok_s']:.1f} tok/s")
    for n in names:
        r = results[n]
        single = r["levels"].get(1)
        line = f"{n}: follow-up TTFT with {args.busy} busy clients {r['follow_up']:.2f} s (first turn {r['follow_first']:.2f} s)"
        if single:
            line += f"; single-client decode {single['decode']:.1f} tok/s"
        print(line)
    if "candor" in results and 8 in results["candor"]["levels"] and 1 in results["candor"]["levels"]:
        c = results["candor"]["levels"]
        print(f"candor at 8 clients / candor at 1 client: {c[8]['tok_s'] / c[1]['tok_s']:.2f}x")
        if "llama-server" in results:
            s = results["llama-server"]["levels"]
            print(f"candor / llama-server at 8 clients: {c[8]['tok_s'] / s[8]['tok_s']:.2f}x; "
                  f"single-client decode: {c[1]['decode'] / s[1]['decode']:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
