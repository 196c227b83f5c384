"""The AWS Parameters and Secrets Lambda Extension layer, by region and architecture.

    python -m devkit.extension_layer eu-west-1            (prints that region's x86_64 layer ARN)
    python -m devkit.extension_layer eu-west-1 arm64      (its arm64 layer ARN)

A Lambda layer must be in its function's region and built for its architecture, and AWS
publishes this extension from a different account in each region, with its own layer version
there for each architecture (`...-Extension` for x86_64, `...-Extension-Arm64` for arm64, from
the same account). `devkit/package.py` puts the ARNs into the SAM template as the
`ParametersSecretsExtension` mapping (key `Arn` for x86_64, `Arm64Arn` for arm64, only the
architectures the template's functions use) and gives every function the layer `Fn::FindInMap`
picks for `AWS::Region` and its architecture, with `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` beside
it (the app reads parameters through the extension only when that variable is set, so the two
always go together). A stack deployed to a region missing here fails on the mapping look-up,
before any function is created; `layer_arn` raises `UnknownRegion` naming the region.

A SnapStart function gets neither (`without_extension`): Lambda gives SnapStart functions
container credentials, not `AWS_SESSION_TOKEN`, and the extension authenticates its callers with
that token, so every read would be refused; such a function reads its parameters with
GetParametersByPath instead.

Source of both tables: "AWS Parameters and Secrets Lambda Extension ARNs" in the Systems Manager
User Guide, https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-integration-lambda-extensions.html
(x86_64 and ARM64 tables, both last updated January 9, 2026). To add a region or move to a newer
version, copy the region's account and versions from there. Every `aws`-partition region of the
x86_64 table has an ARM64 layer. Only the `aws` partition is listed: the stage policies in
`.chalice/` name `arn:aws:` resources, so China and GovCloud need more than a layer.
"""

from __future__ import annotations

import argparse
from typing import Any

LAYER_NAME = "AWS-Parameters-and-Secrets-Lambda-Extension"  # the x86_64 build
LAYER_NAMES = {"x86_64": LAYER_NAME, "arm64": f"{LAYER_NAME}-Arm64"}
# The mapping's second-level key for each architecture's ARN (mapping keys are alphanumeric).
MAPPING_KEYS = {"x86_64": "Arn", "arm64": "Arm64Arn"}
MAPPING = "ParametersSecretsExtension"
PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
PORT = "2773"  # the extension's default port, set explicitly: the app only uses it when set

# region: (the account AWS publishes both layers from there, x86_64 layer version)
REGIONS: dict[str, tuple[str, int]] = {
    "af-south-1": ("317013901791", 24),
    "ap-east-1": ("768336418462", 26),
    "ap-east-2": ("890742577149", 14),
    "ap-northeast-1": ("133490724326", 24),
    "ap-northeast-2": ("738900069198", 24),
    "ap-northeast-3": ("576959938190", 24),
    "ap-south-1": ("176022468876", 24),
    "ap-south-2": ("070087711984", 21),
    "ap-southeast-1": ("044395824272", 24),
    "ap-southeast-2": ("665172237481", 24),
    "ap-southeast-3": ("490737872127", 24),
    "ap-southeast-4": ("090732460067", 14),
    "ap-southeast-5": ("381492012281", 13),
    "ap-southeast-6": ("995508174458", 8),
    "ap-southeast-7": ("941377119484", 12),
    "ca-central-1": ("200266452380", 27),
    "ca-west-1": ("243964427225", 16),
    "eu-central-1": ("187925254637", 24),
    "eu-central-2": ("772501565639", 23),
    "eu-north-1": ("427196147048", 24),
    "eu-south-1": ("325218067255", 24),
    "eu-south-2": ("524103009944", 23),
    "eu-west-1": ("015030872274", 24),
    "eu-west-2": ("133256977650", 24),
    "eu-west-3": ("780235371811", 24),
    "il-central-1": ("148806536434", 16),
    "me-central-1": ("858974508948", 24),
    "me-south-1": ("832021897121", 24),
    "mx-central-1": ("241533131596", 11),
    "sa-east-1": ("933737806257", 24),
    "us-east-1": ("177933569100", 24),
    "us-east-2": ("590474943231", 28),
    "us-west-1": ("997803712105", 24),
    "us-west-2": ("345057560386", 24),
}

# region: arm64 layer version (its own numbering; same account as REGIONS)
ARM64_VERSIONS: dict[str, int] = {
    "af-south-1": 21,
    "ap-east-1": 23,
    "ap-east-2": 10,
    "ap-northeast-1": 24,
    "ap-northeast-2": 21,
    "ap-northeast-3": 21,
    "ap-south-1": 24,
    "ap-south-2": 13,
    "ap-southeast-1": 24,
    "ap-southeast-2": 24,
    "ap-southeast-3": 21,
    "ap-southeast-4": 13,
    "ap-southeast-5": 13,
    "ap-southeast-6": 6,
    "ap-southeast-7": 11,
    "ca-central-1": 24,
    "ca-west-1": 15,
    "eu-central-1": 24,
    "eu-central-2": 15,
    "eu-north-1": 21,
    "eu-south-1": 21,
    "eu-south-2": 15,
    "eu-west-1": 24,
    "eu-west-2": 24,
    "eu-west-3": 21,
    "il-central-1": 15,
    "me-central-1": 13,
    "me-south-1": 21,
    "mx-central-1": 10,
    "sa-east-1": 21,
    "us-east-1": 24,
    "us-east-2": 28,
    "us-west-1": 21,
    "us-west-2": 24,
}


