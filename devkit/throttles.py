"""Method-level API Gateway throttles, one class of limits per kind of route.

API Gateway applies a stage's throttle to each method on its own ("Per-API, per-stage
throttling limits are applied at the API method level for a stage"), so a flood on one route
never throttles another; what a route needs is its own numbers. Twilio's webhooks (status
callbacks follow a broadcast's send rate), the twimlets and the JSON API get a template
parameter pair each, written per method from the packaged API definition, so a route added to
app.py is covered without editing this file.
"""

from __future__ import annotations

from typing import Any

# class: (rate parameter, burst parameter)
CLASSES = {
    "webhooks": ("WebhookRateLimit", "WebhookBurstLimit"),
    "twimlets": ("TwimletRateLimit", "TwimletBurstLimit"),
    "api": ("ApiRateLimit", "ApiBurstLimit"),
}


def route_class(path: str, operation: dict[str, Any]) -> str:
    """Which limits a method gets: authorised routes are the API; the rest are Twilio's."""
    if operation.get("security"):
        return "api"
    if path.startswith("/twimlets/"):
        return "twimlets"
    return "webhooks"


def resource_path(path: str) -> str:
    """API Gateway's form of a path in method settings: each "/" as "~1" after a leading "/"."""
    return "/" + path.replace("/", "~1")


def method_settings(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """One MethodSettings entry per method of the API definition (CORS preflights excepted)."""
    settings = []
    for path, operations in sorted(definition.get("paths", {}).items()):
        for method, operation in sorted(operations.items()):
            if method in ("options", "x-amazon-apigateway-any-method") or not isinstance(
                operation, dict
            ):
                continue
            rate, burst = CLASSES[route_class(path, operation)]
            settings.append(
                {
                    "ResourcePath": resource_path(path),
                    "HttpMethod": method.upper(),
                    "ThrottlingRateLimit": {"Ref": rate},
                    "ThrottlingBurstLimit": {"Ref": burst},
                }
            )
    return settings


def add_to_template(template: dict[str, Any], api: str = "RestAPI") -> int:
    """Append the per-method throttles to the API's stage settings; returns how many."""
    properties = template["Resources"][api]["Properties"]
    settings = method_settings(properties["DefinitionBody"])
    properties.setdefault("MethodSettings", []).extend(settings)
    return len(settings)
