"""Guards against toll fraud, SMS pumping and runaway spend (see docs/guards.md)."""
