"""Local tools for Switchboard: never deployed."""
