"""The local Twilio's unauthenticated /_fake/* endpoints: its records, request log, settings,
fault script and put-off creates, for tests and tools in other processes."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from twilio.request_validator import HMAC_SHA256

from devkit.events import SharedKey
from devkit.twilio_resources import ApiError

if TYPE_CHECKING:
    from devkit.fake_twilio import FakeTwilio


CONFIG_KEYS = frozenset(
    {
        "latency", "fault_rate", "faults", "fault_statuses", "fault_seed", "late_seconds",
        "create_after", "rewrite_bodies", "call_outcomes", "complete_after", "price_after",
        "message_price", "call_price", "callback_delay", "callback_faults",
        "callback_late_seconds", "signing_key",
    }
)  # fmt: skip


def control(fake: FakeTwilio, method: str, path: str, raw: bytes) -> tuple[int, Any]:
    """The unauthenticated /_fake/* endpoints, for tests and tools in other processes."""
    reads = {"requests": lambda: [asdict(r) for r in fake.requests]}
    reads |= {"messages": lambda: fake.messages, "calls": lambda: fake.calls}
    name = path.removeprefix("/_fake/")
    if method == "GET" and name in reads:
        return 200, reads[name]()
    if (method, name) == ("POST", "reset"):
        fake.reset()
        return 200, {"reset": True}
    if (method, name) == ("POST", "config"):
        try:
            config = json.loads(raw or b"{}")
            if not isinstance(config, dict):
                raise TypeError("a JSON object of knobs")
            unknown = sorted(set(config) - CONFIG_KEYS)
            if unknown:
                # A typo ("fault_rte") would otherwise leave the fakes healthy, silently.
                raise ValueError(
                    f"unknown key {unknown[0]!r}; known: {', '.join(sorted(CONFIG_KEYS))}"
                )
            latency = max(0.0, float(config.get("latency", fake.latency)))
            current = fake.faults.settings()
            if "fault_statuses" in config:  # the older name: statuses only
                config.setdefault("faults", [str(int(s)) for s in config["fault_statuses"]])
            fake.set_faults(
                rate=float(config.get("fault_rate", current["fault_rate"])),
                outcomes=tuple(str(f) for f in config.get("faults", current["faults"])),
                seed=config.get("fault_seed"),
                late_seconds=float(config.get("late_seconds", current["late_seconds"])),
                create_after=float(config.get("create_after", current["create_after"])),
            )
            fake.latency = latency
            fake.rewrite_bodies = bool(config.get("rewrite_bodies", fake.rewrite_bodies))
            outcomes = config.get("call_outcomes", fake.call_outcomes)
            if not isinstance(outcomes, dict) or not set(outcomes.values()) <= {
                "completed",
                "busy",
                "no-answer",
                "failed",
            }:
                raise ValueError("call_outcomes maps numbers to completed, busy, no-answer "
                                 "or failed")  # fmt: skip
            fake.call_outcomes = dict(outcomes)
            complete = config.get("complete_after", fake.complete_after)
            fake.complete_after = None if complete is None else max(0.0, float(complete))
            fake.price_after = max(0.0, float(config.get("price_after", fake.price_after)))
            for knob in ("message_price", "call_price"):  # Twilio's form: "-0.00790"
                setattr(fake, knob, str(Decimal(str(config.get(knob, getattr(fake, knob))))))
            current = fake.callbacks.settings()
            fake.callbacks.configure(
                delay=float(config.get("callback_delay", current["callback_delay"])),
                faults=tuple(config.get("callback_faults", current["callback_faults"])),
                late_seconds=float(
                    config.get("callback_late_seconds", current["callback_late_seconds"])
                ),
                signing_key=_signing_key(config["signing_key"])
                if "signing_key" in config
                else fake.callbacks.signing_key,
            )
        except (ValueError, TypeError, AttributeError, ArithmeticError) as exc:
            return 400, ApiError(400, 20001, f"Invalid config: {exc}").body()
    if name == "pending_creates" and method in ("GET", "POST"):
        created = {"created": fake.run_pending_creates()} if method == "POST" else {}
        return 200, {**created, "pending_creates": fake.pending_creates}
    if (method, name) == ("POST", "script"):
        try:
            steps = json.loads(raw or b"[]")
            if not isinstance(steps, list):
                raise TypeError("a JSON list of outcomes")
            fake.faults.script(steps)
        except (ValueError, TypeError) as exc:
            return 400, ApiError(400, 20001, f"Invalid script: {exc}").body()
        return 200, fake.faults.settings()
    if name == "config" and method in ("GET", "POST"):
        settings = {
            "latency": fake.latency,
            "rewrite_bodies": fake.rewrite_bodies,
            "complete_after": fake.complete_after,
            "price_after": fake.price_after,
            "message_price": fake.message_price,
            "call_price": fake.call_price,
            "call_outcomes": fake.call_outcomes,
        }
        return 200, {**settings, **fake.faults.settings(), **fake.callbacks.settings()}
    return 404, ApiError(404, 20404, f"The requested resource {path} was not found").body()


def _signing_key(value: Any) -> SharedKey | None:
    """{"key": id, "secret": secret, "algorithm": "HMAC_SHA256"} (the default), or null: the
    SharedKey the local Twilio signs its callbacks with, or back to the auth token."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("signing_key is {key, secret, algorithm} or null")
    return SharedKey(
        str(value.get("key") or ""),
        str(value.get("secret") or ""),
        str(value.get("algorithm") or HMAC_SHA256),
    )
