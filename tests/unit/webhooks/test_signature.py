"""Rebuilding the signed URL from API Gateway events and checking X-Twilio-Signature."""

import pytest
from twilio.request_validator import RequestValidator

from chalicelib.webhooks.signature import (
    MAX_BODY_BYTES,
    MAX_FIELDS,
    Params,
    SignatureError,
    TooLargeError,
    parse_form,
    verify,
)
from chalicelib.webhooks.urls import (
    base_urls,
    candidate_urls,
    encode_query,
    query_variants,
    route_path,
)
from devkit.events import rest_event, twilio_event

TOKEN = "12345"
ROUTES = ["/voice", "/sms", "/twimlets/{name}"]
EXECUTE_API = "https://abc123defg.execute-api.us-east-1.amazonaws.com"


class Headers(dict):
    """Case-insensitive lookup like Chalice's request headers."""

    def get(self, key, default=None):
        for name, value in self.items():
            if name.lower() == key.lower():
                return value
        return default


def check(event, token=TOKEN, public_url=None):
    body = (event["body"] or "").encode()
    if event["isBase64Encoded"]:
        import base64

        body = base64.b64decode(event["body"])
    return verify(event, Headers(event["headers"]), body, token, public_url)


def test_known_vector_from_twilio_docs():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    pinned = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator(TOKEN).compute_signature(url, params) == pinned
    event = twilio_event(url, params, auth_token=TOKEN, routes=["/myapp.php"], signature=pinned)
    assert check(event).url == url
    with pytest.raises(SignatureError):
        check(event, token="54321")


def test_route_path_fills_parameters():
    context = {"resourcePath": "/twimlets/{name}"}
    assert route_path(context, {"name": "forward"}) == "/twimlets/forward"
    assert route_path({"resourcePath": "/voice"}, None) == "/voice"


@pytest.mark.parametrize(
    ("url", "base_path", "expected"),
    [
        (f"{EXECUTE_API}/api/voice", "", [f"{EXECUTE_API}/api/voice"]),
        ("https://voice.example.com/tel/voice", "/tel", ["https://voice.example.com/tel/voice"]),
        ("https://voice.example.com/voice", "", ["https://voice.example.com/voice"]),
    ],
)
def test_base_url_from_event(url, base_path, expected):
    event = rest_event("POST", url, routes=ROUTES, base_path=base_path)
    assert base_urls(event, None) == expected


def test_public_url_comes_first_and_local_events_need_it():
    event = rest_event("POST", "http://127.0.0.1:8000/voice", routes=ROUTES, local=True)
    assert base_urls(event, None) == []
    assert base_urls(event, "http://127.0.0.1:8000") == ["http://127.0.0.1:8000/voice"]
    event = rest_event("POST", f"{EXECUTE_API}/api/voice", routes=ROUTES)
    assert base_urls(event, "https://voice.example.com") == [
        "https://voice.example.com/voice",
        f"{EXECUTE_API}/api/voice",
    ]


def test_canonical_encoding():
    pairs = [("PhoneNumbers[0]", "+1 510-555"), ("Message", "Hi there!"), ("FailUrl", "")]
    assert encode_query(pairs) == "PhoneNumbers%5B0%5D=%2B1+510-555&Message=Hi+there%21&FailUrl="


def test_query_variants_cover_usual_encodings():
    variants = query_variants({"Message[0]": ["Hello World"], "Email": ["a@b.com"]})
    assert variants[0] == "Message%5B0%5D=Hello+World&Email=a%40b.com"
    assert "Message[0]=Hello%20World&Email=a@b.com" in variants
    assert "Message%5B0%5D=Hello%20World&Email=a%40b.com" in variants
    assert query_variants(None) == [""]


def test_candidate_urls_without_query():
    event = rest_event("POST", f"{EXECUTE_API}/api/voice", routes=ROUTES)
    assert candidate_urls(event, None) == [f"{EXECUTE_API}/api/voice"]


@pytest.mark.parametrize(
    "query",
    [
        "Message%5B0%5D=Hello%20World",
        "Message[0]=Hello+World",
        "Message%5B0%5D=Hello+World",
        "Message[0]=Hello%20World",
        "PhoneNumber=%2B15105551212",
        "PhoneNumber=+15105551212",  # raw "+" arrives as a space
        "Email=someone%40example.com&Transcribe=true",
        "Email=someone@example.com&Transcribe=true",
        "FailUrl=&Timeout=20",
        "FailUrl=https://example.com/fail?x=1",  # a raw "=" after a value's first is unambiguous
        "FailUrl=https%3A%2F%2Fexample.com%2Ffail",
    ],
)
def test_query_string_encodings_validate(query):
    url = f"{EXECUTE_API}/api/twimlets/forward?{query}"
    event = twilio_event(url, {"CallSid": "CA1"}, auth_token=TOKEN, routes=ROUTES)
    assert check(event).url == url


