"""SharedKey signatures (HMAC-SHA256, Twilio's Webhooks API): computed by hand, checked
against twilio's own RequestValidator; the settings header's shapes; the keys parameter."""

import pytest
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, RequestValidator

from chalicelib.webhooks import sharedkeys
from chalicelib.webhooks.signature import (
    Params,
    SignatureError,
    Signed,
    _signed_suffix,
    precheck,
    signature_of,
    signature_settings,
)
from devkit.events import SharedKey, twilio_event
from tests.unit.webhooks.test_signature import EXECUTE_API, ROUTES, TOKEN, Headers, check

SECRET = "demo-shared-key-secret=="
KEY = SharedKey("webhooks_sharedkey_0123456789abcdef", SECRET)
SHA1_SIG = "a" * 27 + "="
SHA256_SIG = "b" * 43 + "="


class _Multi(dict):
    def __init__(self, pairs):
        super().__init__((name, None) for name, _ in pairs)
        self.pairs = list(pairs)

    def getall(self, name):
        return [v for n, v in self.pairs if n == name]


@pytest.mark.parametrize(
    ("url", "pairs"),
    [
        ("https://mycompany.com/myapp.php?foo=1&bar=2", [("CallSid", "CA1"), ("Digits", "1234")]),
        (f"{EXECUTE_API}/api/voice", []),
        (f"{EXECUTE_API}/api/sms", [("Body", "€ and ü, +1 & =x"), ("From", "+15105551212")]),
        ("https://voice.example.com:443/tel/voice?a=%20b", [("b", "2"), ("a", "1"), ("a", "")]),
        ("http://127.0.0.1:8000/twimlets/menu?Options%5B1%5D=x", [("Digits", "1")] * 2),
    ],
)
@pytest.mark.parametrize("secret", [SECRET, "x", "sécrét"])
def test_signature_of_is_twilios_own_for_both_algorithms(url, pairs, secret):
    import hashlib

    suffix = _signed_suffix(Params(pairs))
    validator = RequestValidator(secret)
    ours = signature_of(secret.encode(), url, suffix, hashlib.sha256)
    assert ours == validator.compute_signature(url, _Multi(pairs), HMAC_SHA256)
    assert len(ours) == 44
    assert signature_of(secret.encode(), url, suffix) == validator.compute_signature(
        url, _Multi(pairs), HMAC_SHA1
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", (HMAC_SHA1, None)),
        ("  ", (HMAC_SHA1, None)),
        (f"key={KEY.key_id},algorithm=HMAC_SHA256", (HMAC_SHA256, KEY.key_id)),
        (f"algorithm=HMAC_SHA256,key={KEY.key_id}", (HMAC_SHA256, KEY.key_id)),
        (f" key = {KEY.key_id} , algorithm = hmac_sha256 ", (HMAC_SHA256, KEY.key_id)),
        (f"key={KEY.key_id},algorithm=HMAC_SHA1", (HMAC_SHA1, KEY.key_id)),
        (f"key={KEY.key_id}", (HMAC_SHA1, KEY.key_id)),
        ("algorithm=HMAC_SHA1", (HMAC_SHA1, None)),
        (f"key={KEY.key_id},algorithm=HMAC_SHA256,version=2", (HMAC_SHA256, KEY.key_id)),
    ],
)
def test_settings_header_shapes_twilio_sends(value, expected):
    assert signature_settings(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("garbage", "malformed"),
        ("key=,algorithm=HMAC_SHA256", "malformed"),
        ("key=a,,algorithm=HMAC_SHA256", "malformed"),
        ("=a,algorithm=HMAC_SHA256", "malformed"),
        ("key=a,key=b,algorithm=HMAC_SHA256", "malformed"),
        ("key=a;algorithm=HMAC_SHA256", "malformed"),
        ("key=a/b,algorithm=HMAC_SHA256", "malformed"),
        ("key=" + "k" * 129 + ",algorithm=HMAC_SHA256", "malformed"),
        ("key=a,algorithm=HMAC_SHA256," + "x=y," * 200, "malformed"),
        ("key=\x00,algorithm=HMAC_SHA256", "malformed"),
        ("algorithm=HMAC_SHA256", "without a signing key"),
        ("key=a,algorithm=HMAC_SHA512", "unsupported"),
        ("key=a,algorithm=SHA256", "unsupported"),
        ("key=a,algorithm=" + "A" * 100, "unsupported"),
    ],
)
def test_settings_header_that_cannot_be_used_is_refused(value, reason):
    with pytest.raises(SignatureError, match=reason) as raised:
        signature_settings(value)
    assert raised.value.url is None
    assert len(raised.value.extra.get("algorithm", "")) <= 32  # a readable name, or nothing


