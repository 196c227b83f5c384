"""Twilio's side: TwiML built with the twilio library and the REST API wrapper."""
