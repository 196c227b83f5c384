"""The softphone's user pool: the packaged authorizer pointed at it, and the local stack's copy.

Chalice writes a Cognito authorizer's provider ARNs into the API definition as given in app.py,
and the pool only exists once the merged template creates it. `make package` replaces them with
the pool's Fn::GetAtt. The local stack creates the same pool, app client and group in the moto
server, with a demo user (an obviously fake password, printed by `make run`).
"""

from __future__ import annotations

from typing import Any

POOL = "SoftphoneUserPool"
GROUP = "softphone"  # chalicelib/browser/tokens.py GROUP
DEMO_USER = "alice"
DEMO_PASSWORD = "Local-demo-password-1"  # the local stack's fake user; never a real one


def add_to_template(template: dict[str, Any]) -> int:
    """Point every Cognito authorizer of the API at the stage's pool; how many there were.

    Raises:
        RuntimeError: the template declares no pool, or the API no Cognito authorizer.
    """
    if POOL not in template.get("Resources", {}):
        raise RuntimeError(f"the merged template declares no {POOL}")
    body = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    found = 0
    for scheme in body.get("securityDefinitions", {}).values():
        authorizer = scheme.get("x-amazon-apigateway-authorizer", {})
        if authorizer.get("type") == "cognito_user_pools":
            authorizer["providerARNs"] = [{"Fn::GetAtt": [POOL, "Arn"]}]
            found += 1
    if not found:
        raise RuntimeError("the API has no Cognito authorizer for the softphone")
    return found


def create_local(client: Any, stage: str) -> dict[str, str]:
    """The pool, app client, group and demo user in the moto server; their ids."""
    pool = client.create_user_pool(
        PoolName=f"switchboard-{stage}-softphone",
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]
    app_client = client.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName=f"switchboard-{stage}-softphone-page",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    client.create_group(UserPoolId=pool["Id"], GroupName=GROUP)
    add_user(client, pool["Id"], DEMO_USER, DEMO_PASSWORD, permanent=True)
    return {"pool_id": pool["Id"], "pool_arn": pool["Arn"], "client_id": app_client["ClientId"]}


def add_user(
    client: Any, pool_id: str, username: str, password: str, *, permanent: bool = False
) -> None:
    """A softphone user: created with password, in the group. Not permanent, Cognito asks for
    a new password at the first sign-in (the page shows that step)."""
    client.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        TemporaryPassword=password,
        MessageAction="SUPPRESS",  # the owner hands the password over; Cognito mails nothing
    )
    if permanent:
        client.admin_set_user_password(
            UserPoolId=pool_id, Username=username, Password=password, Permanent=True
        )
    client.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=GROUP)


def sign_in(cognito_url: str, client_id: str, username: str, password: str) -> dict[str, Any]:
    """InitiateAuth (USER_PASSWORD_AUTH) as the softphone page sends it: unsigned JSON, no AWS
    credentials; Cognito's answer (tokens, a challenge, or an error's __type and message)."""
    import requests

    return requests.post(
        cognito_url,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
        },
        json={
            "AuthFlow": "USER_PASSWORD_AUTH",
            "ClientId": client_id,
            "AuthParameters": {"USERNAME": username, "PASSWORD": password},
        },
        timeout=10,
    ).json()
