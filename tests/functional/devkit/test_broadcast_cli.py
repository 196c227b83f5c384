"""`broadcast --to`: numbers from a list, a text file or a CSV, in the forms people write them."""

from __future__ import annotations

import pytest

from devkit.broadcast_cli import normalise, recipients


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("(510) 555-1002", "+15105551002"),
        ("510-555-1002", "+15105551002"),
        ("510.555.1002", "+15105551002"),
        ("1 510 555 1002", "+15105551002"),
        ("+1 510 555 1002", "+15105551002"),
        ("+44 20 7183 8750", "+442071838750"),
        ("call me", "call me"),  # passed on: the API says why it refuses it
    ],
)
def test_written_forms(written, number):
    assert normalise(written) == number


def test_a_csv_with_a_header_picks_its_phone_column(tmp_path):
    sheet = tmp_path / "list.csv"
    sheet.write_text("name,Phone,city\nAda,(510) 555-1002,Oakland\nBob,510-555-1003,\n")
    assert recipients(str(sheet)) == ["+15105551002", "+15105551003"]
    sheet.write_text("name,mobile,work\nAda,510 555 1002,415 555 0100\n")
    assert recipients(str(sheet), "work") == ["+14155550100"]
    with pytest.raises(SystemExit, match="no column 'fax'"):
        recipients(str(sheet), "fax")


def test_a_csv_without_a_header_is_its_first_column(tmp_path):
    sheet = tmp_path / "list.csv"
    sheet.write_text("+15105551002,Ada\n5105551003,Bob\n")
    assert recipients(str(sheet)) == ["+15105551002", "+15105551003"]


def test_nobody_is_an_error(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("name,phone\n")
    for source in (str(empty), " , ,"):
        with pytest.raises(SystemExit, match="no recipients"):
            recipients(source)
