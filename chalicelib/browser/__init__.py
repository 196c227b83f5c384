"""Calls in the browser: Voice SDK tokens, the TwiML App route and the softphone page."""
