"""The lean SDK /sms with its botocore DynamoDB client built during INIT (module scope).

Lambda runs INIT at about a full vCPU whatever the memory size, the handler at the memory
size's share: this is the lean design's best placement below 1,769 MB.
"""

from __future__ import annotations

from bench.baselines.lean_sdk_app import app, dynamodb

__all__ = ["app"]
dynamodb()
