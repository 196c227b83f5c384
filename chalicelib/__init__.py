"""Switchboard's deployed code, in packages by concern, each importing only those below it."""
