"""Paced sending: a broadcast through the local stack at a configured rate, judged by the fake."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.paced_worker import recipients
from bench.proc import ROOT, median
from bench.report import table
from bench.stack import Stack

TARGET_SHARE = 0.90
LATENCY = 0.050


def _run_worker(stack: Stack, config: dict[str, Any], rate: float) -> dict[str, Any]:
    """One app-side process; returns its result with its own CPU (wait4) added."""
    env = stack.env("switchboard", SWITCHBOARD_SEND_RATE=str(rate))
    with tempfile.TemporaryDirectory(prefix="bench-paced-") as tmp:
        path, result = Path(tmp, "config.json"), Path(tmp, "result.json")
        path.write_text(json.dumps({**config, "result": str(result)}))
        with open(Path(tmp, "stderr"), "w+") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.paced_worker", str(path)],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the app's JSON log lines
                stderr=stderr,
            )
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            proc.returncode = os.waitstatus_to_exitcode(status)
            stderr.seek(0)
            errors = stderr.read()
        if proc.returncode != 0:
            raise RuntimeError(f"paced worker exited {proc.returncode}:\n{errors[-4000:]}")
        data = json.loads(result.read_text())
    data["cpu"] = usage.ru_utime + usage.ru_stime
    return data


def run_once(stack: Stack, *, count: int, rate: float, tick: float) -> dict[str, Any]:
    """One broadcast of count messages at rate; the figures from the fake Twilio's own log."""
    stack.reset(latency=LATENCY)
    before = stack.cpu()
    # Long enough for the emulators' own pace (a few messages a second at worst): a run that
    # stalls still ends, and reports what it got.
    timeout = count / min(rate, 5.0) + 180
    worker = _run_worker(
        stack, {"count": count, "tick": tick, "pollers": 2, "timeout": timeout}, rate
    )
    after = stack.cpu()
    log = stack.twilio_requests()
    creates = [r for r in log if r["method"] == "POST" and r["path"].endswith("/Messages.json")]
    accepted = sorted((r for r in creates if r["status"] == 201), key=lambda r: r["at"])
    sent_to = Counter(dict(r["params"]).get("To") for r in accepted)
    wanted = set(recipients(count))
    first, last = (accepted[0]["at"], accepted[-1]["at"]) if accepted else (0.0, 0.0)
    achieved = len(accepted) / (last - first) if last > first else float("nan")
    elapsed = worker["finished"] - worker["started"]
    return {
        "accepted": len(accepted),
        "refused": len(creates) - len(accepted),
        "achieved": achieved,
        "share": achieved / rate,
        "drain": last - worker["started"],
        "create": worker["created"] - worker["started"],
        "duplicates": sum(n - 1 for n in sent_to.values() if n > 1),
        "losses": len(wanted - set(sent_to)),
        "strangers": len(set(sent_to) - wanted),
        "timed_out": worker["timed_out"],
        "poll_errors": worker["poll_errors"],
        "cpu": {
            "app": worker["cpu"],
            "moto": after["moto"] - before["moto"],
            "twilio": after["twilio"] - before["twilio"],
        },
        "elapsed": elapsed,
    }


def measure(
    stack: Stack, *, count: int, rates: list[float], runs: int, tick: float, calls: int
) -> dict[str, Any]:
    """Every rate runs times; medians of the rates and times, worst case of the counts."""
    results: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for _ in range(runs):
        for rate in rates:
            results[rate].append(run_once(stack, count=count, rate=rate, tick=tick))
    # Twice: moto's cost per call grows with what the table and the queue hold.
    small = min(100, count)
    costs = {
        size: operation_costs(stack, items=size, calls=calls) for size in sorted({small, count})
    }
    return {
        "count": count,
        "runs": runs,
        "tick": tick,
        "results": dict(results),
        "costs": costs,
        "op_calls": calls,
    }


