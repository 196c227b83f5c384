"""Switchboard's deployed code: one module per concern, delegated to from app.py."""
