"""`python -m bench.run [--tiny] [--output BENCHMARKS.md]`: run every section, write the report."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from bench import cold, memory, model, paced, package, report, scenarios, warm
from bench.model import _seconds as seconds
from bench.proc import ROOT
from bench.report import TIMES, mib, ms, table, verdict
from bench.stack import Stack


class Sizes(NamedTuple):
    runs: int
    warmup: int
    warm_count: int
    profile_count: int
    paced_count: int
    paced_rates: list[float]
    paced_runs: int
    op_calls: int
    cold_warm: int  # warm events after each cold one (the cost table's warm figures)


FULL = Sizes(7, 1, 5000, 2000, 2000, [10.0, 100.0], 3, 50, 3)
# Enough to run every code path once, not to measure anything.
TINY = Sizes(1, 0, 200, 100, 50, [500.0], 1, 5, 1)


# Set by --only: the sections to run (a quick look while tuning; never for the committed report).
ONLY: set[str] = set()


def _section(name: str, results: dict[str, Any], work: Callable[[], Any]) -> None:
    if ONLY and name not in ONLY:
        return
    started = time.monotonic()
    print(f"bench: {name}…", flush=True)
    try:
        results[name] = work()
    except Exception:
        results[name] = None
        results.setdefault("errors", []).append((name, traceback.format_exc()))
        print(f"bench: {name} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    print(f"bench: {name} took {time.monotonic() - started:.0f} s", flush=True)


def measure(sizes: Sizes) -> dict[str, Any]:
    """Every section against one set of emulators; a failed section is recorded, not fatal."""
    results: dict[str, Any] = {}
    with Stack() as stack, tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        _section(
            "cold",
            results,
            lambda: cold.measure(stack, runs=sizes.runs, warmup=sizes.warmup, warm=sizes.cold_warm),
        )
        _section(
            "warm",
            results,
            lambda: warm.measure(
                stack,
                runs=sizes.runs,
                count=sizes.warm_count,
                profile_count=sizes.profile_count,
            ),
        )
        _section("memory", results, lambda: memory.measure(stack, runs=sizes.runs))
        _section(
            "package",
            results,
            lambda: package.measure(stack, Path(tmp), runs=sizes.runs, warmup=sizes.warmup),
        )
        _section(
            "paced",
            results,
            lambda: paced.measure(
                stack,
                count=sizes.paced_count,
                rates=sizes.paced_rates,
                runs=sizes.paced_runs,
                tick=1.0,
                calls=sizes.op_calls,
            ),
        )
    return results


def goals(results: dict[str, Any]) -> str:
    """Issue 16's goals, each checked against this run's figures, in one table."""
    rows: list[list[str]] = []
    cold_data = results.get("cold")
    if cold_data:
        figures, sizes = cold_data["figures"], model.defaults()
        rows += model.goals(figures, sizes, cold_data.get("rounds"))
        lowest = model.lowest_meeting(figures, sizes["worker"], cold_data.get("rounds"))
        rows.append(
            [
                "the API handler's size: the lowest at which cold /sms and /voice meet the "
                "goals above, by the medians and in most rounds",
                f"{lowest:,} MB in this run" if lowest else "none of the sizes modelled",
                "**met**"
                if lowest == sizes["api"]
                else f"**missed**: the config sets {sizes['api']:,} MB",
            ]
        )
        rows += model.price_rows(figures, sizes)
    else:
        rows.append(["cold starts (section 1)", "not measured", "**unknown**"])
    warm_data = results.get("warm")
    if warm_data:
        cpu = warm_data["cpu_us"]
        for label in ("switchboard /voice", "switchboard /twimlets/forward (stage 1)"):
            rows.append(
                [
                    f"warm {label.removeprefix('switchboard ')} CPU ≤ {warm.TARGET_US:.0f} µs",
                    f"{cpu[label]:.0f} µs",
                    verdict(cpu[label], warm.TARGET_US, unit=" µs"),
                ]
            )
        rows.append(
            [
                "warm /sms CPU (one PutItem; no target, beside the quickstart's)",
                f"{cpu[warm.SMS_NEW]:.0f} µs against {cpu[warm.SMS_QUICKSTART]:.0f} µs",
                "",
            ]
        )
    memory_data = results.get("memory")
    if memory_data:
        peak = memory_data["peaks"][scenarios.SWITCHBOARD.name] / 1024
        rows.append(
            [
                f"peak RSS, every route in one process, ≤ {memory.TARGET_MIB:.0f} MiB (fits "
                "128 MB)",
                f"{peak:.1f} MiB",
                verdict(peak, memory.TARGET_MIB, unit=" MiB"),
            ]
        )
    package_data = results.get("package")
    if package_data:
        zipped = package_data["sizes"]["zipped"] / 1e6
        rows.append(
            [
                f"deployment zip ≤ {package.TARGET_MB:.0f} MB",
                f"{zipped:.2f} MB",
                verdict(zipped, package.TARGET_MB, unit=" MB"),
            ]
        )
    return "\n".join(
        [
            "## Goals, side by side in this run",
            "",
            "Cold figures are modelled latency (section 1: INIT at a full vCPU, the handler at "
            "the memory size's share) of Switchboard as deployed, at the memory sizes "
            "`.chalice/config.json` sets, against the quickstart-style app and the best lean "
            "/sms measured in the same run; the cost of each size is in section 1's cost table.",
            "",
            table(["goal", "this run", "verdict"], rows),
            "",
        ]
    )


def bought(results: dict[str, Any]) -> str:
    """What each cold-start technique bought, from the figures measured above, modelled."""
    out = ["## What the cold-start work bought", ""]
    rows = []
    cold_data = results.get("cold")
    if cold_data:
        f = cold_data["figures"]

        def at(scenario: str, label: str, memory: int) -> str:
            return seconds(model.modelled(f, scenario, label, memory))

        def pair(scenario: str, more: str, less: str) -> str:
            return ", ".join(
                f"{at(scenario, more, m)} → {at(scenario, less, m)} at {m:,} MB"
                for m in (128, 1769)
            )

        rows += [
            [
                "INIT work by function and size (`chalicelib/runtime/warmup.py`): the worker and "
                "the schedules load botocore's clients and twilio.rest during INIT; the API "
                "handler does below 1,769 MB, with its route modules",
                f"cold /sms {pair('sms', cold.LAZY, cold.EAGER)}; cold /voice pays "
                f"{pair('voice', cold.LAZY, cold.EAGER)}; cold worker "
                f"{pair('worker', cold.WORKER_LAZY, cold.WORKER_INIT)} (SDKs on first use → "
                "during INIT)",
            ],
            [
                "Parameters through the Lambda extension (raw HTTP/1.0 over a socket, by name, "
                "on demand) instead of one GetParametersByPath walk",
                f"cold /voice {pair('voice', cold.BY_PATH, cold.LAZY)} (without → with it)",
            ],
            [
                "Lazy imports per route where INIT work would not pay: at 1,769 MB and above "
                "the handler runs at a full vCPU, so /voice loads no SDK",
                f"cold /voice {pair('voice', cold.EAGER, cold.LAZY)} (SDKs during INIT → "
                "on first use)",
            ],
        ]
        logs_us = cold_data["importtime"]["cumulative"].get("chalicelib.core.logs")
        have_powertools = importlib.util.find_spec("aws_lambda_powertools") is not None
        rows.append(
            [
                "Own JSON logger (`chalicelib.core.logs`) instead of Powertools",
                "Not measured side by side: Powertools is not installed here and was not "
                "added as a dependency for this. "
                + (
                    f"Our logger's whole import (json, logging, contextvars included) costs "
                    f"{logs_us / 1000:.1f} ms in the /voice importtime run above. "
                    if logs_us is not None
                    else ""
                )
                + ("(Powertools is importable: add it as a variant.)" if have_powertools else ""),
            ]
        )
    package_data = results.get("package")
    if package_data and package_data.get("cold"):
        c = package_data["cold"]
        plain, compiled = (
            c["switchboard (extension), no .pyc"],
            c["switchboard (extension), with .pyc"],
        )
        rows.append(
            [
                "Byte-compiled modules in the zip (`devkit.package`: unchecked-hash .pyc for "
                "everything a route can import)",
                f"{ms(plain[0] - compiled[0])} CPU per cold /voice run from the unzipped package "
                "(section 4), all of it INIT (a full vCPU): without them Lambda compiles "
                "every module it imports at each cold start, and keeps nothing (/var/task is "
                "read-only)",
            ]
        )
    out += [
        table(["technique", "measured effect (cold /voice unless said)"], rows),
        "",
        "Modelled latency (section 1's model: INIT at a full vCPU, the handler at the memory "
        "size's share); the rows overlap, so their savings are not to be added up.",
        "",
    ]
    return "\n".join(out)


# The figures of the last full run with Switchboard's own SigV4 client (chalicelib awsjson):
# BENCHMARKS.md of commit 56ff7e6, measured at a070950 on this machine type.
AWSJSON = {
    "commit": "56ff7e6",
    "cold_voice": 1.35,
    "cold_sms": 1.60,
    "cold_sms_handle_ms": 15.1,
    "cold_worker": 4.46,
    "warm_voice_us": 74.0,
    "warm_sms_us": 455.0,
    "rss_mib": 60.9,
    "zip_mb": 8.55,
}


def botocore_cost(results: dict[str, Any]) -> str:
    """The figures with awsjson (last full run) beside this run's, with botocore."""
    then = AWSJSON
    rows = []
    cold_data = results.get("cold")
    if cold_data:
        f = cold_data["figures"]

        def floor_ratio(scenario: str, label: str = cold.EXT) -> float:
            return f[(scenario, label)].cpu / f[(scenario, "floor")].cpu

        sms = f[("sms", cold.EXT)]
        rows += [
            [
                "cold /voice CPU (extension path)",
                f"{then['cold_voice']:.2f}{TIMES} floor",
                f"{floor_ratio('voice'):.2f}{TIMES} floor",
            ],
            [
                "cold /sms CPU (extension path, stores the message)",
                f"{then['cold_sms']:.2f}{TIMES} floor (handling {then['cold_sms_handle_ms']} ms)",
                f"{floor_ratio('sms'):.2f}{TIMES} floor (handling {ms(sms.handle_cpu)})",
            ],
            [
                "cold queue worker CPU (one send)",
                f"{then['cold_worker']:.2f}{TIMES} floor",
                f"{floor_ratio('worker', cold.WORKER_LAZY):.2f}{TIMES} floor (SDKs on first use)",
            ],
        ]
    warm_data = results.get("warm")
    if warm_data:
        cpu = warm_data["cpu_us"]
        rows += [
            [
                "warm /voice CPU",
                f"{then['warm_voice_us']:.0f} µs",
                f"{cpu['switchboard /voice']:.0f} µs",
            ],
            [
                "warm /sms CPU (new MessageSid: one PutItem)",
                f"{then['warm_sms_us']:.0f} µs",
                f"{cpu[warm.SMS_NEW]:.0f} µs",
            ],
        ]
    memory_data = results.get("memory")
    if memory_data:
        rows.append(
            [
                "peak RSS, every route in one process",
                f"{then['rss_mib']:.1f} MiB",
                mib(memory_data["peaks"][scenarios.SWITCHBOARD.name]),
            ]
        )
    package_data = results.get("package")
    if package_data:
        rows.append(
            [
                "deployment zip",
                f"{then['zip_mb']:.2f} MB",
                f"{package_data['sizes']['zipped'] / 1e6:.2f} MB",
            ]
        )
    if not rows:
        return ""
    return "\n".join(
        [
            "## What the return to botocore cost",
            "",
            "Every AWS call now goes through botocore clients (`chalicelib.aws.clients`) instead "
            "of the app's own SigV4 client (`awsjson`, removed). Beside this run, the figures of "
            f"the last full run with awsjson (BENCHMARKS.md at {then['commit']}, same machine "
            "type). Cold figures are ratios to the floor, the comparable measure across runs; "
            "the first webhook that writes now pays for importing botocore and building a "
            "session and a client (sections 1 and 3: the /sms and worker rows, the probe).",
            "",
            table(["figure", "with awsjson", "with botocore (this run)"], rows),
            "",
        ]
    )


