"""AWS access: SDK clients, DynamoDB storage, the SQS job queue and SSM parameters."""
