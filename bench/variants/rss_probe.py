"""Steps that load the heavy pieces one at a time, so the memory section can say what each costs."""

from __future__ import annotations

from typing import Any

_clients: dict[str, Any] = {}


def import_chalice(event: Any, context: Any) -> None:
    import chalice  # noqa: F401


def import_botocore(event: Any, context: Any) -> None:
    import botocore.session  # noqa: F401


def client(event: Any, context: Any) -> None:
    """A botocore client for event["service"] as the app builds them (one session), kept alive."""
    import botocore.session

    if "session" not in _clients:
        _clients["session"] = botocore.session.get_session()
    _clients[event["service"]] = _clients["session"].create_client(event["service"])


def import_boto3(event: Any, context: Any) -> None:
    import boto3  # noqa: F401


def resource(event: Any, context: Any) -> None:
    """A boto3 resource and one Table of it, as the quickstart builds at module scope."""
    import boto3

    _clients["resource"] = boto3.resource(event["service"]).Table("switchboard-dev")


def import_twilio_rest(event: Any, context: Any) -> None:
    import twilio.rest  # noqa: F401


def twilio_client(event: Any, context: Any) -> None:
    from twilio.rest import Client

    # Obviously fake credentials: building the client and its Messages list makes no request.
    _clients["twilio"] = Client("AC" + "0" * 31 + "1", "local-demo-auth-token-not-a-secret")
    _clients["twilio"].messages  # noqa: B018  (the API domain and version load lazily)
