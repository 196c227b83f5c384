"""What a Lambda function does around its own lifecycle: the work its INIT does."""
