"""Baseline apps the benchmark runs beside Switchboard: the floor and a quickstart-style app."""
