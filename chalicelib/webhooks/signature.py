"""Webhook security: rebuild the URL Twilio signed from an API Gateway event, check the signature.

API Gateway REST events carry the host, the stage or base path and the *decoded* query, never the
raw URL, so the URL is rebuilt in a few candidate encodings and the request passes when any of them
carries a valid signature (HMAC is cheap). Candidates, in order:

1. ``SWITCHBOARD_PUBLIC_URL`` + the route's own path (custom domains, ``chalice local``);
2. ``https://{requestContext.domainName}{requestContext.path}`` (execute-api with its stage, or a
   custom domain with its base path);

each with the query re-encoded as this app encodes its own URLs (canonical: everything but
``A-Z a-z 0-9 _ . - ~`` percent-encoded, space as ``+``; the twimlets' PHP-style form, which also
encodes ``~``) and in the usual hand-written variants. The auth token signs with HMAC-SHA1; a
SharedKey (Twilio's Webhooks API) signs the same string with the algorithm its header names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple
from urllib.parse import unquote, urlencode

from chalicelib.webhooks.urls import iter_candidates, query_pairs, route_path

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-twilio-signature"
SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# What Twilio never sends, refused before any decoding, parsing or hashing. Its webhook bodies
# are a few KB: an SMS of 1,600 characters percent-encodes to at most ~15 KB, and a call's
# fields (SIP headers, a transcription) stay well under that; 64 KiB leaves room for all of them
# and caps what an unsigned request can make us hash. Twilio posts a few dozen fields.
MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 256
# base64 of the 20 bytes of an HMAC-SHA1, of the 32 of an HMAC-SHA256.
_SIGNATURE = re.compile(r"[A-Za-z0-9+/]{27}=")
_SIGNATURE_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=")
_DIGESTS = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}
# SharedKey ids look like webhooks_sharedkey_...; the settings header is a few dozen characters.
_KEY_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ALGORITHM = re.compile(r"[A-Z0-9_-]{1,32}")
MAX_SETTINGS = 512
MALFORMED_SETTINGS = "malformed X-Twilio-Webhooks-Signature-Settings"


class SignatureError(Exception):
    """The request carries no valid X-Twilio-Signature for any URL it may have been sent to."""

    def __init__(self, reason: str, url: str | None, extra: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.url = url
        # Log fields beside the reason (a key id, an algorithm): never a secret.
        self.extra = dict(extra or {})


MISMATCH = "signature does not match"


class TooLargeError(Exception):
    """The request is larger, or has more fields, than any webhook Twilio sends."""


class Params:
    """Ordered name/value pairs that keep blanks and repeats (the validator calls getall)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.pairs: list[tuple[str, str]] = list(pairs)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for name, _ in self.pairs:
            seen.setdefault(name)
        return iter(seen)

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def getall(self, name: str) -> list[str]:
        """Every value of name, in the order received."""
        return [v for n, v in self.pairs if n == name]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of name, or default."""
        for n, v in self.pairs:
            if n == name:
                return v
        return default


class Signed(NamedTuple):
    """What a request says about its signature, read before any secret is."""

    signature: str
    algorithm: str = HMAC_SHA1
    key_id: str | None = None  # the SharedKey the settings header names; None: the auth token


class VerifiedRequest(NamedTuple):
    """A webhook whose signature checked out: where it was sent and what it carried."""

    url: str
    query: Params
    form: Params
    # The matched URL up to the route: the stage or base path included, so URLs built on it
    # (callbacks, action URLs) resolve the way Twilio reached this one.
    base_url: str
    # The X-Twilio-Signature it carried: what a replay guard remembers it by.
    signature: str = ""

    def url_for(self, path: str, query: Iterable[tuple[str, str]] = ()) -> str:
        """An absolute URL for one of this app's routes ("/hours/menu"), as Twilio reached this
        one: behind the API Gateway stage, a custom domain's base path, or locally. TwiML's
        action, statusCallback and <Redirect> need it: a relative "/hours" loses the stage."""
        encoded = urlencode(list(query))
        return self.base_url + path + ("?" + encoded if encoded else "")

    def twilio_param(self, name: str, default: str | None = None) -> str | None:
        """A parameter Twilio sends, from the form body or else the query (the body wins)."""
        value = self.form.get(name)
        return value if value is not None else self.query.get(name, default)


def parse_form(body: str) -> list[tuple[str, str]]:
    """A form body's pairs, exactly as parse_qsl(body, keep_blank_values=True) gives them.

    Written out because parse_qsl's per-field coercion and unquote calls were a tenth of a
    webhook's CPU; fields without "+" or "%" (most of Twilio's) are taken as they are.
    """
    pairs = []
    for field in body.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name or "%" in name:
            name = unquote(name.replace("+", " "))
        if "+" in value or "%" in value:
            value = unquote(value.replace("+", " "))
        pairs.append((name, value))
    return pairs


def _signed_suffix(params: Params) -> str:
    """What Twilio appends to the URL before signing: sorted names, each with its sorted values.

    Twilio's own validator de-duplicates names and values with a set; so does this.
    """
    grouped: dict[str, set[str]] = {}
    for name, value in params.pairs:
        grouped.setdefault(name, set()).add(value)
    return "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))


def _with_default_port(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if ":" in host:
        return url
    return f"{scheme}://{host}:{443 if scheme == 'https' else 80}{slash}{path}"


def signature_of(key: bytes, url: str, suffix: str, digest: Any = hashlib.sha1) -> str:
    """X-Twilio-Signature for url and the signed parameter suffix: base64 HMAC-SHA1 (the auth
    token's), or with digest hashlib.sha256 a SharedKey's HMAC-SHA256."""
    mac = hmac.new(key, (url + suffix).encode("utf-8"), digest).digest()
    return base64.b64encode(mac).decode("ascii")


def signature_settings(value: str) -> tuple[str, str | None]:
    """The algorithm and key id of X-Twilio-Webhooks-Signature-Settings ``key=<id>,algorithm=…``
    (spaces, the algorithm's case and other names ignored, as twilio's RequestValidator does; no
    algorithm: HMAC_SHA1; an empty header: the auth token's).

    Raises:
        SignatureError: not name=value parts, a name twice, a bad key id, an algorithm this app
            does not know, or HMAC_SHA256 without a key.
    """
    if not value.strip():
        return HMAC_SHA1, None
    fields: dict[str, str] = {}
    for part in value.split(",") if len(value) <= MAX_SETTINGS else ("",):
        name, separator, field = part.partition("=")
        name, field = name.strip(), field.strip()
        if not separator or not name or not field or name in fields:
            raise SignatureError(MALFORMED_SETTINGS, None)
        fields[name] = field
    key_id = fields.get("key")
    if key_id is not None and not _KEY_ID.fullmatch(key_id):
        raise SignatureError(MALFORMED_SETTINGS, None)
    algorithm = fields.get("algorithm", HMAC_SHA1).upper()
    if algorithm not in _DIGESTS:
        named = {"algorithm": algorithm} if _ALGORITHM.fullmatch(algorithm) else {}
        raise SignatureError("unsupported signature algorithm", None, named)
    if algorithm == HMAC_SHA256 and key_id is None:
        raise SignatureError("HMAC_SHA256 without a signing key", None)
    return algorithm, key_id


def precheck(event: dict[str, Any], headers: Any) -> Signed:
    """Refuse what Twilio never sends, before the body is decoded or anything is hashed.

    Returns the X-Twilio-Signature header with the algorithm and key the settings header names.

    Raises:
        SignatureError: no signature, a settings header signature_settings refuses, or a
            signature that is not 28 characters of base64 (44 for HMAC-SHA256).
        TooLargeError: a body over MAX_BODY_BYTES (as sent, base64 or not), or with more than
            MAX_FIELDS fields.
    """
    body = event.get("body") or ""
    encoded = bool(event.get("isBase64Encoded"))
    size = len(body) * 3 // 4 if encoded else len(body)
    if size > MAX_BODY_BYTES:
        raise TooLargeError(f"body over {MAX_BODY_BYTES} bytes")
    if _separators(body, encoded) >= MAX_FIELDS:
        raise TooLargeError(f"more than {MAX_FIELDS} fields")
    signature = headers.get(SIGNATURE_HEADER) or ""
    if not signature:
        raise SignatureError("missing X-Twilio-Signature", None)
    settings = headers.get(SETTINGS_HEADER)
    if not settings:  # the auth token's HMAC-SHA1, as before SharedKeys
        if not _SIGNATURE.fullmatch(signature):
            raise SignatureError("malformed X-Twilio-Signature", None)
        return Signed(signature)
    algorithm, key_id = signature_settings(settings)
    shape = _SIGNATURE_SHA256 if algorithm == HMAC_SHA256 else _SIGNATURE
    if not shape.fullmatch(signature):
        raise SignatureError("malformed X-Twilio-Signature", None, {"algorithm": algorithm})
    return Signed(signature, algorithm, key_id)


def _separators(body: str | bytes, encoded: bool) -> int:
    """The "&" in a body as sent: at most 64 KiB, so decoding base64 here costs microseconds.

    API Gateway's event holds text; chalice local's holds bytes.
    """
    if not encoded:
        return body.count(b"&" if isinstance(body, bytes) else "&")
    try:
        return base64.b64decode(body).count(b"&")
    except ValueError:
        return 0  # not base64: what decodes the body later refuses it


def verify(
    event: dict[str, Any],
    headers: Any,
    raw_body: bytes,
    secret: str | tuple[str, ...],
    public_url: str | None,
) -> VerifiedRequest:
    """Check X-Twilio-Signature against the candidate URLs, stopping at the first match.

    secret is the auth token, or the secret of the SharedKey the settings header names (or a
    few: any of them passes), used with the algorithm that header names.

    Computed here rather than with twilio's RequestValidator, which always computes two HMACs
    and re-parses the URL: a webhook's budget is a few dozen microseconds. The tests sign with
    RequestValidator, so the two cannot drift apart.

    Raises:
        SignatureError: no signature or a malformed one, an unreadable body, no URL to check
            against, or no match.
        TooLargeError: more body or fields than any webhook Twilio sends.
    """
    signature, algorithm, _ = precheck(event, headers)
    candidates = iter_candidates(event, public_url)
    first = next(candidates, None)
    if first is None:
        raise SignatureError(
            "cannot tell which URL Twilio signed: set SWITCHBOARD_PUBLIC_URL", None
        )
    if len(raw_body) > MAX_BODY_BYTES:
        raise TooLargeError(f"body over {MAX_BODY_BYTES} bytes")
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8", first) from None
    if body.count("&") >= MAX_FIELDS:
        raise TooLargeError(f"more than {MAX_FIELDS} fields")
    query = Params(query_pairs(event.get("multiValueQueryStringParameters")))
    form = Params()
    suffix = ""
    body_hash = query.get("bodySHA256")
    if body_hash is not None:
        # JSON webhooks: the body is signed through its hash in the URL, not as parameters.
        actual = hashlib.sha256(body.encode("utf-8")).hexdigest()
        # Bytes: compare_digest refuses str with non-ASCII, and the query is anyone's to write.
        if not hmac.compare_digest(actual.encode(), body_hash.encode("utf-8", "surrogatepass")):
            raise SignatureError("body does not match its bodySHA256", first)
    elif body:
        content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type != FORM_CONTENT_TYPE:
            raise SignatureError("a body that is neither form-encoded nor hashed", first)
        form = Params(parse_form(body))
        suffix = _signed_suffix(form)
    keys = [s.encode("utf-8") for s in ((secret,) if isinstance(secret, str) else secret)]
    digest = _DIGESTS[algorithm]
    route = route_path(event.get("requestContext") or {}, event.get("pathParameters"))
    for url in itertools.chain((first,), candidates):
        # Twilio sometimes signs the URL with the scheme's default port written out.
        if any(
            hmac.compare_digest(signature_of(key, signed, suffix, digest), signature)
            for signed in (url, _with_default_port(url))
            for key in keys
        ):
            base = url.split("?", 1)[0]
            base = base[: -len(route)] if base.endswith(route) else base
            return VerifiedRequest(
                url=url, query=query, form=form, base_url=base, signature=signature
            )
    raise SignatureError(MISMATCH, first)
