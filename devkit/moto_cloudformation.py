"""CloudFormation in the moto server, closer to how AWS runs it: SAM's transform, and what a
stack made from Switchboard's template needs that moto 5.2 lacks.

Real CloudFormation expands a template that declares ``Transform: AWS::Serverless-2016-10-31``
(every template ``make package`` writes) with the AWS SAM translator on the service side, when
the change set is created: a template SAM refuses gives a change set in FAILED whose reason
starts "Transform AWS::Serverless-2016-10-31 failed with:", and nothing is created. moto stores
templates as given and does not know the ``AWS::Serverless::*`` types, so without this
``make deploy`` against the local stack could only ever stop at the change set. The translator
is AWS's own package (aws-sam-translator, what CloudFormation's transform runs); managed policy
names are looked up in moto's IAM, as the service looks them up in IAM.

The rest, each as AWS behaves: Cognito user pools, clients and groups made by a stack; a
RestApi made from its Body; a stack made through a change set has the outputs of the template
it applied; executing a change set removes the stack's change sets; a function may use a layer
another account published (AWS's Parameters and Secrets extension is one).
"""

from __future__ import annotations

import json
from typing import Any

SERVERLESS = "AWS::Serverless-2016-10-31"
FAILED = f"Transform {SERVERLESS} failed with: "


class TransformFailed(Exception):
    """SAM refused the template; the message is CloudFormation's StatusReason."""


def declares_sam(template: dict[str, Any]) -> bool:
    """Whether the template asks for the SAM transform (a name or a list of names)."""
    declared = template.get("Transform")
    names = declared if isinstance(declared, list) else [declared]
    return SERVERLESS in names


def expand(
    template: dict[str, Any], parameters: dict[str, str], *, region: str, account: str
) -> dict[str, Any]:
    """The plain CloudFormation template SAM makes of template.

    Raises:
        TransformFailed: SAM refused it, with the reason CloudFormation would give.
    """
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    session = boto3.Session(region_name=region)
    translator = Translator(None, Parser(), boto_session=session)
    values = {"AWS::AccountId": account, "AWS::Region": region, **parameters}
    try:
        return translator.translate(
            json.loads(json.dumps(template)),
            parameter_values=values,
            get_managed_policy_map=lambda: _managed_policies(account),
        )
    except InvalidDocumentException as exc:
        causes = " ".join(cause.message for cause in exc.causes)
        raise TransformFailed(
            f"{FAILED}Invalid Serverless Application Specification document. "
            f"Number of errors found: {len(exc.causes)}. {causes}"
        ) from None


def _managed_policies(account: str) -> dict[str, str]:
    """AWS managed policy names to their ARNs, from moto's IAM (it holds AWS's list)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["global"]
    return {policy.name: policy.arn for policy in backend.managed_policies.values()}


def install() -> None:
    """Run the transform in moto's CreateChangeSet (what `make deploy` uses; CreateStack and
    UpdateStack are left as moto has them), and the rest of the module's fixes."""
    from moto.cloudformation import models

    backend = models.CloudFormationBackend
    if getattr(backend, "_switchboard_sam", False):
        return
    _cognito_models()
    _rest_api_from_body()
    _public_layers()

    def expanded(self: Any, template: str, parameters: dict[str, str]) -> str:
        parsed = models.Stack.parse_template(template)
        if not isinstance(parsed, dict) or not declares_sam(parsed):
            return template
        given = _with_defaults(parsed, parameters)
        result = expand(parsed, given, region=self.region_name, account=self.account_id)
        return json.dumps(result)

    original_change_set = backend.create_change_set

    def create_change_set(self: Any, stack_name: str, change_set_name: str, template: str,
                          parameters: dict[str, str], *args: Any, **kw: Any) -> Any:  # fmt: skip
        try:
            template = expanded(self, template, parameters)
        except TransformFailed as exc:
            # As CloudFormation does: the change set exists, FAILED, with the transform's reason.
            empty = json.dumps({"Resources": {}})
            ids = original_change_set(
                self, stack_name, change_set_name, empty, parameters, *args, **kw
            )
            change_set = self.change_sets[ids[0]]
            change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
            change_set.status_reason = str(exc)
            return ids
        return original_change_set(
            self, stack_name, change_set_name, template, parameters, *args, **kw
        )

    original_execute = backend.execute_change_set

    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original_execute(self, change_set_name, stack_name)
        # moto builds a stack's outputs when the stack is made, which for a change set is before
        # it has a template: build them from the template the change set applied.
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()
        # And, as CloudFormation does, executing one removes every change set of the stack.
        for key in [k for k, c in self.change_sets.items() if c.stack_id == stack.stack_id]:
            del self.change_sets[key]

    backend.create_change_set = create_change_set
    backend.execute_change_set = execute_change_set
    backend._switchboard_sam = True