def test_blank_and_repeated_form_fields_are_signed():
    params = [("FromZip", ""), ("MediaUrl", "https://a"), ("MediaUrl", "https://b"), ("To", "+1")]
    event = twilio_event(f"{EXECUTE_API}/api/sms", params, auth_token=TOKEN, routes=ROUTES)
    verified = check(event)
    assert verified.form.getall("MediaUrl") == ["https://a", "https://b"]
    assert verified.form.get("FromZip") == ""


def test_dropping_a_blank_field_breaks_the_signature():
    event = twilio_event(
        f"{EXECUTE_API}/api/sms", [("FromZip", ""), ("To", "+1")], auth_token=TOKEN, routes=ROUTES
    )
    event["body"] = "To=%2B1"
    with pytest.raises(SignatureError, match="does not match"):
        check(event)


def test_base64_body():
    event = twilio_event(
        f"{EXECUTE_API}/api/voice",
        {"CallSid": "CA1"},
        auth_token=TOKEN,
        routes=ROUTES,
        base64_body=True,
    )
    assert check(event).form.get("CallSid") == "CA1"


def test_explicit_port_443_in_signed_url():
    url = f"{EXECUTE_API}/api/voice"
    signed = RequestValidator(TOKEN).compute_signature(
        url.replace(".com/", ".com:443/"), {"CallSid": "CA1"}
    )
    event = twilio_event(url, {"CallSid": "CA1"}, auth_token=TOKEN, routes=ROUTES, signature=signed)
    assert check(event)


def test_json_body_with_body_sha256():
    import hashlib

    body = '{"event": "x"}'
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"{EXECUTE_API}/api/voice?bodySHA256={digest}"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    event = rest_event("POST", url, routes=ROUTES, body=body, headers=headers)
    assert check(event)
    event["body"] = '{"event": "tampered"}'
    with pytest.raises(SignatureError):
        check(event)


def test_json_body_without_hash_is_refused():
    url = f"{EXECUTE_API}/api/voice"
    signature = RequestValidator(TOKEN).compute_signature(url, {})
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    event = rest_event("POST", url, routes=ROUTES, body='{"a": 1}', headers=headers)
    with pytest.raises(SignatureError, match="neither form-encoded nor hashed"):
        check(event)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["headers"].pop("X-Twilio-Signature"), "missing"),
        (lambda e: e["headers"].update({"X-Twilio-Signature": "AAAA"}), "malformed"),
        (lambda e: e["headers"].update({"X-Twilio-Signature": "A" * 27 + "="}), "does not match"),
        (lambda e: e.update({"body": e["body"] + "&Extra=1"}), "does not match"),
        (lambda e: e["requestContext"].update({"path": "/voice"}), "does not match"),
        (lambda e: e.update({"body": None, "isBase64Encoded": False}), "does not match"),
    ],
)
def test_tampered_requests_are_refused(mutate, reason):
    event = twilio_event(
        f"{EXECUTE_API}/api/voice", {"CallSid": "CA1"}, auth_token=TOKEN, routes=ROUTES
    )
    mutate(event)
    with pytest.raises(SignatureError, match=reason):
        check(event)


def test_wrong_token_is_refused():
    event = twilio_event(f"{EXECUTE_API}/api/voice", {"A": "1"}, auth_token="other", routes=ROUTES)
    with pytest.raises(SignatureError):
        check(event)


def test_non_utf8_body_is_refused():
    event = twilio_event(f"{EXECUTE_API}/api/voice", {"A": "1"}, auth_token=TOKEN, routes=ROUTES)
    with pytest.raises(SignatureError, match="UTF-8"):
        verify(event, Headers(event["headers"]), b"A=\xff", TOKEN, None)


def test_params_keeps_order_blanks_and_repeats():
    params = Params([("b", ""), ("a", "1"), ("b", "2")])
    assert list(params) == ["b", "a"]
    assert params.getall("b") == ["", "2"]
    assert params.get("b") == ""
    assert params.get("missing", "x") == "x"
    assert "a" in params and "z" not in params


@pytest.mark.parametrize(
    ("url", "base_path", "public_url", "base"),
    [
        (f"{EXECUTE_API}/api/twimlets/forward?A=1", "", None, f"{EXECUTE_API}/api"),
        ("https://voice.example.com/tel/voice", "/tel", None, "https://voice.example.com/tel"),
        (
            "https://voice.example.com/voice",
            "",
            "https://voice.example.com",
            "https://voice.example.com",
        ),
    ],
)
def test_verified_request_knows_its_base_url(url, base_path, public_url, base):
    event = twilio_event(url, {"A": "1"}, auth_token=TOKEN, routes=ROUTES, base_path=base_path)
    assert check(event, public_url=public_url).base_url == base