class UnknownRegion(LookupError):
    """No layer of the extension is recorded for a region and architecture."""


def layer_ref(architecture: str = "x86_64") -> dict[str, Any]:
    """What a function's Layers holds: the mapping's ARN for the stack's region."""
    return {"Fn::FindInMap": [MAPPING, {"Ref": "AWS::Region"}, _key(architecture)]}


def layer_arn(region: str, architecture: str = "x86_64") -> str:
    """The extension layer's ARN in region for architecture.

    Raises:
        UnknownRegion: no ARN is recorded for region and architecture.
        ValueError: architecture is neither x86_64 nor arm64.
    """
    name = LAYER_NAMES.get(architecture)
    if name is None:
        raise ValueError(f"architecture {architecture!r}: Lambda runs x86_64 or arm64")
    versions = (
        {r: v for r, (_, v) in REGIONS.items()} if architecture == "x86_64" else ARM64_VERSIONS
    )
    if region not in REGIONS or region not in versions:
        raise UnknownRegion(
            f"no {architecture} layer of {LAYER_NAME} is recorded for region {region!r}: add it "
            "to devkit/extension_layer.py from AWS's table (see its docstring)"
        )
    return f"arn:aws:lambda:{region}:{REGIONS[region][0]}:layer:{name}:{versions[region]}"


def mapping(architectures: tuple[str, ...] = ("x86_64",)) -> dict[str, dict[str, str]]:
    """The CloudFormation mapping: region -> {"Arn": x86_64 ARN, "Arm64Arn": arm64 ARN} for the
    architectures given. A region lacking one of them is left out: its deploy then fails."""
    table = {}
    for region in sorted(REGIONS):
        try:
            table[region] = {_key(a): layer_arn(region, a) for a in sorted(set(architectures))}
        except UnknownRegion:
            continue
    return table


def add_to_template(template: dict[str, Any]) -> int:
    """Give every function in a SAM template the extension layer of the stack's region and of
    its architecture, and the port variable; SnapStart functions get neither (see the module).

    Adds the mapping; a literal ARN of this extension already on a function (a `layers` entry in
    `.chalice/config.json`) is replaced, other layers are kept. Returns how many functions got it.

    Raises:
        ValueError: a function's architecture is not x86_64 or arm64.
    """
    used: set[str] = set()
    count = 0
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        architectures = properties.get("Architectures", ["x86_64"])
        if len(architectures) != 1 or architectures[0] not in LAYER_NAMES:
            raise ValueError(f"{name} runs {architectures}; the extension is x86_64 or arm64")
        if snapstart(properties):
            without_extension(properties)
            continue
        layers = [layer for layer in properties.get("Layers", []) if not _is_extension(layer)]
        properties["Layers"] = [*layers, layer_ref(architectures[0])]
        variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
        variables[PORT_VARIABLE] = PORT
        used.add(architectures[0])
        count += 1
    if used:
        template.setdefault("Mappings", {})[MAPPING] = mapping(tuple(used))
    return count


def snapstart(properties: dict[str, Any]) -> bool:
    """Whether a function's properties turn SnapStart on."""
    return properties.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions"


def without_extension(properties: dict[str, Any]) -> None:
    """Take the extension's layer (literal or mapped) and its port variable off a function."""
    if "Layers" in properties:
        properties["Layers"] = [x for x in properties["Layers"] if not _is_extension(x)]
        if not properties["Layers"]:
            del properties["Layers"]
    properties.get("Environment", {}).get("Variables", {}).pop(PORT_VARIABLE, None)


def _is_extension(layer: Any) -> bool:
    if isinstance(layer, str):
        return any(f":layer:{name}:" in layer for name in LAYER_NAMES.values())
    return isinstance(layer, dict) and layer.get("Fn::FindInMap", [None])[0] == MAPPING


def _key(architecture: str) -> str:
    try:
        return MAPPING_KEYS[architecture]
    except KeyError:
        raise ValueError(f"architecture {architecture!r}: Lambda runs x86_64 or arm64") from None


# The x86_64 functions' entry in Layers.
LAYER_REF = layer_ref()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.extension_layer", description=layer_arn.__doc__
    )
    parser.add_argument("region", choices=sorted(REGIONS), metavar="region")
    parser.add_argument("architecture", nargs="?", default="x86_64", choices=sorted(LAYER_NAMES))
    args = parser.parse_args(argv)
    print(layer_arn(args.region, args.architecture))


if __name__ == "__main__":
    main()
