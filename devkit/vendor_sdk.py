"""Vendor Twilio's Voice JavaScript SDK into chalicelib/browser/static/ from the npm registry.

    python -m devkit.vendor_sdk 2.18.5

Downloads the release's tarball with `npm pack`, checks it against the registry's integrity
hash, copies dist/twilio.min.js and the licence, and records the version and the file's
Subresource Integrity hash in vendored.json, which the page's <script integrity> uses and
tests/functional/browser/test_page.py checks against the file. Never run at build or run time.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@twilio/voice-sdk"
STATIC = Path(__file__).resolve().parent.parent / "chalicelib" / "browser" / "static"


def sri(data: bytes) -> str:
    """A Subresource Integrity value (sha384) for data."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def vendor(version: str, static: Path = STATIC) -> dict[str, str]:
    """Fetch, check and copy the release; the record written to vendored.json."""
    spec = f"{PACKAGE}@{version}"
    with tempfile.TemporaryDirectory() as work:
        shown = subprocess.run(
            ["npm", "view", spec, "dist.integrity", "dist.tarball", "--json"],
            check=True,
            capture_output=True,
            text=True,
        )
        dist = json.loads(shown.stdout)
        subprocess.run(["npm", "pack", spec, "--quiet"], check=True, cwd=work, capture_output=True)
        (tarball,) = Path(work).glob("*.tgz")
        algorithm, _, expected = dist["dist.integrity"].partition("-")
        digest = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
        if digest != expected:
            raise SystemExit(f"{spec}: the tarball does not match the registry's integrity hash")
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        package = Path(work) / "package"
        script = (package / "dist" / "twilio.min.js").read_bytes()
        (static / "twilio.min.js").write_bytes(script)
        shutil.copyfile(package / "LICENSE.md", static / "LICENSE-twilio-voice-sdk.md")
    record = {
        "package": PACKAGE,
        "version": version,
        "file": "dist/twilio.min.js",
        "tarball": dist["dist.tarball"],
        "tarball_integrity": dist["dist.integrity"],
        "integrity": sri(script),
    }
    (static / "vendored.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.vendor_sdk", description=__doc__)
    parser.add_argument("version", help="the exact release, e.g. 2.18.5")
    record = vendor(parser.parse_args(argv).version)
    print(f"vendored {record['package']}@{record['version']} ({record['integrity']})")


if __name__ == "__main__":
    main()
