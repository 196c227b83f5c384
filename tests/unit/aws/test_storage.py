"""DynamoDB attribute values: our plain-value conversion against boto3's own serializer."""

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from chalicelib.aws import storage


@pytest.mark.parametrize(
    "value",
    [
        "",
        "hé llo",
        0,
        -7,
        10**20,
        1.5,
        -0.25,
        True,
        False,
        None,
        b"\x00\xff",
        ["a", 1, None],
        {"nested": {"list": [1.5, "x"], "flag": True}},
    ],
)
def test_attribute_values_round_trip(value: Any) -> None:
    assert storage.value_of(storage.attribute(value)) == value


def test_attribute_values_are_what_boto3_sends() -> None:
    boto = TypeSerializer()
    for value in ["x", 5, True, None, ["a"], {"k": "v"}, b"\x01", Decimal("2.5")]:
        assert storage.attribute(value) == boto.serialize(value)
    # boto3 refuses floats; DynamoDB takes their shortest decimal form.
    assert storage.attribute(0.1) == {"N": "0.1"}
    assert storage.value_of({"N": "2.0"}) == 2 and storage.value_of({"N": "1E+2"}) == 100
    assert storage.value_of({"SS": ["a", "b"]}) == {"a", "b"}
    assert storage.value_of({"BS": [b"a"]}) == {b"a"}
    with pytest.raises(TypeError):
        storage.attribute(float("nan"))
    with pytest.raises(TypeError):
        storage.attribute(object())