@pytest.mark.parametrize(
    ("signature", "settings", "expected"),
    [
        (SHA1_SIG, None, Signed(SHA1_SIG)),
        (
            SHA1_SIG,
            f"key={KEY.key_id},algorithm=HMAC_SHA1",
            Signed(SHA1_SIG, HMAC_SHA1, KEY.key_id),
        ),
        (SHA256_SIG, KEY.settings_header(), Signed(SHA256_SIG, HMAC_SHA256, KEY.key_id)),
    ],
)
def test_precheck_reads_the_algorithm_before_the_shape(signature, settings, expected):
    headers = {"x-twilio-signature": signature}
    if settings is not None:
        headers["x-twilio-webhooks-signature-settings"] = settings
    assert precheck({"body": "a=1"}, headers) == expected


@pytest.mark.parametrize(
    ("signature", "settings"),
    [
        (SHA256_SIG, None),  # 44 characters need the header naming HMAC_SHA256
        (SHA256_SIG, ""),
        (SHA256_SIG, f"key={KEY.key_id},algorithm=HMAC_SHA1"),
        (SHA1_SIG, KEY.settings_header()),  # 28 are not an HMAC-SHA256
        ("b" * 44, KEY.settings_header()),
        ("b" * 42 + "==", KEY.settings_header()),
        ("é" * 43 + "=", KEY.settings_header()),
    ],
)
def test_precheck_refuses_a_signature_of_the_wrong_shape_for_its_algorithm(signature, settings):
    headers = {"x-twilio-signature": signature}
    if settings is not None:
        headers["x-twilio-webhooks-signature-settings"] = settings
    with pytest.raises(SignatureError, match="malformed X-Twilio-Signature"):
        precheck({"body": "a=1"}, headers)


@pytest.mark.parametrize(
    "query", ["", "?a=1&b=2", "?Greeting=Hello%20World", "?To=%2B15105551212", "?M%5B0%5D=Hi"]
)
def test_verify_checks_a_shared_key_signature_with_its_secret(query):
    url = f"{EXECUTE_API}/api/voice{query}"
    event = twilio_event(url, {"CallSid": "CA1", "From": "+1"}, auth_token=TOKEN, routes=ROUTES,
                         shared_key=KEY)  # fmt: skip
    assert check(event, token=SECRET).url == url
    assert check(event, token=("other", SECRET)).url == url  # any of a few
    with pytest.raises(SignatureError, match="does not match"):
        check(event, token=TOKEN)
    # A 44-character signature under a header saying HMAC_SHA1 is refused unread.
    event["headers"]["X-Twilio-Webhooks-Signature-Settings"] = (
        f"key={KEY.key_id},algorithm=HMAC_SHA1"
    )
    with pytest.raises(SignatureError, match="malformed"):
        check(event, token=SECRET)


def test_verify_headers_are_case_insensitive():
    url = f"{EXECUTE_API}/api/sms"
    event = twilio_event(url, {"Body": "hi"}, auth_token=TOKEN, routes=ROUTES, shared_key=KEY)
    headers = Headers({k.lower(): v for k, v in event["headers"].items()})
    from chalicelib.webhooks.signature import verify

    assert verify(event, headers, event["body"].encode(), SECRET, None).url == url


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=s1\nb=s2==", {"a": "s1", "b": "s2=="}),
        ("a=s1,b=s2", {"a": "s1", "b": "s2"}),
        (" a = s1 \r\n\n, b=s2\n", {"a": "s1", "b": "s2"}),
        ("a=x=y", {"a": "x=y"}),
        ("a=1\nnot-an-entry\n=s\nb=\nc=3", {"a": "1", "c": "3"}),
        ("a=1\na=2", {"a": "2"}),
    ],
)
def test_the_keys_parameter(value, expected):
    assert sharedkeys.parse(value) == expected


def test_a_bad_keys_entry_is_logged_by_position_never_by_text(caplog):
    sharedkeys.parse.cache_clear()
    with caplog.at_level("WARNING"):
        sharedkeys.parse("a=1\nsecret-without-an-id\nb=2")
        sharedkeys.parse("a=1\nsecret-without-an-id\nb=2")  # parsed once
    (record,) = caplog.records
    assert record.entry == 2
    assert "secret-without-an-id" not in caplog.text
