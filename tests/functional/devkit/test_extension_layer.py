"""Every packaged function gets the Parameters and Secrets extension layer of its stack's region.

The layer comes from a CloudFormation mapping keyed by `AWS::Region`; `resolve` below does what
CloudFormation does with it, so one template is checked as deployed to us-east-1 and eu-west-1.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess

import pytest

from devkit import extension_layer
from tests.functional.devkit import test_package
from tests.functional.devkit.test_package import BIN, ROOT

# test_packaging's fixture: the package of each stage as `make package` builds it.
package = test_package.package

FUNCTIONS = {"APIHandler", "SendWorker", "DispatchDue", "ReconcileSending"}
# The accounts AWS publishes the x86_64 layer from, written out here rather than read from
# devkit/extension_layer.py, so a wrong table entry fails.
ACCOUNTS = {"us-east-1": "177933569100", "eu-west-1": "015030872274"}
LAYER = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"layer:AWS-Parameters-and-Secrets-Lambda-Extension:(?P<version>[1-9]\d*)$"
)
PORT = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
LOOKUP = {"Fn::FindInMap": ["ParametersSecretsExtension", {"Ref": "AWS::Region"}, "Arn"]}


def resolve(template: dict, value, region: str):
    """value as CloudFormation deploys it in region: `Ref AWS::Region` and `Fn::FindInMap`.

    Other intrinsics stay as they are. A region or key missing from the mapping raises KeyError,
    as `Fn::FindInMap` fails the deploy; a fourth (default value) argument raises ValueError.
    """
    if isinstance(value, list):
        return [resolve(template, item, region) for item in value]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": "AWS::Region"}:
        return region
    if list(value) == ["Fn::FindInMap"]:
        name, key, second = (resolve(template, item, region) for item in value["Fn::FindInMap"])
        return template["Mappings"][name][key][second]
    return {key: resolve(template, item, region) for key, item in value.items()}


def _functions(packaged) -> tuple[dict, dict[str, dict]]:
    _, out = packaged
    template = json.loads((out / "sam.json").read_text())
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    return template, functions


def _extension_layers(layers: list) -> list[str]:
    return [layer for layer in layers if "AWS-Parameters-and-Secrets-Lambda-Extension" in layer]


@pytest.mark.slow
@pytest.mark.parametrize("region", sorted(ACCOUNTS))
def test_every_function_gets_the_layer_of_its_region(package, region):
    template, functions = _functions(package)
    assert set(functions) == FUNCTIONS
    for name, properties in functions.items():
        layers = resolve(template, properties["Layers"], region)
        (arn,) = _extension_layers(layers)
        match = LAYER.match(arn)
        assert match, (name, arn)
        assert match["region"] == region, (name, arn)
        assert match["account"] == ACCOUNTS[region], (name, arn)
        assert arn == extension_layer.layer_arn(region)


@pytest.mark.slow
def test_the_layer_is_looked_up_by_region_with_no_fallback(package):
    template, functions = _functions(package)
    for name, properties in functions.items():
        assert LOOKUP in properties["Layers"], name
        # No literal ARN of the extension: it would be some one region's.
        assert not _extension_layers([x for x in properties["Layers"] if isinstance(x, str)])
    # A region the mapping does not list fails the deploy rather than getting another's layer.
    assert "AWS::LanguageExtensions" not in str(template.get("Transform"))  # no default values
    with pytest.raises(KeyError):
        resolve(template, LOOKUP, "xx-nowhere-1")


@pytest.mark.slow
@pytest.mark.parametrize("region", sorted(ACCOUNTS))
def test_the_port_variable_comes_with_the_layer(package, region):
    # The app reads parameters through the extension whenever the variable is set: without the
    # layer beside it every webhook would fail.
    template, functions = _functions(package)
    for name, properties in functions.items():
        deployed = resolve(template, properties, region)
        assert len(_extension_layers(deployed["Layers"])) == 1, name
        assert deployed["Environment"]["Variables"][PORT] == "2773", name


@pytest.mark.slow
def test_cfn_lint_passes_in_both_regions(package):
    _, out = package
    result = subprocess.run(
        [BIN / "cfn-lint", "--regions", *sorted(ACCOUNTS), "--", out / "sam.json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_chalice_config_sets_the_layer_and_its_variable_together_or_neither(stage):
    # `chalice deploy` takes both from the stage's config; the package replaces both.
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]
    layered = bool(_extension_layers(config.get("layers", [])))
    assert layered == (PORT in config.get("environment_variables", {}))


def test_every_mapped_arn_names_its_own_region():
    assert set(ACCOUNTS) <= set(extension_layer.REGIONS)
    for region in extension_layer.REGIONS:
        match = LAYER.match(extension_layer.layer_arn(region))
        assert match, region
        assert match["region"] == region
    for region, account in ACCOUNTS.items():
        assert extension_layer.REGIONS[region][0] == account


def test_a_literal_extension_arn_is_replaced_and_other_layers_kept():
    old = f"arn:aws:lambda:us-east-1:177933569100:layer:{extension_layer.LAYER_NAME}:11"
    other = "arn:aws:lambda:eu-west-1:123456789012:layer:other:3"
    function = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Layers": [old, other], "Environment": {"Variables": {"A": "1"}}},
    }
    template = {"Resources": {"Fn": function, "Queue": {"Type": "AWS::SQS::Queue"}}}
    assert extension_layer.add_to_template(template) == 1
    properties = template["Resources"]["Fn"]["Properties"]
    assert properties["Layers"] == [other, LOOKUP]
    assert properties["Environment"]["Variables"] == {"A": "1", PORT: "2773"}
    assert resolve(template, properties["Layers"], "eu-west-1")[1].startswith(
        "arn:aws:lambda:eu-west-1:015030872274:"
    )
    other_arch = copy.deepcopy(function)
    other_arch["Properties"]["Architectures"] = ["ppc64le"]
    with pytest.raises(ValueError, match="x86_64 or arm64"):
        extension_layer.add_to_template({"Resources": {"Fn": other_arch}})


# The arm64 layers' versions, from the same table (AWS numbers them apart from the x86_64 ones),
# written out here rather than read from devkit/extension_layer.py.
ARM64 = {
    "us-east-1": "arn:aws:lambda:us-east-1:177933569100:layer:"
    "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:24",
    "eu-west-3": "arn:aws:lambda:eu-west-3:780235371811:layer:"
    "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:21",
}
ARM64_LOOKUP = {"Fn::FindInMap": ["ParametersSecretsExtension", {"Ref": "AWS::Region"}, "Arm64Arn"]}


def test_arm64_functions_get_the_arm64_layer_of_their_region():
    x86 = {"Type": "AWS::Serverless::Function", "Properties": {"Architectures": ["x86_64"]}}
    arm = {"Type": "AWS::Serverless::Function", "Properties": {"Architectures": ["arm64"]}}
    literal = f"arn:aws:lambda:us-east-1:177933569100:layer:{extension_layer.LAYER_NAME}-Arm64:3"
    arm["Properties"]["Layers"] = [literal]
    template = {"Resources": {"Arm": arm, "X86": x86}}
    assert extension_layer.add_to_template(template) == 2
    assert arm["Properties"]["Layers"] == [ARM64_LOOKUP]  # the literal one replaced
    assert x86["Properties"]["Layers"] == [LOOKUP]
    for region, arn in ARM64.items():
        assert resolve(template, ARM64_LOOKUP, region) == arn
        assert extension_layer.layer_arn(region, "arm64") == arn
        assert resolve(template, LOOKUP, region) == extension_layer.layer_arn(region)
    # Only the architectures used are mapped.
    alone = {"Resources": {"Fn": copy.deepcopy(x86)}}
    extension_layer.add_to_template(alone)
    assert {
        key for arns in alone["Mappings"]["ParametersSecretsExtension"].values() for key in arns
    } == {"Arn"}


def test_every_region_has_both_layers_from_one_account():
    assert set(extension_layer.ARM64_VERSIONS) == set(extension_layer.REGIONS)
    for region, (account, _) in extension_layer.REGIONS.items():
        arn = extension_layer.layer_arn(region, "arm64")
        assert arn.startswith(f"arn:aws:lambda:{region}:{account}:layer:"), arn
        assert arn.split(":")[-2] == "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64"


def test_an_unknown_region_is_a_clear_error():
    for architecture in ("x86_64", "arm64"):
        with pytest.raises(extension_layer.UnknownRegion, match=r"'xx-nowhere-1'.*add it"):
            extension_layer.layer_arn("xx-nowhere-1", architecture)
    with pytest.raises(ValueError, match="x86_64 or arm64"):
        extension_layer.layer_arn("us-east-1", "ppc64le")


def test_a_snapstart_function_gets_no_extension():
    # SnapStart functions have no AWS_SESSION_TOKEN, which the extension requires of callers.
    literal = f"arn:aws:lambda:us-east-1:177933569100:layer:{extension_layer.LAYER_NAME}:11"
    snap = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "SnapStart": {"ApplyOn": "PublishedVersions"},
            "Layers": [literal],
            "Environment": {"Variables": {PORT: "2773", "A": "1"}},
        },
    }
    plain = {"Type": "AWS::Serverless::Function", "Properties": {}}
    template = {"Resources": {"Snap": snap, "Plain": plain}}
    assert extension_layer.add_to_template(template) == 1
    assert "Layers" not in snap["Properties"]
    assert snap["Properties"]["Environment"]["Variables"] == {"A": "1"}
    assert plain["Properties"]["Layers"] == [LOOKUP]
