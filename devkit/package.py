"""Build the deployment package: `chalice package`, then add the bytecode cold starts need.

    python -m devkit.package --stage prod out/        (or: make package STAGE=prod)

Lambda unzips the package into a read-only /var/task, so without .pyc files in the zip every
cold start compiles the app and its libraries from source, and keeps nothing: ~30 ms of CPU per
cold /voice, more for the worker (`BENCHMARKS.md`, section 4). This writes unchecked-hash .pyc
files (valid whatever mtimes the unzipped files get) for every module but twilio.rest's API
domains (the app calls Twilio through twilio's base layer: chalicelib/telephony/twilio_api.py)
and twilio's optional async client (aiohttp): those are never imported, and compiling them too
would take the zip past 10 MB. Stale .pyc from the working tree are
dropped. The bytecode is this interpreter's, so the package's runtime must be this Python.

The template (out/sam.json) gives every function the AWS Parameters and Secrets Lambda Extension
layer of the stack's region, picked from a mapping by `AWS::Region`, with its port variable
(`devkit/extension_layer.py`): one package deploys to any region listed there.

Two options per stage in `.chalice/config.json`, both off unless set (README, "Deploy"):
- `"lambda_architecture": "arm64"`, Chalice's own key: every function runs on arm64 (Chalice
  packages the aarch64 wheels of the compiled dependencies) with the extension's arm64 layer.
- `"snapstart": true`, read here only (`chalice deploy` ignores it): the API handler gets
  SnapStart on published versions behind a `live` alias (`enable_snapstart`), and API Gateway
  invokes that alias. SnapStart needs Python 3.12+, and the runtime is the packaging Python's,
  so packaging with an older Python refuses before anything is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from devkit import cognito, extension_layer, throttles

ROOT = Path(__file__).resolve().parents[1]
SNAPSTART_FUNCTION = "APIHandler"  # the webhooks and the API: the one function callers wait on
ALIAS = "live"
SNAPSTART_PYTHON = (3, 12)  # Lambda's first Python runtime with SnapStart
# Imported by no route: twilio.rest's API domains (the client only; chalicelib/telephony/
# twilio_api.py) and aiohttp (twilio's AsyncTwilioHttpClient, never built).
_NOT_COMPILED = re.compile(r"^(twilio/rest/(?!__init__\.py$)|aiohttp/)")


class PackagingError(Exception):
    """The stage's options cannot be packaged as asked; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Options:
    """A stage's packaging options, from `.chalice/config.json` (stage key, else top level)."""

    architecture: str = "x86_64"
    snapstart: bool = False

    @classmethod
    def of(cls, stage: str, project: Path = ROOT) -> Options:
        """Raises: PackagingError: a value is not one the option takes."""
        config = json.loads((project / ".chalice" / "config.json").read_text())
        stage_config = config.get("stages", {}).get(stage, {})

        def value(key: str, default: Any) -> Any:
            return stage_config.get(key, config.get(key, default))

        architecture, snapstart = value("lambda_architecture", "x86_64"), value("snapstart", False)
        if architecture not in ("x86_64", "arm64"):
            raise PackagingError(f"lambda_architecture {architecture!r}: x86_64 or arm64")
        if not isinstance(snapstart, bool):
            raise PackagingError(f"snapstart {snapstart!r}: true or false")
        return cls(architecture, snapstart)

    def check_python(self, stage: str, version: tuple[int, ...] | None = None) -> None:
        """Refuse SnapStart when the package would run a Python older than 3.12.

        Raises:
            PackagingError: one line naming the cause and the fix.
        """
        major, minor = (version or sys.version_info)[:2]
        if self.snapstart and (major, minor) < SNAPSTART_PYTHON:
            raise PackagingError(
                f"stage {stage} asks for SnapStart, which Lambda offers on python3.12 and newer, "
                f"but the package would run python{major}.{minor} (this Python's): package with "
                'Python 3.12+ (make clean install PYTHON=python3.13) or drop "snapstart" from '
                "the stage in .chalice/config.json"
            )


