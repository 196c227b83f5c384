"""The local Twilio's bad days: what a create (POST Messages/Calls) does instead of succeeding.

Outcomes, by name (the same names in tests, `/_fake/config` and `/_fake/script`):

- an HTTP error status ("429", "500", "503", ...): answered at once, nothing created; 429 carries
  `Retry-After`, as a rate limit may;
- "late": created, then answered only after `late_seconds` (past the client's timeout);
- "500-after-create": created, then answered 500 (Twilio took it and says it failed);
- "drop-after-create": created, then the connection is closed with no answer at all.

A share of creates (`rate`, drawn from `outcomes` with a seeded generator) or an exact script
(the next creates, in order) can be given; a script goes first.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus

AFTER_CREATE = ("late", "500-after-create", "drop-after-create")
_ERROR_STATUSES = frozenset(str(s.value) for s in HTTPStatus if s >= 400)


def check(outcome: str) -> str:
    """The outcome, when it is one the fake knows.

    Raises:
        ValueError: an unknown outcome.
    """
    if outcome not in AFTER_CREATE and outcome not in _ERROR_STATUSES:
        raise ValueError(
            f"unknown fault {outcome!r}: an HTTP error status or one of {AFTER_CREATE}"
        )
    return outcome


class Faults:
    """Which outcome the next create gets; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure()

    def configure(
        self,
        *,
        rate: float = 0.0,
        outcomes: Iterable[str] = ("429", "500"),
        seed: int | None = None,
        late_seconds: float = 7.0,
    ) -> None:
        """Give a share `rate` of creates one of `outcomes`; forget any script.

        Raises:
            ValueError: a rate outside [0, 1], no outcomes, or an unknown one.
        """
        chosen = tuple(check(str(outcome)) for outcome in outcomes)
        if not 0.0 <= rate <= 1.0 or not chosen or late_seconds < 0:
            raise ValueError("rate must be in [0, 1], with at least one outcome")
        with self._lock:
            self.rate, self.outcomes, self.late_seconds = rate, chosen, late_seconds
            self._rng = random.Random(seed)
            self._script: deque[str] = deque()

    def script(self, outcomes: Iterable[str]) -> None:
        """The next creates get these outcomes, in order ("ok" for a plain success).

        Raises:
            ValueError: an unknown outcome.
        """
        steps = [o if o == "ok" else check(o) for o in map(str, outcomes)]
        with self._lock:
            self._script.extend(steps)

    def next(self) -> str | None:
        """The outcome for the create being handled now, or None for a plain success."""
        with self._lock:
            if self._script:
                step = self._script.popleft()
                return None if step == "ok" else step
            if self.rate and self._rng.random() < self.rate:
                return self._rng.choice(self.outcomes)
        return None

    def settings(self) -> dict[str, object]:
        """The configuration as JSON-ready values."""
        with self._lock:
            return {
                "fault_rate": self.rate,
                "faults": list(self.outcomes),
                "late_seconds": self.late_seconds,
                "scripted": list(self._script),
            }
