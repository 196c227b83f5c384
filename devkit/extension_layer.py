"""The AWS Parameters and Secrets Lambda Extension layer, by region, for the packaged template.

    python -m devkit.extension_layer eu-west-1     (prints that region's layer ARN)

A Lambda layer must be in its function's region, and AWS publishes this extension from a
different account in each region, with its own layer version there. `devkit/package.py` puts
`REGIONS` into the SAM template as the `ParametersSecretsExtension` mapping and gives every
function the layer `Fn::FindInMap` picks for `AWS::Region`, with
`PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` beside it (the app reads parameters through the
extension only when that variable is set, so the two always go together). A stack deployed to a
region missing here fails on the mapping look-up, before any function is created.

To add a region or move to a newer version: copy the region's x86_64 ARN from AWS's table
("AWS Parameters and Secrets Lambda Extension ARNs" in the Systems Manager User Guide,
https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-integration-lambda-extensions.html)
into `REGIONS` as (account, version). The versions below are that table's, last updated
January 9, 2026. Only the `aws` partition is listed: the stage policies in `.chalice/` name
`arn:aws:` resources, so China and GovCloud need more than a layer.
"""

from __future__ import annotations

import argparse
from typing import Any

LAYER_NAME = "AWS-Parameters-and-Secrets-Lambda-Extension"  # the x86_64 build
MAPPING = "ParametersSecretsExtension"
PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
PORT = "2773"  # the extension's default port, set explicitly: the app only uses it when set

# region: (the account AWS publishes the layer from there, layer version)
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

# What every function's Layers holds: the mapping's ARN for the stack's region.
LAYER_REF = {"Fn::FindInMap": [MAPPING, {"Ref": "AWS::Region"}, "Arn"]}


def layer_arn(region: str) -> str:
    """The extension layer's ARN in region.

    Raises:
        KeyError: no ARN is known for region.
    """
    account, version = REGIONS[region]
    return f"arn:aws:lambda:{region}:{account}:layer:{LAYER_NAME}:{version}"


def mapping() -> dict[str, dict[str, str]]:
    """The CloudFormation mapping: region -> {"Arn": layer ARN}."""
    return {region: {"Arn": layer_arn(region)} for region in sorted(REGIONS)}


def add_to_template(template: dict[str, Any]) -> int:
    """Give every function in a SAM template the region's extension layer and its port variable.

    Adds the mapping; a literal ARN of this extension already on a function (a `layers` entry in
    `.chalice/config.json`) is replaced, other layers are kept. Returns how many functions.

    Raises:
        ValueError: a function is not x86_64 (the layers mapped here are the x86_64 build).
    """
    template.setdefault("Mappings", {})[MAPPING] = mapping()
    count = 0
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        if properties.get("Architectures", ["x86_64"]) != ["x86_64"]:
            raise ValueError(f"{name} is not x86_64; {MAPPING} holds the x86_64 layers")
        layers = [
            layer
            for layer in properties.get("Layers", [])
            if not (isinstance(layer, str) and f":layer:{LAYER_NAME}:" in layer)
        ]
        properties["Layers"] = [*layers, LAYER_REF]
        variables = properties.setdefault("Environment", {}).setdefault("Variables", {})
        variables[PORT_VARIABLE] = PORT
        count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.extension_layer", description=layer_arn.__doc__
    )
    parser.add_argument("region", choices=sorted(REGIONS), metavar="region")
    print(layer_arn(parser.parse_args(argv).region))


if __name__ == "__main__":
    main()
