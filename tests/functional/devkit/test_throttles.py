"""Per-method API Gateway throttles, written from the packaged API definition."""

from __future__ import annotations

import json

from devkit import throttles
from tests.functional.devkit.test_package import ROOT

DEFINITION = {
    "paths": {
        "/voice": {"get": {}, "post": {}},
        "/status/messages": {"post": {}},
        "/twimlets/{name}": {"get": {}, "post": {}},
        "/messages": {"post": {"security": [{"sigv4": []}]}, "options": {}},
        "/messages/{id}": {"get": {"security": [{"sigv4": []}]}},
    }
}


def test_each_method_gets_the_limits_of_its_kind_of_route():
    settings = {
        (s["ResourcePath"], s["HttpMethod"]): (
            s["ThrottlingRateLimit"]["Ref"],
            s["ThrottlingBurstLimit"]["Ref"],
        )
        for s in throttles.method_settings(DEFINITION)
    }
    webhook, twimlet, api = "Webhook", "Twimlet", "Api"
    assert settings == {
        ("/~1voice", "GET"): (f"{webhook}RateLimit", f"{webhook}BurstLimit"),
        ("/~1voice", "POST"): (f"{webhook}RateLimit", f"{webhook}BurstLimit"),
        ("/~1status~1messages", "POST"): (f"{webhook}RateLimit", f"{webhook}BurstLimit"),
        ("/~1twimlets~1{name}", "GET"): (f"{twimlet}RateLimit", f"{twimlet}BurstLimit"),
        ("/~1twimlets~1{name}", "POST"): (f"{twimlet}RateLimit", f"{twimlet}BurstLimit"),
        ("/~1messages", "POST"): (f"{api}RateLimit", f"{api}BurstLimit"),
        ("/~1messages~1{id}", "GET"): (f"{api}RateLimit", f"{api}BurstLimit"),
    }


def test_every_limit_is_a_template_parameter_with_a_default():
    parameters = json.loads((ROOT / "infra" / "resources.json").read_text())["Parameters"]
    for rate, burst in throttles.CLASSES.values():
        assert parameters[rate]["Default"] <= parameters[burst]["Default"]
        assert parameters[rate]["MinValue"] == parameters[burst]["MinValue"] == 1
