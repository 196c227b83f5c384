"""Build the deployment package: `chalice package`, then add the bytecode cold starts need.

    python -m devkit.package --stage prod out/        (or: make package STAGE=prod)

Lambda unzips the package into a read-only /var/task, so without .pyc files in the zip every
cold start compiles the app and its libraries from source, and keeps nothing: ~30 ms of CPU per
cold /voice, more for the worker (`BENCHMARKS.md`, section 4). This writes unchecked-hash .pyc
files (valid whatever mtimes the unzipped files get) for every module but twilio.rest's API
domains other than `api` and twilio's optional async client (aiohttp): those are never imported,
and compiling them too would take the zip past 10 MB. Stale .pyc from the working tree are
dropped. The bytecode is this interpreter's, so the package's runtime must be this Python.

The template (out/sam.json) gives every function the AWS Parameters and Secrets Lambda Extension
layer of the stack's region, picked from a mapping by `AWS::Region`, with its port variable
(`devkit/extension_layer.py`): one package deploys to any region listed there.
"""

from __future__ import annotations

import argparse
import json
import os
import py_compile
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from devkit import extension_layer

ROOT = Path(__file__).resolve().parents[1]
# Imported by no route: twilio.rest's other API domains (only twilio.rest.api's v2010 messages
# and calls are used) and aiohttp (twilio's AsyncTwilioHttpClient, never built).
_NOT_COMPILED = re.compile(r"^(twilio/rest/(?!__init__\.py$|api/)|aiohttp/)")


def build(stage: str, out: Path) -> Path:
    """Run `chalice package` for stage (resources merged) into out, then add the extension
    layer to the template and bytecode to the zip.

    Raises:
        subprocess.CalledProcessError: chalice could not package the app.
        RuntimeError: the package's runtime is not this interpreter's version.
        ValueError: a function is not x86_64 (the extension layers mapped are x86_64's).
    """
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    subprocess.run(
        [
            str(Path(sys.executable).with_name("chalice")),
            "--project-dir",
            str(ROOT),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(ROOT / "infra" / "resources.json"),
            str(out),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=900,
    )
    add_extension_layer(out / "sam.json")
    _check_runtime(out / "sam.json")
    path = out / "deployment.zip"
    add_bytecode(path)
    return path


def add_extension_layer(template: Path) -> None:
    """Rewrite the SAM template with the extension layer of the stack's region on every function."""
    document = json.loads(template.read_text())
    extension_layer.add_to_template(document)
    template.write_text(json.dumps(document, indent=2) + "\n")


def _check_runtime(template: Path) -> None:
    wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
    resources = json.loads(template.read_text())["Resources"]
    runtimes = {
        r["Properties"].get("Runtime")
        for r in resources.values()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    if runtimes - {wanted}:
        raise RuntimeError(f"functions run {sorted(runtimes)}; bytecode here is {wanted}'s")


def compiled_name(source: str) -> str:
    """Where Python looks for a source file's bytecode: a/b.py -> a/__pycache__/b.<tag>.pyc."""
    folder, _, name = source.rpartition("/")
    cached = f"__pycache__/{name[:-3]}.{sys.implementation.cache_tag}.pyc"
    return f"{folder}/{cached}" if folder else cached


def add_bytecode(path: Path) -> int:
    """Rewrite the zip with fresh unchecked-hash .pyc beside its sources; returns how many."""
    with zipfile.ZipFile(path) as archive:
        entries = [
            (info, archive.read(info))
            for info in archive.infolist()
            if "__pycache__/" not in info.filename and not info.filename.endswith(".pyc")
        ]
    compiled: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory(prefix="switchboard-pyc-") as tmp:
        source_file, pyc_file = Path(tmp, "source.py"), Path(tmp, "source.pyc")
        for info, data in entries:
            name = info.filename
            if not name.endswith(".py") or _NOT_COMPILED.match(name):
                continue
            source_file.write_bytes(data)
            try:
                py_compile.compile(
                    str(source_file),
                    cfile=str(pyc_file),
                    dfile=f"/var/task/{name}",  # the path tracebacks show in Lambda
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
            except py_compile.PyCompileError:
                continue  # a module this Python cannot compile is not one it imports either
            compiled.append((compiled_name(name), pyc_file.read_bytes()))
    rewritten = path.with_suffix(".tmp")
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
        for name, data in compiled:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    rewritten.replace(path)
    return len(compiled)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.package", description=__doc__)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    path = build(args.stage, args.out)
    print(
        f"{path}: {path.stat().st_size / 1e6:.2f} MB, with bytecode; template {args.out}/sam.json"
    )


if __name__ == "__main__":
    main()