def deployment(results: dict[str, Any]) -> str:
    """What a deployment can do about cold starts: memory, provisioned concurrency, SnapStart."""
    estimate = ""
    cold_data = results.get("cold")
    if cold_data:
        sizes = model.defaults()
        estimate = (
            " Section 1 models it: the handler's CPU is divided by the memory size's share, "
            "INIT's is not (a full vCPU at any size). This commit's defaults, from that table: "
            f"the API handler at {sizes['api']:,} MB (the goals table at the top says whether "
            "it is the lowest size at which cold /voice and /sms meet their goals), the worker "
            f"and the schedules at {sizes['worker']:,} MB (their SDKs load during INIT at a full "
            "vCPU; nobody waits on them)."
        )
    return f"""## What a deployment can do about it

- **The memory size.** Lambda allots INVOKE's CPU in proportion to the memory configured:
  128 MB (`lambda_memory_size` in `.chalice/config.json`) is about 1/14 of a vCPU, 1,769 MB
  one full vCPU (one Python thread gains nothing beyond).{estimate} The price per ms grows in
  proportion to memory too: CPU-bound time costs about the same at any size up to 1,769 MB,
  time spent waiting on DynamoDB or Twilio costs more (the cost table in section 1). Chalice
  sets it per function (`lambda_functions.<name>.lambda_memory_size`; the API handler is
  `api_handler`).
- **Provisioned concurrency** keeps initialised execution environments ready, so requests do
  not wait for a cold start while the configured number suffices; it is billed for every hour
  it is configured, used or not, and is set on a published version or an alias (the
  `snapstart` option's `live` alias is one; the stock template has none). Its INIT keeps no
  caller waiting, so `chalicelib/runtime/warmup.py` then loads every SDK at any size.
- **SnapStart** (`"snapstart": true` in a stage, README "Deploy"; off by default) replaces
  the API handler's INIT with the restore of a snapshot taken when the version is published.
  This benchmark cannot measure a restore (it needs Lambda's own microVMs), so it cannot say
  that SnapStart beats the modelled cold starts above; what it can say is what INIT then holds:
  `chalicelib/runtime/warmup.py` imports the route modules, botocore and twilio.rest during a
  SnapStart INIT (free at every restore) and builds no client, and the SnapStart function reads
  its parameters with `GetParametersByPath` (no extension), so its first /voice after a restore
  builds a botocore session and an SSM client at the handler's share of a vCPU. It is billed
  (snapshot cache and restores) on top, so it stays off.
- **arm64** (`"lambda_architecture": "arm64"`) costs 20 % less per GB-s; whether Graviton runs
  this code as fast is not measured here (this machine is x86), so the cost table is x86's.
"""


