"""A stage's packaging options (arm64, SnapStart), without packaging (test_package.py packages)."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from devkit import package
from tests.functional.devkit.test_package import ROOT


@pytest.fixture
def project(tmp_path):
    """A copy of the project's Chalice config, to set options in."""
    (tmp_path / ".chalice").mkdir()
    shutil.copy(ROOT / ".chalice" / "config.json", tmp_path / ".chalice" / "config.json")

    def configure(**stage_keys):
        path = tmp_path / ".chalice" / "config.json"
        config = json.loads(path.read_text())
        config["stages"]["prod"].update(stage_keys)
        path.write_text(json.dumps(config))
        return tmp_path

    return configure


def test_both_options_are_off_unless_a_stage_sets_them(project):
    path = project()
    assert package.Options.of("prod", path) == package.Options("x86_64", snapstart=False)
    assert package.Options.of("dev", ROOT) == package.Options("x86_64", snapstart=False)
    assert package.Options.of("prod", ROOT) == package.Options("x86_64", snapstart=False)
    path = project(lambda_architecture="arm64", snapstart=True)
    assert package.Options.of("prod", path) == package.Options("arm64", snapstart=True)
    assert package.Options.of("dev", path) == package.Options("x86_64", snapstart=False)


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"lambda_architecture": "aarch64"}, "lambda_architecture"),
        ({"snapstart": "yes"}, "snapstart"),
    ],
)
def test_a_bad_option_value_is_refused(project, keys, named):
    with pytest.raises(package.PackagingError, match=named):
        package.Options.of("prod", project(**keys))


def test_snapstart_below_python_3_12_fails_with_cause_and_fix():
    options = package.Options(snapstart=True)
    with pytest.raises(package.PackagingError) as failure:
        options.check_python("prod", (3, 11, 7))
    message = str(failure.value)
    assert "\n" not in message
    assert "python3.12" in message and "python3.11" in message  # the cause
    assert "package with Python 3.12+" in message and '"snapstart"' in message  # the fixes
    for version in ((3, 12, 0), (3, 13, 0)):
        options.check_python("prod", version)
    package.Options(snapstart=False).check_python("prod", (3, 11, 7))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="this Python can run SnapStart")
def test_this_python_refuses_snapstart_before_anything_is_built(project, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(package.PackagingError, match="SnapStart"):
        package.build("prod", out, project(snapstart=True))
    assert not out.exists()  # chalice never ran


def _template(runtime: str = "python3.13") -> dict:
    uri = "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"

    def integration():
        return {"uri": {"Fn::Sub": uri + "${APIHandler.Arn}/invocations"}}

    return {
        "Resources": {
            "APIHandler": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Runtime": runtime, "Layers": ["arn:aws:lambda:x:1:layer:other:1"]},
            },
            "RestAPI": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "DefinitionBody": {
                        "paths": {
                            "/a": {"get": {"x-amazon-apigateway-integration": integration()}},
                            "/b": {"post": {"x-amazon-apigateway-integration": integration()}},
                        }
                    }
                },
            },
            "APIHandlerInvokePermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {"FunctionName": {"Ref": "APIHandler"}},
            },
            "Other": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {"FunctionName": {"Ref": "SendWorker"}},
            },
        }
    }


def test_snapstart_puts_the_handler_behind_an_alias_that_api_gateway_invokes():
    template = _template()
    assert package.enable_snapstart(template) == 3
    resources = template["Resources"]
    properties = resources["APIHandler"]["Properties"]
    assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert properties["AutoPublishAlias"] == "live"
    assert properties["AutoPublishAliasAllProperties"] is True
    assert properties["VersionDeletionPolicy"] == "Delete"
    assert properties["Layers"] == ["arn:aws:lambda:x:1:layer:other:1"]
    for path in resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"].values():
        for operation in path.values():
            text, variables = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert text.endswith("/functions/${APIHandlerAlias}/invocations")
            assert variables == {"APIHandlerAlias": {"Ref": "APIHandler.Alias"}}
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {
        "Ref": "APIHandler.Alias"
    }
    assert resources["Other"]["Properties"]["FunctionName"] == {"Ref": "SendWorker"}


@pytest.mark.parametrize("runtime", ["python3.11", "python3.9", "nodejs22.x", ""])
def test_snapstart_refuses_a_runtime_without_it(runtime):
    with pytest.raises(ValueError, match=r"python3\.12 or newer"):
        package.enable_snapstart(_template(runtime))


def test_snapstart_refuses_a_handler_nothing_invokes():
    template = _template()
    del template["Resources"]["RestAPI"], template["Resources"]["APIHandlerInvokePermission"]
    with pytest.raises(ValueError, match="invokes APIHandler"):
        package.enable_snapstart(template)