def build(stage: str, out: Path, project: Path = ROOT) -> Path:
    """Run `chalice package` for stage (resources merged) into out, then merge the stage's
    options and the extension layer into the template and add bytecode to the zip.

    Raises:
        PackagingError: the stage's options cannot be packaged (before chalice runs).
        PackagingError: also when chalice could not package the app (its reason in one line).
        RuntimeError: the package's runtime is not this interpreter's version.
    """
    options = Options.of(stage, project)
    options.check_python(stage)
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        _chalice_package(stage, project, out, env)
    except subprocess.CalledProcessError as exc:
        # Chalice's own reason (an unreadable policy file, a bad config) in one line.
        lines = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise PackagingError(f"chalice package failed: {lines[-1] if lines else exc}") from None
    merge(out / "sam.json", options)
    lock_stage(out / "sam.json", stage)
    _check_runtime(out / "sam.json")
    path = out / "deployment.zip"
    add_bytecode(path)
    return path


def lock_stage(template: Path, stage: str) -> None:
    """The template deploys only the stage it was packaged for: its code and policies hold that
    stage's names, whatever Stage a deploy would pass."""
    document = json.loads(template.read_text())
    parameter = document["Parameters"]["Stage"]
    parameter["AllowedValues"], parameter["Default"] = [stage], stage
    template.write_text(json.dumps(document, indent=2) + "\n")


