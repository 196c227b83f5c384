"""The IAM-authorised JSON API's gate, input validation and idempotency keys."""
