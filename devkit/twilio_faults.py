"""The local Twilio's bad days: what a create (POST Messages/Calls) does instead of succeeding.

Outcomes, by name (the same names in tests, `/_fake/config` and `/_fake/script`):

- an HTTP error status ("429", "500", "503", ...): answered at once, nothing created; 429 carries
  `Retry-After`, as a rate limit may;
- "late": created, then answered only after `late_seconds` (past the client's timeout);
- "500-after-create": created, then answered 500 (Twilio took it and says it failed);
- "drop-after-create": created, then the connection is closed with no answer at all;
- "504-then-create": answered 504 at once, created `create_after` seconds later;
- "drop-then-create": the connection closed at once with no answer, created `create_after`
  seconds later;
- "late-then-create": answered (201) after `late_seconds`, created `create_after` seconds after
  the request came, so a client that gave up and looked in the list meanwhile does not find it.

A share of creates (`rate`, drawn from `outcomes` with a seeded generator) or an exact script
(the next creates, in order) can be given; a script goes first. A create put off ("...-then-
create") waits in `Pending` on a timer; tests run it at a moment of their choosing instead.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus

AFTER_CREATE = ("late", "500-after-create", "drop-after-create")
THEN_CREATE = ("504-then-create", "drop-then-create", "late-then-create")
_ERROR_STATUSES = frozenset(str(s.value) for s in HTTPStatus if s >= 400)


def check(outcome: str) -> str:
    """The outcome, when it is one the fake knows.

    Raises:
        ValueError: an unknown outcome.
    """
    if outcome not in (*AFTER_CREATE, *THEN_CREATE) and outcome not in _ERROR_STATUSES:
        raise ValueError(
            f"unknown fault {outcome!r}: an HTTP error status or one of "
            f"{AFTER_CREATE + THEN_CREATE}"
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
        create_after: float = 3.0,
    ) -> None:
        """Give a share `rate` of creates one of `outcomes`; forget any script.

        Raises:
            ValueError: a rate outside [0, 1], no outcomes, an unknown one, or a negative or
                infinite late_seconds or create_after.
        """
        chosen = tuple(check(str(outcome)) for outcome in outcomes)
        if not 0.0 <= rate <= 1.0 or not chosen:
            raise ValueError("rate must be in [0, 1], with at least one outcome")
        for name, seconds in (("late_seconds", late_seconds), ("create_after", create_after)):
            # A timer cannot wait NaN or forever; json.loads reads both.
            if not (math.isfinite(seconds) and seconds >= 0):
                raise ValueError(f"{name} must be a number of seconds, 0 or more")
        with self._lock:
            self.rate, self.outcomes, self.late_seconds = rate, chosen, late_seconds
            self.create_after = create_after
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
                "create_after": self.create_after,
                "scripted": list(self._script),
            }


class Pending:
    """Creates put off by a "...-then-create" fault: each runs once, when its timer fires or
    when flushed, never after cancel(); thread-safe."""

    def __init__(self) -> None:
        # Held while a create runs, so cancel() returns only once none is half done.
        self._lock = threading.RLock()
        self._waiting: dict[int, tuple[threading.Timer, Callable[[], None]]] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def later(self, seconds: float, create: Callable[[], None]) -> None:
        """Run create after `seconds`, on a daemon timer."""
        key = next(self._order)
        timer = threading.Timer(seconds, self._run, args=(key,))
        timer.daemon = True
        with self._lock:
            self._waiting[key] = (timer, create)
        timer.start()

    def run_all(self) -> int:
        """Run every waiting create now, oldest first; how many ran."""
        with self._lock:
            return sum(self._run(key) for key in sorted(self._waiting))

    def cancel(self) -> None:
        """Forget every waiting create."""
        with self._lock:
            for timer, _ in self._waiting.values():
                timer.cancel()
            self._waiting.clear()

    def _run(self, key: int) -> bool:
        with self._lock:
            waiting = self._waiting.pop(key, None)
            if waiting is None:  # already run, or cancelled
                return False
            timer, create = waiting
            timer.cancel()
            create()
            return True
