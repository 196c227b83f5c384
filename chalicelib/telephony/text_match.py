"""Whether a body Twilio stored can be the body we sent, across Twilio's own rewrites."""

from __future__ import annotations

import re

# Smart Encoding's documented swaps of Unicode look-alikes for GSM-7 characters (the common ones).
_SMART = str.maketrans(
    {
        "\u00ab": '"',
        "\u00bb": '"',
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2015": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u200b": "",
        "\u2060": "",
        "\ufeff": "",
    }
)
_URL = re.compile(r"https?://\S+")


def same_text(ours: str, theirs: str) -> bool:
    """Whether Twilio's stored body can be the body we sent.

    Twilio may rewrite a body: Smart Encoding swaps Unicode quotes, dashes, ellipses and spaces
    for GSM-7 ones, and Link Shortening replaces each URL with a short link. Both sides are
    compared with those rewrites undone as far as they can be: look-alikes mapped, every URL
    reduced to a placeholder (a shortened link cannot be traced back to its URL).
    """
    if ours == theirs:
        return True
    return _normal(ours) == _normal(theirs)


def _normal(text: str) -> str:
    return " ".join(_URL.sub("<url>", text.translate(_SMART)).split())
