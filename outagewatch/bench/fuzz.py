"""`outagewatch bench fuzz [--bodies N]`: generated and mutated bodies against a real collector over HTTP.

The collector runs as ``outagewatch collect`` in a child process, producing
to a topic of its own (deleted afterwards); ``connections`` keep-alive
connections each send their own seeded stream of ``fuzz_bodies.Bodies``
(one body in ten to ``POST /v1/metrics``, the rest to ``/v1/reports``).
The figures: bodies sent, answers by status (and by family and status),
answers of 500 or more (must be 0: every body is a 4xx with a reason, or a
202 saying what was wrong with each report), 4xx answers without a reason,
202s that are not the documented JSON, whether the collector still answers
``/healthz`` and is still running afterwards, tracebacks in its log, and
bodies per second. Connection errors are counted apart: the collector may
close a connection after refusing a body it did not read (413).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from core.config import Settings
from core.kafka_admin import ensure_topics
from outagewatch.bench.fuzz_bodies import Bodies
from outagewatch.pipeline.collector import CollectorProcess
from outagewatch.stack.process import free_port

SAMPLES_KEPT = 10


async def _campaign(url: str, api_key: str, bodies: int, seed: int, connections: int, max_body_bytes: int,
                    max_items: int) -> dict[str, Any]:
    import aiohttp

    statuses: Counter[str] = Counter()
    by_family: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    server_errors: list[dict[str, Any]] = []
    faults = {"connection_errors": 0, "answers_4xx_without_reason": 0, "answers_202_malformed": 0}
    share, extra = divmod(bodies, connections)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one_connection(index: int) -> None:
            stream = Bodies(seed * 1000 + index, max_body_bytes=max_body_bytes, max_items=max_items)
            for number in range(share + (1 if index < extra else 0)):
                fuzz = stream.next()
                headers = {"Authorization": f"Bearer {api_key}", **fuzz.headers}
                skip = [] if "Content-Type" in fuzz.headers else ["Content-Type"]
                # One body in ten goes to /v1/metrics: the same envelope, size and item decoding, other items.
                path = "/v1/metrics" if number % 10 == 9 else "/v1/reports"
                paths[path] += 1
                try:
                    async with session.post(f"{url}{path}", data=fuzz.body, headers=headers,
                                            skip_auto_headers=skip) as answer:
                        status, payload = answer.status, await answer.read()
                except (aiohttp.ClientError, TimeoutError):
                    faults["connection_errors"] += 1
                    continue
                statuses[str(status)] += 1
                by_family[f"{fuzz.family}:{status}"] += 1
                if status >= 500:
                    if len(server_errors) < SAMPLES_KEPT:
                        server_errors.append({"family": fuzz.family, "status": status, "headers": fuzz.headers,
                                              "body": repr(fuzz.body[:300]), "answer": payload[:300].decode("utf-8", "replace")})
                    continue
                try:
                    parsed = json.loads(payload)
                except ValueError:
                    parsed = None
                if 400 <= status < 500 and not (isinstance(parsed, dict) and parsed.get("error")):
                    faults["answers_4xx_without_reason"] += 1
                if status == 202 and not (isinstance(parsed, dict) and {"accepted", "rejected", "errors"} <= set(parsed)):
                    faults["answers_202_malformed"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_connection(index) for index in range(connections)))
        elapsed = time.perf_counter() - started
        try:
            async with session.get(f"{url}/healthz") as health:
                serving = health.status == 200
        except (aiohttp.ClientError, TimeoutError):
            serving = False
    sent = sum(statuses.values()) + faults["connection_errors"]
    return {
        "bodies_sent": sent, "bodies_by_path": dict(sorted(paths.items())), "seed": seed,
        "connections": connections, "seconds": round(elapsed, 1),
        "bodies_per_s": round(sent / elapsed) if elapsed > 0 else 0,
        "answers_by_status": dict(sorted(statuses.items())),
        "answers_500_or_more": sum(count for status, count in statuses.items() if int(status) >= 500),
        **faults, "collector_still_serving": serving,
        "answers_by_family": dict(sorted(by_family.items())), "server_error_samples": server_errors,
    }


def campaign(url: str, api_key: str, bodies: int, seed: int = 0, connections: int = 24,
             max_body_bytes: int = 1 << 20, max_items: int = 5000) -> dict[str, Any]:
    """Send ``bodies`` fuzz bodies to the collector at ``url`` (blocking) and count its answers."""
    return asyncio.run(_campaign(url, api_key, bodies, seed, connections, max_body_bytes, max_items))


def run(settings: Settings, quick: bool = False, bodies: int | None = None, seed: int | None = None,
        connections: int | None = None, **_: Any) -> list[dict[str, Any]]:
    bodies = bodies if bodies is not None else (2_000 if quick else 100_000)
    bootstrap = settings.kafka.bootstrap
    topic = f"bench-fuzz-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 1})
    secret = secrets.token_urlsafe(12)
    env = {
        "OUTAGEWATCH_TOPICS_CLIENT_REPORTS": topic, "OUTAGEWATCH_TOPICS_SERVER_METRICS": topic,
        "OUTAGEWATCH_COLLECTOR_API_KEYS": f"fuzz:{secret}:reports+metrics",
        # Limits are not what is fuzzed: every body must reach the decoder.
        "OUTAGEWATCH_COLLECTOR_RATE_PER_SECOND": "100000000", "OUTAGEWATCH_COLLECTOR_RATE_BURST": "100000000",
        "OUTAGEWATCH_COLLECTOR_SOURCE_RATE_PER_SECOND": "100000000",
        "OUTAGEWATCH_COLLECTOR_SOURCE_RATE_BURST": "100000000",
        # Kafka's acknowledgement, not a 20 ms linger, paces the accepted bodies.
        "OUTAGEWATCH_COLLECTOR_COALESCE_MS": "1",
    }
    log_path = Path(tempfile.mkdtemp(prefix="outagewatch-fuzz-")) / "collector.log"
    try:
        with CollectorProcess(free_port(), env=env, log_path=str(log_path)) as collector:
            result = campaign(collector.url, secret, bodies, seed=seed or 0, connections=connections or 24,
                              max_body_bytes=settings.collector.max_body_bytes,
                              max_items=settings.collector.max_batch_items)
            result["collector_running_after"] = collector.process is not None and collector.process.poll() is None
        text = log_path.read_text(errors="replace")
        result["collector_log_tracebacks"] = text.count("Traceback")
        result["collector_log"] = str(log_path)
    finally:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
    return [{"benchmark": "fuzz", "quick": quick, "cpus": os.cpu_count(),
             "loadavg_1m": round(os.getloadavg()[0], 2), **result}]
