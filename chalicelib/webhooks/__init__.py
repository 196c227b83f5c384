"""The gate every Twilio webhook passes (signature check) and the voice answers."""