def _chalice_package(stage: str, project: Path, out: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [
            str(Path(sys.executable).with_name("chalice")),
            "--project-dir",
            str(project),
            "package",
            "--stage",
            stage,
            "--merge-template",
            str(project / "infra" / "resources.json"),
            str(out),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=900,
    )


def merge(template: Path, options: Options) -> None:
    """Rewrite the SAM template with the stage's options and the extension layers."""
    document = json.loads(template.read_text())
    functions = _functions(document)
    architectures = {tuple(f.get("Architectures", ["x86_64"])) for f in functions.values()}
    if architectures != {(options.architecture,)}:  # Chalice sets them from the same key
        raise RuntimeError(f"functions run {sorted(architectures)}, not {options.architecture}")
    if options.snapstart:
        enable_snapstart(document)
    extension_layer.add_to_template(document)
    throttles.add_to_template(document)
    cognito.add_to_template(document)
    _substitute_policy_parameters(document)
    template.write_text(json.dumps(document, indent=2) + "\n")


def _substitute_policy_parameters(template: dict[str, Any]) -> None:
    """Make a policy string naming a template parameter (`${VoicemailFromAddress}`) a Fn::Sub:
    Chalice copies policy files into the roles as plain JSON."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str) and re.search(r"\$\{[A-Za-z]+\}", value):
            return {"Fn::Sub": value}
        return value

    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::IAM::Role":
            properties = resource["Properties"]
            properties["Policies"] = walk(properties.get("Policies", []))


def enable_snapstart(template: dict[str, Any], function: str = SNAPSTART_FUNCTION) -> int:
    """Turn SnapStart on for function behind a `live` alias, and point API Gateway at the alias.

    SAM publishes a version on every deploy (AutoPublishAlias, on any property change) and
    deletes the one it replaces (each version's snapshot is billed while it exists). Every
    REST API integration URI naming `${function.Arn}` names `Ref: function.Alias` instead, and
    so does every invoke permission on the function: SAM resolves those Refs to the alias,
    which is what SnapStart restores (the unqualified function, $LATEST, never has a snapshot).
    The function loses the extension layer (see devkit/extension_layer.py). Returns how many
    references now name the alias.

    Raises:
        ValueError: function's runtime is older than python3.12, or nothing invokes it through
            the REST API.
    """
    properties = template["Resources"][function]["Properties"]
    runtime = properties.get("Runtime", "")
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    if not match or (int(match[1]), int(match[2])) < SNAPSTART_PYTHON:
        raise ValueError(f"{function} runs {runtime!r}; SnapStart needs python3.12 or newer")
    properties.update(
        {
            "AutoPublishAlias": ALIAS,
            "AutoPublishAliasAllProperties": True,
            "VersionDeletionPolicy": "Delete",
            "SnapStart": {"ApplyOn": "PublishedVersions"},
        }
    )
    extension_layer.without_extension(properties)
    count = 0
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Api":
            body = resource["Properties"].get("DefinitionBody", {})
            count += _point_at_alias(body, function)
        elif resource.get("Type") == "AWS::Lambda::Permission" and resource["Properties"].get(
            "FunctionName"
        ) == {"Ref": function}:
            resource["Properties"]["FunctionName"] = {"Ref": f"{function}.Alias"}
            count += 1
    if not count:
        raise ValueError(f"no REST API integration or permission invokes {function}")
    return count


def _point_at_alias(value: Any, function: str) -> int:
    """Make every Fn::Sub under value that names `${function.Arn}` name the alias instead.

    As a Sub variable set to `Ref: function.Alias` rather than `${function.Alias}` in the
    string: SAM resolves both to the alias, and cfn-lint (which checks SAM templates without
    translating them) knows the Ref but not the Sub attribute.
    """
    count = 0
    arn, variable = f"${{{function}.Arn}}", f"{function}Alias"
    if isinstance(value, dict):
        for key, item in value.items():
            text = item[0] if key == "Fn::Sub" and isinstance(item, list) else item
            if key == "Fn::Sub" and isinstance(text, str) and arn in text:
                variables = dict(item[1]) if isinstance(item, list) else {}
                variables[variable] = {"Ref": f"{function}.Alias"}
                value[key] = [text.replace(arn, f"${{{variable}}}"), variables]
                count += 1
            else:
                count += _point_at_alias(item, function)
    elif isinstance(value, list):
        count += sum(_point_at_alias(item, function) for item in value)
    return count


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


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
    sources = {info.filename: data for info, data in entries}
    names = sorted(n for n in sources if n.endswith(".py") and not _NOT_COMPILED.match(n))
    compiled = _compile(names, sources)
    # The same sources make the same bytes (names in order, no timestamps): `make deploy` names
    # the code by its hash, so a redeploy of unchanged code leaves the functions alone.
    files = [(info.filename, info.external_attr, data) for info, data in entries]
    files += [(name, 0o644 << 16, data) for name, data in compiled]
    rewritten = path.with_suffix(".tmp")
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, mode, data in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = mode
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    rewritten.replace(path)
    return len(compiled)


# Run in a fresh interpreter: marshal marks objects by their reference counts, so the same
# source compiled in a busy process (a test, a deploy) can give other bytes than in a fresh one.
_COMPILER = """
import json, py_compile, sys
done = []
for name in json.load(sys.stdin):
    try:
        py_compile.compile(name, cfile=name + "c", dfile="/var/task/" + name, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        continue  # a module this Python cannot compile is not one it imports either
    done.append(name)
json.dump(done, sys.stdout)
"""


def _compile(names: list[str], sources: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Unchecked-hash .pyc for names (their bytecode's zip name and bytes), Lambda's paths in
    tracebacks, compiled by this Python in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="switchboard-pyc-") as tmp:
        for name in names:
            target = Path(tmp, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(sources[name])
        result = subprocess.run(
            [sys.executable, "-I", "-c", _COMPILER],
            input=json.dumps(names), cwd=tmp, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return [
            (compiled_name(name), Path(tmp, name + "c").read_bytes())
            for name in json.loads(result.stdout)
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.package", description=__doc__)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        path = build(args.stage, args.out)
    except PackagingError as exc:
        sys.exit(f"make package: {exc}")
    options = Options.of(args.stage)
    print(
        f"{path}: {path.stat().st_size / 1e6:.2f} MB, with bytecode, {options.architecture}"
        f"{', SnapStart on ' + SNAPSTART_FUNCTION if options.snapstart else ''};"
        f" template {args.out}/sam.json"
    )


if __name__ == "__main__":
    main()
