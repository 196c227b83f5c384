"""The URLs Twilio may have signed, rebuilt from an API Gateway event.

API Gateway REST events carry the host, the stage or base path and the *decoded* query, never the
raw URL: the candidates are the public URL + the route's path and the event's own domain + path,
each with the query re-encoded canonically, as the twimlets' PHP-style form writes it, and in
the usual hand-written variants (webhooks/signature.py checks each).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

# Characters people and tools leave raw in query strings; the strict form encodes them. Never
# "&" (it splits pairs) and, in names, never "=" (it ends the name): then every candidate URL
# decodes to exactly one list of pairs, so a signed URL cannot be re-cut into other pairs that
# the same signature covers. A raw "=" in a value is kept: after the first "=" of a pair it is
# unambiguous, and hand-typed URLs such as FailUrl=https://x.example/f?a=1 rely on it.
_LENIENT_SAFE = "/:@!$'()*,;?"
_LENIENT_VALUE_SAFE = _LENIENT_SAFE + "="


def route_path(context: dict[str, Any], path_parameters: dict[str, str] | None) -> str:
    """The route's own path (``/twimlets/forward``), without stage or base path."""
    path = context.get("resourcePath") or "/"
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def base_urls(event: dict[str, Any], public_url: str | None) -> list[str]:
    """The URLs, without query, that Twilio may have requested for this event."""
    context = event.get("requestContext") or {}
    urls = []
    if public_url:
        urls.append(public_url + route_path(context, event.get("pathParameters")))
    domain = context.get("domainName")
    if domain and context.get("path"):
        urls.append(f"https://{domain}{context['path']}")
    return list(dict.fromkeys(urls))


def encode_query(
    pairs: Iterable[tuple[str, str]],
    *,
    space: str = "+",
    raw_brackets: bool = False,
    lenient: bool = False,
    tilde: str = "~",
) -> str:
    """Encode a query string; the defaults are the canonical form the app generates."""
    name_safe = (_LENIENT_SAFE if lenient else "") + ("[]" if raw_brackets else "")
    value_safe = _LENIENT_VALUE_SAFE if lenient else ""
    encoded = []
    for name, value in pairs:
        key = quote(name, safe=name_safe).replace("%20", space).replace("~", tilde)
        encoded.append(
            key + "=" + quote(value, safe=value_safe).replace("%20", space).replace("~", tilde)
        )
    return "&".join(encoded)


# Re-encodings tried in order, canonical first; each is generated only if the previous failed.
_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    # PHP's urlencode, which the twimlets use for the URLs they generate (as twimlets.com did),
    # writes "~" as %7E; the canonical form leaves it raw.
    {"tilde": "%7E"},
    *(
        {"space": space, "raw_brackets": brackets, "lenient": lenient}
        for lenient in (False, True)
        for brackets in (False, True)
        for space in ("+", "%20")
    ),
)


def query_pairs(multi: dict[str, list[str]] | None) -> list[tuple[str, str]]:
    """API Gateway's decoded multi-value query as pairs, in order."""
    return [(name, value) for name, values in (multi or {}).items() for value in values]


def _iter_queries(multi: dict[str, list[str]] | None) -> Iterator[str]:
    pairs = query_pairs(multi)
    if not pairs:
        yield ""
        return
    seen: set[str] = set()
    for options in _VARIANTS:
        query = encode_query(pairs, **options)
        if query not in seen:
            seen.add(query)
            yield query


def query_variants(multi: dict[str, list[str]] | None) -> list[str]:
    """Plausible raw query strings for API Gateway's decoded query, canonical form first."""
    return list(_iter_queries(multi))


def iter_candidates(event: dict[str, Any], public_url: str | None) -> Iterator[str]:
    """candidate_urls, lazily: each is built only if the previous failed."""
    bases = base_urls(event, public_url)
    for query in _iter_queries(event.get("multiValueQueryStringParameters")):
        for base in bases:
            yield base + ("?" + query if query else "")


def candidate_urls(event: dict[str, Any], public_url: str | None) -> list[str]:
    """Every full URL, query included, that the signature is checked against, in order."""
    return list(iter_candidates(event, public_url))
