"""The resources of Twilio's REST API (2010-04-01) that Switchboard calls, through the
twilio library's own base layer rather than its generated resource classes.

`client.messages.create(...)` first imports twilio.rest.api: every resource of the 2010 API,
86 modules, 33 to 46 ms of CPU here (docs/performance.md). A cold start pays that on its first
send, at the handler's share of a vCPU (14 times slower at 128 MB), or during INIT on every cold
start of the function. Each generated method is a typed wrapper over twilio.base's Version and
Page: Version makes the request with the client's credentials, HTTP client, region and edge and
raises TwilioRestException with Twilio's status, code and message; Page reads a list page and
follows next_page_uri. This module calls that same layer, with the parameter names and headers
the generated code sends (twilio 9.13), and answers Twilio's JSON payload as it came
("from", "date_created" as RFC 2822, ...). Failures surface exactly as through the generated
classes, so chalicelib.telephony.twilio_rest classifies them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twilio.base import values
from twilio.base.domain import Domain
from twilio.base.page import Page
from twilio.base.version import Version

API_URL = "https://api.twilio.com"  # twilio.rest.api.ApiBase's
_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


class _Records(Page):
    """A list page whose records stay Twilio's JSON objects."""

    def get_instance(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


class Account:
    """One account's resources, on a twilio.rest.Client (its credentials and HTTP client)."""

    def __init__(self, client: Any, base_url: str | None = None) -> None:
        self._version = Version(Domain(client, base_url or API_URL), "2010-04-01")
        self._root = f"/Accounts/{client.account_sid}"

    def create(self, resource: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new resource; lists become repeated parameters (MediaUrl, ...).

        Raises:
            TwilioRestException: Twilio answered anything but 2xx.
        """
        return self._version.create(
            method="POST",
            uri=f"{self._root}/{resource}.json",
            data=values.of(dict(data)),
            headers=dict(_FORM),
        )

    def fetch(self, resource: str, sid: str) -> dict[str, Any]:
        """GET one resource by SID.

        Raises:
            TwilioRestException: Twilio answered anything but 2xx.
        """
        return self._version.fetch(
            method="GET",
            uri=f"{self._root}/{resource}/{sid}.json",
            headers={"Accept": "application/json"},
        )

    def list(
        self,
        resource: str,
        params: Mapping[str, Any],
        *,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """The records of a list, newest first, page after page up to limit, read in full
        before returning (as the generated list() does), so every page's failure is raised
        here, inside the caller's error handling.

        Raises:
            TwilioException: a page Twilio did not answer with 200 (the response in args[1]).
        """
        limits = self._version.read_limits(limit, page_size)
        response = self._version.page(
            method="GET",
            uri=f"{self._root}/{resource}.json",
            params=values.of({**params, "PageSize": limits["page_size"]}),
            headers=dict(_FORM),
        )
        return list(self._version.stream(_Records(self._version, response), limits["limit"]))
