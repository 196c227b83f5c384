"""Messages and calls: their records and states, sending, inbound SMS, status callbacks."""
