"""The owner's own call and SMS flows (docs/your-own-flow.md): business hours is the example."""
