"""Package: the deployment zip `devkit.package` builds, and cold starts run from it unzipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import cold, scenarios
from bench.proc import ROOT, ChildRun, clean_environ, median, run_child
from bench.report import TIMES, mib, ms, ratio, table, verdict
from bench.scenarios import FLOOR, SWITCHBOARD, App
from bench.stack import Stack

TARGET_MB = 10.0


def build(out: Path) -> Path:
    """Build the package as README's deploy step does (`devkit.package`, stage dev); the zip.

    Raises:
        subprocess.CalledProcessError: packaging failed.
    """
    env = clean_environ()
    env.pop("PYTHONPYCACHEPREFIX")  # packaging as a developer would run it
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    subprocess.run(
        [sys.executable, "-m", "devkit.package", "--stage", "dev", str(out)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=900,
    )
    return out / "deployment.zip"


def analyse(path: Path) -> dict[str, Any]:
    """Sizes, the largest top-level packages, and how much bytecode the zip carries."""
    sizes: dict[str, int] = defaultdict(int)
    files = pyc = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            top = info.filename.split("/")[0]
            # Metadata folds into its package's line: "twilio-9.13.0.dist-info" -> "twilio".
            if top.endswith(".dist-info"):
                top = top.split("-")[0].lower() + " (metadata)"
            sizes[top.removesuffix(".py")] += info.file_size
            files += 1
            pyc += info.filename.endswith(".pyc")
    return {
        "zipped": path.stat().st_size,
        "unzipped": sum(sizes.values()),
        "files": files,
        "pyc": pyc,
        "largest": sorted(sizes.items(), key=lambda item: -item[1])[:5],
    }


def _extract(path: Path, into: Path, *, bytecode: bool) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
    if not bytecode:
        # The counterfactual: the same package without the bytecode devkit.package adds.
        for cache in list(into.rglob("__pycache__")):
            shutil.rmtree(cache)
    return into


VARIANTS = [
    ("floor, no .pyc", FLOOR, False),
    ("switchboard (extension), no .pyc", SWITCHBOARD, False),
    ("floor, with .pyc", FLOOR, True),
    ("switchboard (extension), with .pyc", SWITCHBOARD, True),
]


def cold_from_package(
    stack: Stack, path: Path, work: Path, *, runs: int, warmup: int
) -> dict[str, Any]:
    """Cold /voice with the app and its libraries from the unzipped package, as in Lambda.

    Lambda's /var/task is read-only: without valid .pyc in the zip, every cold start compiles
    the app and its bundled libraries from source. PYTHONDONTWRITEBYTECODE keeps it that way
    here; the standard library and boto3 (the runtime's own) keep their bytecode.
    """
    trees = {
        False: _extract(path, work / "plain", bytecode=False),
        True: _extract(path, work / "compiled", bytecode=True),
    }
    samples: dict[str, list[ChildRun]] = defaultdict(list)
    for round_number in range(warmup + runs):
        for label, app, bytecode in VARIANTS:
            tree = trees[bytecode]
            env = stack.env("switchboard" if app is SWITCHBOARD else app.name)
            # As in Lambda: bytecode only where it ships (the tree, the installed Python and
            # boto3), nothing written.
            env.pop("PYTHONPYCACHEPREFIX", None)
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env["PYTHONPATH"] = str(tree)
            target = (
                App(app.name, str(tree), app.module, app.package) if app is SWITCHBOARD else app
            )
            run = run_child(cold.job(target, "voice", scenarios.voice(app)), env)
            if run.result["steps"][0]["outcomes"] != {"200": 1}:
                raise RuntimeError(f"{label} answered {run.result['steps'][0]['outcomes']}")
            if round_number >= warmup:
                samples[label].append(run)
    for tree in trees.values():
        shutil.rmtree(tree, ignore_errors=True)
    return {
        label: (median(r.cpu for r in runs_), median(r.wall for r in runs_))
        for label, runs_ in samples.items()
    }


def render(data: dict[str, Any]) -> str:
    sizes = data["sizes"]
    zipped_mb = sizes["zipped"] / 1e6
    largest = [[name, mib(size / 1024)] for name, size in sizes["largest"]]
    out = [
        "## 4. Deployment package",
        "",
        "`python -m devkit.package --stage dev` (`chalice package --merge-template "
        "infra/resources.json`, then the bytecode cold starts need; AWS_DEFAULT_REGION="
        "us-east-1), the `deployment.zip` it writes:",
        "",
        table(
            ["zipped", "unzipped", "files", ".pyc files inside", f"≤ {TARGET_MB:.0f} MB zipped"],
            [
                [
                    f"{zipped_mb:.2f} MB ({mib(sizes['zipped'] / 1024)})",
                    f"{sizes['unzipped'] / 1e6:.2f} MB",
                    f"{sizes['files']:,}",
                    sizes["pyc"],
                    verdict(zipped_mb, TARGET_MB, unit=" MB"),
                ]
            ],
        ),
        "",
        "The five largest top-level entries (unzipped):",
        "",
        table(["package", "unzipped"], largest),
        "",
    ]
    cold_pkg = data["cold"]
    if cold_pkg:
        base_plain = cold_pkg["floor, no .pyc"]
        base_pyc = cold_pkg["floor, with .pyc"]
        rows = []
        for label, (cpu, wall) in cold_pkg.items():
            base = base_pyc if "with .pyc" in label else base_plain
            rows.append([label, ms(cpu), ratio(cpu, base[0]), ms(wall)])
        out += [
            "### Cold /voice run from the unzipped package",
            "",
            "As Lambda runs it: the app, chalice and twilio imported from the unzipped "
            "`deployment.zip` with `PYTHONDONTWRITEBYTECODE=1` (`/var/task` is read-only, so "
            "nothing compiled at a cold start is kept): as shipped, with the unchecked-hash "
            ".pyc files `devkit.package` adds (valid whatever mtimes the unzipped files get), "
            "beside the same tree with every .pyc removed, as `chalice package` alone would "
            "ship it. Median of the cold-start runs; "
            f"{TIMES} floor compares like with like (the floor from the same tree).",
            "",
            table(["variant", "CPU", f"{TIMES} floor (same tree)", "wall"], rows),
            "",
        ]
    return "\n".join(out)


def measure(stack: Stack, work: Path, *, runs: int, warmup: int) -> dict[str, Any]:
    """Build, analyse, and time cold starts from the package; work is a scratch folder."""
    zip_path = build(work / "out")
    data = {"sizes": analyse(zip_path)}
    data["cold"] = cold_from_package(stack, zip_path, work, runs=runs, warmup=warmup)
    os.remove(zip_path)
    return data
