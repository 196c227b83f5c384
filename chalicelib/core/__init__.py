"""Foundations every other package uses: the clock, settings, errors, logging, responses."""
