"""The collector is paused for INIT's loads and back on afterwards, whatever happens."""

from __future__ import annotations

import gc
import sys

import pytest

from chalicelib.core import gcpause
from chalicelib.runtime import warmup


def test_paused_turns_the_collector_off_and_back_on():
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
        with gcpause.paused():  # nested: the outer one decides
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failure_inside_leaves_the_collector_on():
    with pytest.raises(RuntimeError), gcpause.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_inits_preload_runs_with_the_collector_paused(tmp_path, monkeypatch):
    (tmp_path / "probe_preload.py").write_text("import gc\nENABLED = gc.isenabled()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probe_preload", raising=False)
    warmup.run(warmup.Plan(modules=("probe_preload",)))
    assert sys.modules["probe_preload"].ENABLED is False
    assert gc.isenabled()