METHOD = """## Method

- Every figure is the median of several runs of fresh processes; comparisons run side by side in
  the same invocation, interleaved round by round (the cold starts in a new order each round,
  so no variant always follows the same neighbour), and are reported as ratios, because absolute
  times on a shared machine drift. One warm-up round (not counted) fills the bytecode cache,
  which the children keep in `.local/bench-pycache` (`PYTHONPYCACHEPREFIX`, whatever the
  shell says about `PYTHONDONTWRITEBYTECODE`), so sections 1 to 3 measure compiled code, as
  after a deploy that ships bytecode; section 4 measures the zip as it ships.
- Processes: the moto server (`python -m devkit.moto_server`) and the fake Twilio API
  (`python -m devkit.fake_twilio`) run in their own processes; the Lambda extension stand-in
  (`devkit.ssm_extension`) runs in a thread of the benchmark, backed by the moto server, as the
  extension is another process in Lambda. Every server binds 127.0.0.1 on port 0.
- Measured children are `bench/child.py` (standard library only): it reads pre-built events from
  a file, points stdout at /dev/null (the apps still format and write every log line), imports
  the app, calls it and writes what it measured to a file. CPU is from `os.wait4` (the child's
  own rusage); peak RSS is `VmHWM` read by the child, because Linux carries the forking parent's
  peak into a child's `ru_maxrss`.
- The moto server's werkzeug answers `Connection: close`, so every AWS call opens a new TCP
  connection; against AWS the connection is kept but TLS-encrypted (a TLS handshake per cold
  container, not per call). The client CPU in the /sms and worker figures includes that connect.
- The floor, the quickstart-style app (boto3 clients and a DynamoDB `Table` resource at module
  scope) and the lean SDK apps (the leanest /sms that stores the message: extension, hmac, one
  botocore PutItem, the client built on first use or during INIT) are in `bench/baselines/`.
- Cold figures are modelled from CPU time, not wall time: the benchmark shares 2 cores with
  other work, and a process's own user+system time is what such contention disturbs least.
"""