def operation_costs(stack: Stack, *, items: int, calls: int) -> list[tuple[str, float, float]]:
    """CPU per call of the operations a send is made of: (name, moto ms, client ms).

    Against a table holding items messages and a queue filled with items messages, as during
    the broadcast; the client side is this process: the app's own botocore clients
    (chalicelib.aws.clients) for what the app calls, boto3 for the receive (which Lambda's event
    source does).
    """
    from bench.stack import QUEUE, TABLE
    from chalicelib.aws import queue
    from chalicelib.aws.storage import BY_STATE, ConditionFailedError, Table
    from chalicelib.messaging import messages

    stack.reset()
    table = Table(TABLE)
    records = [
        messages.new_record(
            f"cost-{i:05d}",
            to=number,
            sender="+15005550006",
            body="Paced",
            media_urls=[],
            status="scheduled",
            send_at=1.0,
            status_callback=None,
            retention_days=90,
        )
        for i, number in enumerate(recipients(items))
    ]
    table.put_many(records)
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    sqs_app = queue.get_client()

    def claim(i: int) -> None:
        with contextlib.suppress(ConditionFailedError):  # moved already: the failed check
            messages.move(table, f"cost-{i % items:05d}", "queued", sources=("scheduled",))

    def send_batch(i: int) -> None:
        entries = [{"Id": str(n), "MessageBody": "{}"} for n in range(10)]
        sqs_app.send_message_batch(QueueUrl=url, Entries=entries)

    def receive_and_delete(i: int) -> None:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if got:
            handles = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=handles)

    operations = [
        ("DynamoDB GetItem (consistent)", lambda i: table.get(f"cost-{i % items:05d}")),
        ("DynamoDB conditional UpdateItem (a state move)", claim),
        (
            "DynamoDB Query by-state, 10 due (the dispatcher's)",
            lambda i: table.query(
                BY_STATE, "state", "scheduled", sort_key="state_at", upper=2.0, limit=10
            ),
        ),
        # As many batches as fill the queue with items messages, for the receives after it.
        ("SQS SendMessageBatch of 10", send_batch, max(calls, items // 10)),
        ("SQS ReceiveMessage of 10 + DeleteMessageBatch", receive_and_delete),
    ]
    costs = []
    for name, operation, *times in operations:
        count = times[0] if times else calls
        before, client = stack.cpu()["moto"], time.process_time()
        for i in range(count):
            operation(i)
        client = time.process_time() - client
        costs.append((name, (stack.cpu()["moto"] - before) / count * 1000, client / count * 1000))
    return costs


def _summary(rate: float, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return median(r[key] for r in runs)

    cpu = {k: median(r["cpu"][k] for r in runs) for k in ("app", "moto", "twilio")}
    return {
        "achieved": med("achieved"),
        "share": med("share"),
        "drain": med("drain"),
        "create": med("create"),
        "elapsed": med("elapsed"),
        "duplicates": max(r["duplicates"] for r in runs),
        "losses": max(r["losses"] + r["strangers"] for r in runs),
        "refused": max(r["refused"] for r in runs),
        "timed_out": any(r["timed_out"] for r in runs),
        "poll_errors": max(r["poll_errors"] for r in runs),
        "cpu": cpu,
        "shares": [f"{r['share']:.0%}" for r in runs],
    }


def render(data: dict[str, Any]) -> str:
    count = data["count"]
    costs = data["costs"]
    rows, cpu_rows, limits = [], [], []
    for rate, runs in data["results"].items():
        s = _summary(rate, runs)
        moto_ms = s["cpu"]["moto"] / count * 1000
        if s["share"] < TARGET_SHARE and moto_ms > 0:
            # moto serves one request at a time (devkit.moto_server), on one core at most.
            limits.append(
                f"At {rate:g}/s the moto server needed {moto_ms:.1f} ms of CPU per message, so "
                f"one core of it serves at most ~{1000 / moto_ms:.0f} messages/s; the app's "
                f"own side needed {s['cpu']['app'] / count * 1000:.1f} ms per message "
                f"(~{1000 / max(s['cpu']['app'] / count * 1000, 0.001):.0f}/s per core). "
                "The emulator, not the pacing, sets the rate reached here."
            )
        ok = s["share"] >= TARGET_SHARE and s["duplicates"] == 0 and s["losses"] == 0
        rows.append(
            [
                f"{rate:g}/s",
                f"{s['achieved']:.1f}/s",
                f"{s['share']:.1%} ({', '.join(s['shares'])})",
                f"{s['drain']:.1f} s",
                f"{count / rate:.1f} s",
                s["duplicates"],
                f"{s['losses']} (unsent at the timeout)" if s["timed_out"] else s["losses"],
                s["refused"],
                (
                    "**met**"
                    if ok
                    else f"**missed**: {s['share']:.0%} of the rate, "
                    f"{(TARGET_SHARE - s['share']) * 100:.0f} points short"
                    if s["share"] < TARGET_SHARE
                    else "**missed**: duplicates or losses"
                )
                + (" (a run timed out)" if s["timed_out"] else ""),
            ]
        )
        busy = sum(s["cpu"].values())
        cpu_rows.append(
            [
                f"{rate:g}/s",
                f"{s['elapsed']:.1f} s",
                f"{s['cpu']['app']:.1f} s ({s['cpu']['app'] / count * 1000:.1f} ms/msg)",
                f"{s['cpu']['moto']:.1f} s ({s['cpu']['moto'] / count * 1000:.1f} ms/msg)",
                f"{s['cpu']['twilio']:.1f} s ({s['cpu']['twilio'] / count * 1000:.1f} ms/msg)",
                f"{busy / (s['elapsed'] * (os.cpu_count() or 1)):.0%}",
                f"{s['create']:.1f} s",
            ]
        )
    return "\n".join(
        [
            "## 5. Paced sending",
            "",
            f"A broadcast of {count:,} messages (`POST /broadcasts`) through the local stack: "
            "the moto server and the fake Twilio API each in its own process (the fake answers "
            f"after {LATENCY * 1000:.0f} ms per request), the app's dispatcher (`dispatch_due`) "
            f"ticked every {data['tick']:g} s and two queue pollers taking batches of ten "
            "(`devkit.worker`'s QueueDriver, as the deployed event source: batch size 10, "
            "maximum concurrency 2) in a third. In Lambda the dispatcher ticks every minute "
            "and reserves up to two minutes of slots ahead; the pacing is the same. "
            "**Achieved rate** = accepted messages / (last accept - first accept), from the "
            "fake's own request log (accept times stamped by the fake); **drain** = from the "
            "broadcast request to the last accept; duplicates and losses are counted from the "
            f"fake's log against the recipients. Median of {data['runs']} run(s) per rate "
            "(every run's share in brackets); duplicates, losses and refusals are the worst run.",
            "",
            table(
                [
                    "configured",
                    "achieved",
                    "share",
                    "drain",
                    "ideal drain",
                    "duplicates",
                    "losses",
                    "refused by Twilio",
                    f"≥ {TARGET_SHARE:.0%}, 0 dup, 0 lost",
                ],
                rows,
            ),
            "",
            "Where the time goes (CPU seconds over the run, per message; the machine's share "
            "is all three processes' CPU over run time times cores; 'create' is the broadcast "
            "request itself, which stores every record and enqueues the first slots):",
            "",
            table(
                [
                    "configured",
                    "run time",
                    "app (dispatcher + workers)",
                    "moto server",
                    "fake Twilio",
                    "machine busy",
                    "create",
                ],
                cpu_rows,
            ),
            "",
            *[line + "\n" for line in limits],
            "What the operations a send is made of cost in the emulators (CPU per call, "
            f"{data['op_calls']} calls each, the moto server's from its `/proc` CPU, the client's "
            "in the benchmark's process: the app's botocore clients, boto3 for the "
            "receive), with the table and the queue holding few messages "
            "and holding as many as the broadcast (the columns show how moto's cost per call "
            "grows with what it holds):",
            "",
            table(
                ["operation"]
                + [f"moto CPU, {size:,} held" for size in costs]
                + [f"client CPU, {max(costs):,} held"],
                [
                    [name]
                    + [f"{costs[size][i][1]:.1f} ms" for size in costs]
                    + [f"{costs[max(costs)][i][2]:.2f} ms"]
                    for i, (name, _, _) in enumerate(costs[max(costs)])
                ],
            ),
            "",
        ]
    )