@pytest.mark.parametrize(
    "body",
    [
        "",
        "a=1&b=2",
        "Body=Hello+world%21&From=%2B15105550100",
        "a&b=&=c&&d==e&%zz=%E2%82%AC+%ff",
        "Name%5B%5D=x&Name[]=y&sp ace=a b&plus=%2B+",
        "&&&",
        "k=v=w&é=ü%20",
    ],
)
def test_parse_form_is_parse_qsl(body: str) -> None:
    from urllib.parse import parse_qsl

    assert parse_form(body) == parse_qsl(body, keep_blank_values=True)


@pytest.mark.parametrize(
    "signature",
    ["é" * 28, "\u00ff" * 27 + "=", "x" * 28, "A" * 27 + "=\n", "A" * 28 + "=", " " * 28],
)
def test_a_malformed_signature_header_is_refused_without_crashing(signature):
    event = twilio_event(
        f"{EXECUTE_API}/api/voice", {"CallSid": "CA1"}, auth_token=TOKEN, routes=ROUTES
    )
    event["headers"]["X-Twilio-Signature"] = signature
    with pytest.raises(SignatureError, match="malformed"):
        check(event)


def test_what_twilio_never_sends_is_refused_before_the_body_is_read():
    url = f"{EXECUTE_API}/api/sms"
    big = twilio_event(url, {"Body": "x" * MAX_BODY_BYTES}, auth_token=TOKEN, routes=ROUTES)

    class Untouchable(bytes):
        def decode(self, *args, **kwargs):
            raise AssertionError("the body was decoded")

    with pytest.raises(TooLargeError):
        verify(big, Headers(big["headers"]), Untouchable(b""), TOKEN, None)
    big["body"] = base64_of(big["body"])
    big["isBase64Encoded"] = True
    with pytest.raises(TooLargeError):
        verify(big, Headers(big["headers"]), Untouchable(b""), TOKEN, None)
    many = twilio_event(
        url, [(f"F{i}", "") for i in range(MAX_FIELDS + 1)], auth_token=TOKEN, routes=ROUTES
    )
    with pytest.raises(TooLargeError, match="fields"):
        check(many)
    fits = twilio_event(
        url,
        {"Body": "€" * 1600, "MediaUrl0": "https://x.example/a"},
        auth_token=TOKEN,
        routes=ROUTES,
    )
    assert check(fits).form.get("Body") == "€" * 1600  # an SMS at Twilio's longest fits


def base64_of(text):
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("signed_query", "recut"),
    [
        # Signed with a raw "=" in a value; re-sent so that the "=" ends a name instead.
        ("a=b=c", {"a=b": ["c"]}),
        ("Url=https://x.example/?q=1&To=%2B1", {"Url": ["https://x.example/?q"], "1": [""]}),
        ("a=b%26c=d", {"a": ["b"], "c": ["d"]}),
    ],
)
def test_a_signed_query_cannot_be_recut_into_other_pairs(signed_query, recut):
    url = f"{EXECUTE_API}/api/twimlets/forward?{signed_query}"
    event = twilio_event(url, {"CallSid": "CA1"}, auth_token=TOKEN, routes=ROUTES)
    original = dict(event["multiValueQueryStringParameters"])
    assert check(event).url == url
    event["multiValueQueryStringParameters"] = recut
    assert recut != original
    with pytest.raises(SignatureError, match="does not match"):
        check(event)
    assert not any("=" in name for name, _ in _names(candidate_urls(event, None)))


def _names(urls):
    for url in urls:
        for pair in url.partition("?")[2].split("&"):
            name, _, value = pair.partition("=")
            yield name, value


def test_precheck_takes_a_body_as_text_or_as_bytes():
    # API Gateway's event holds text; chalice local's holds bytes (make run serves through it).
    from chalicelib.webhooks.signature import MAX_FIELDS, TooLargeError, precheck

    headers = {"x-twilio-signature": "a" * 27 + "="}
    for body in ("From=%2B15105551212&To=x", b"From=%2B15105551212&To=x"):
        assert precheck({"body": body}, headers).signature == headers["x-twilio-signature"]
    for body in ("a=1&" * MAX_FIELDS, b"a=1&" * MAX_FIELDS):
        with pytest.raises(TooLargeError):
            precheck({"body": body}, headers)
