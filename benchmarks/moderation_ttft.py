"""What moderation costs the person waiting: time to first token of one server, with moderation off, on
requests only, and on requests and answers, alternating request by request.

    .venv/bin/python benchmarks/moderation_ttft.py [--rounds 8] [--max-tokens 64] [--model candor-instant]

The input check's own latency (benchmarks/moderation.py) is one part of what a user waits for; this
measures the whole: one `candor serve` (a temporary CANDOR_HOME, `CANDOR_MODERATION=block`) with three
users whose policy modes differ (policy file: the shipped one plus per-user overrides), each with its
own key, sending the same 200-word-piece request (the benchmark's bakery plan,
candor.moderation.latency.PROMPT_200) through the official `anthropic` SDK, streamed. Each request
starts with its own number so no request reuses another's prompt cache (or the moderator's cache of
recent scores). Time to first token is measured at the client, from sending to the first text delta;
with answers moderated, text is released only after the check that covers it, so the first delta
waits for the first check (`first_check_chars`, then twice that...; candor.moderation.policy.Policy.next_check).
The same run then starts a second server whose policy checks answers on the plain schedule only (the first
check at `check_every_chars`, as before the early checks), so the two schedules are compared in one run.
Prints the median of each mode and the difference from moderation off, and the median rate after the first
token (output tokens after the first over the time from it to the end: what checking the growing answer costs
the rest of it); run it alone (the machine has 2 cores).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from candor.moderation.latency import PROMPT_200
from candor.moderation.policy import POLICY_FILE

MODES = {"off": ("off", "off"), "requests": ("block", "off"), "both": ("block", "block")}


def candor(home: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "candor", *args], env={**os.environ, "CANDOR_HOME": str(home)},
                         check=True, capture_output=True, text=True)
    return out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"candor serve exited with {server.returncode}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("candor serve did not become ready")


def first_token_s(client, model: str, text: str, max_tokens: int) -> tuple[float, float, int, str]:
    """(seconds to the first text delta, seconds to the end, output tokens, stop reason) of one streamed request."""
    start = time.perf_counter()
    first = None
    with client.messages.stream(model=model, max_tokens=max_tokens, messages=[{"role": "user", "content": text}]) as s:
        for event in s:
            if first is None and event.type == "content_block_delta" and getattr(event.delta, "text", ""):
                first = time.perf_counter() - start
        final = s.get_final_message()
    end = time.perf_counter() - start
    return (first if first is not None else end), end, final.usage.output_tokens, str(final.stop_reason)


def one_server(args, schedule: str) -> dict[str, list[float]]:
    """Times to first token per mode, from a server of its own whose policy checks answers on `schedule`
    ("early": the shipped policy; "plain": the first check at `check_every_chars`)."""
    import anthropic

    home = Path(tempfile.mkdtemp(prefix="candor-ttft-"))
    policy = home / "policy.toml"
    text = POLICY_FILE.read_text(encoding="utf-8")
    if schedule == "plain":
        text = re.sub(r"(?m)^first_check_chars = \d+", "first_check_chars = 120", text)
    policy.write_text(text + "".join(
        f'\n[users."{name}"]\ninput = "{i}"\noutput = "{o}"\n' for name, (i, o) in MODES.items()), encoding="utf-8")
    keys = {}
    for name in MODES:
        candor(home, "users", "create", name)
        keys[name] = re.findall(r"^sk-candor-\S+$", candor(home, "keys", "create", "--user", name), re.MULTILINE)[-1]
    port = free_port()
    env = {**os.environ, "CANDOR_HOME": str(home), "CANDOR_MODERATION": "block",
           "CANDOR_MODERATION_POLICY": str(policy)}
    server = subprocess.Popen([sys.executable, "-m", "candor", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server)
        clients = {name: anthropic.Anthropic(api_key=key, base_url=base, max_retries=0) for name, key in keys.items()}
        for name, client in clients.items():  # warm-up: model and classifier loaded, each path run once
            first_token_s(client, args.model, f"Warm-up {name}. " + PROMPT_200, args.max_tokens)
        times: dict[str, list[float]] = {name: [] for name in MODES}
        rates: dict[str, list[float]] = {name: [] for name in MODES}  # tokens a second after the first
        stops: dict[str, set[str]] = {name: set() for name in MODES}
        n = 0
        for r in range(args.rounds):
            order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
            for name in order:
                n += 1
                seconds, end, tokens, stop = first_token_s(clients[name], args.model, f"Request {n}. " + PROMPT_200,
                                                           args.max_tokens)
                times[name].append(seconds)
                if end > seconds and tokens > 1:
                    rates[name].append((tokens - 1) / (end - seconds))
                stops[name].add(stop)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{schedule} output checks: {args.model}, {args.rounds} rounds, max_tokens {args.max_tokens}, "
              f"load average {load}")
        off = statistics.median(times["off"])
        for name in MODES:
            med = statistics.median(times[name])
            print(f"  moderation {name:9s} time to first token median {med * 1000:7.0f} ms "
                  f"(+{(med - off) * 1000:4.0f} ms, {med / off:.2f}x off; min {min(times[name]) * 1000:.0f}, "
                  f"max {max(times[name]) * 1000:.0f}; stop reasons {sorted(stops[name])}); after it "
                  f"{statistics.median(rates[name]) if rates[name] else float('nan'):.1f} tokens/s")
        return times
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default="candor-instant")
    args = parser.parse_args()
    early = one_server(args, "early")
    plain = one_server(args, "plain")
    both = statistics.median(early["both"]) - statistics.median(early["off"])
    before = statistics.median(plain["both"]) - statistics.median(plain["off"])
    print(f"requests and answers moderated: +{both * 1000:.0f} ms with early checks, +{before * 1000:.0f} ms on the "
          f"plain schedule ({before / both:.1f}x the added wait)" if both > 0 else "")


if __name__ == "__main__":
    main()