def _with_defaults(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """The stack's parameter values: those given, else each parameter's Default."""
    values = {
        name: str(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    return {**values, **given}


def _cognito_models() -> None:
    """Teach moto's CloudFormation the Cognito user pool, its client and group (moto 5.2 has
    the API but no CloudFormation support for them), with what the service gives back: Ref is
    the pool's id, the client's id, the group's name; GetAtt Arn and ProviderName/ProviderURL."""
    from moto.cloudformation import parsing
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.core.common_models import CloudFormationModel

    def backend(account: str, region: str) -> Any:
        return cognitoidp_backends[account][region]

    class UserPool(CloudFormationModel):
        def __init__(self, pool: Any) -> None:
            self.pool = pool

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Cognito::UserPool"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "UserPoolName"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Arn", "ProviderName", "ProviderURL", "UserPoolId")

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any,
        ) -> UserPool:  # fmt: skip
            properties = dict(cloudformation_json.get("Properties") or {})
            name = properties.pop("UserPoolName", resource_name)
            return cls(backend(account_id, region_name).create_user_pool(name, properties))

        @classmethod
        def delete_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
        ) -> None:
            backend(account_id, region_name).delete_user_pool(resource_name)

        @property
        def physical_resource_id(self) -> str:
            return self.pool.id

        def get_cfn_attribute(self, attribute_name: str) -> str:
            provider = f"cognito-idp.{self.pool.region}.amazonaws.com/{self.pool.id}"
            return {
                "Arn": self.pool.arn,
                "ProviderName": provider,
                "ProviderURL": f"https://{provider}",
                "UserPoolId": self.pool.id,
            }[attribute_name]

    class UserPoolClient(CloudFormationModel):
        def __init__(self, client: Any) -> None:
            self.client = client

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Cognito::UserPoolClient"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "ClientName"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("ClientId", "Name")

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any,
        ) -> UserPoolClient:  # fmt: skip
            properties = dict(cloudformation_json.get("Properties") or {})
            pool = properties.pop("UserPoolId")
            secret = bool(properties.pop("GenerateSecret", False))
            properties.setdefault("ClientName", resource_name)
            made = backend(account_id, region_name).create_user_pool_client(
                pool, secret, properties
            )
            return cls(made)

        @property
        def physical_resource_id(self) -> str:
            return self.client.id

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return {"ClientId": self.client.id, "Name": self.client.extended_config["ClientName"]}[
                attribute_name
            ]

    class UserPoolGroup(CloudFormationModel):
        def __init__(self, group: Any) -> None:
            self.group = group

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Cognito::UserPoolGroup"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "GroupName"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str,
            region_name: str, **kwargs: Any,
        ) -> UserPoolGroup:  # fmt: skip
            p = cloudformation_json.get("Properties") or {}
            made = backend(account_id, region_name).create_group(
                p["UserPoolId"], p.get("GroupName", resource_name), p.get("Description"),
                p.get("RoleArn"), p.get("Precedence"),
            )  # fmt: skip
            return cls(made)

        @property
        def physical_resource_id(self) -> str:
            return self.group.group_name

    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _rest_api_from_body() -> None:
    """A RestApi given as a Body (how Chalice writes it) is imported from that body, as API
    Gateway does: its name from the title, its paths, methods and integrations. moto 5.2 needs
    Name and imports only OpenAPI 3; the parts of Swagger 2.0 it reads (paths, methods, the
    x-amazon-apigateway-integration) are the same in both, so the body is handed over as 3.0."""
    from moto.apigateway.models import RestAPI, apigateway_backends

    original = RestAPI.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kw: Any
    ) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        body = properties.get("Body")
        if "Name" in properties or not isinstance(body, dict):
            return original(cls, resource_name, cloudformation_json, *args, **kw)
        account, region = args[0], args[1]
        document = {k: v for k, v in body.items() if k != "swagger"}
        document["openapi"] = "3.0.1"
        document["info"] = {"description": "", **(body.get("info") or {})}
        document["info"].setdefault("title", resource_name)
        return apigateway_backends[account][region].import_rest_api(document, False)

    RestAPI.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign]


def _public_layers() -> None:
    """A layer version another account published resolves as AWS resolves a public one (moto
    5.2 looks every layer up in the function's own account and refuses the rest on update)."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction._get_layers_data

    def layers(self: Any, arns: list[str]) -> list[dict[str, Any]]:
        own = [arn for arn in arns if arn.split(":")[4] == self.account_id]
        found = {item["Arn"]: item for item in original(self, own)} if own else {}
        return [found.get(arn) or {"Arn": arn, "CodeSize": 0} for arn in arns]

    LambdaFunction._get_layers_data = layers  # type: ignore[method-assign]