def write(results: dict[str, Any], output: Path, header: str) -> None:
    parts = [header, "", goals(results)]
    for name, module in (
        ("cold", cold),
        ("warm", warm),
        ("memory", memory),
        ("package", package),
        ("paced", paced),
    ):
        data = results.get(name)
        if data is None:
            parts += [f"## {name}: not measured (the section failed; see the run's output)", ""]
        else:
            parts += [module.render(data), ""]  # type: ignore[attr-defined]
    parts += [bought(results), botocore_cost(results), deployment(results), METHOD]
    output.write_text("\n".join(parts).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report; exit 1 when a section failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: proves it runs")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--runs", type=int, help="runs per figure (default 7; tiny 1)")
    parser.add_argument("--paced-runs", type=int, help="runs per paced rate (default 3)")
    parser.add_argument("--note", default="", help="a line for the header (what else ran)")
    parser.add_argument("--only", help="comma-separated sections (e.g. cold) for a quick look")
    args = parser.parse_args(argv)
    if args.only:
        ONLY.update(part.strip() for part in args.only.split(","))
    sizes = TINY if args.tiny else FULL
    if args.runs:
        sizes = sizes._replace(runs=args.runs)
    if args.paced_runs:
        sizes = sizes._replace(paced_runs=args.paced_runs)
    started = time.monotonic()
    mode = "tiny (proves the benchmark runs; the figures mean nothing)" if args.tiny else "full"
    # Taken before measuring: the code measured is the code on disk when the run starts.
    header = report.header(f"{mode}; {sizes.runs} run(s) per figure", args.note)
    results = measure(sizes)
    header += f"\n- Load average when it ended: {report.load()}"
    write(results, args.output, header)
    print(f"bench: wrote {args.output} in {time.monotonic() - started:.0f} s", flush=True)
    for name, _ in results.get("errors", []):
        print(f"bench: section {name} failed", file=sys.stderr)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
