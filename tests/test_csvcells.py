"""CSV cells a spreadsheet would run as a formula are neutralised; numbers stay numbers; quotes are RFC 4180's."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from collector.csvcells import SafeDictWriter, SafeWriter, is_number_text, safe_cell

#: OWASP's six formula starts, and ASVS 1.2.10's NUL.
HOSTILE = ('=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tleading tab", "\rleading CR",
           "\0nul")


@pytest.mark.parametrize("text", HOSTILE)
def test_text_that_starts_a_formula_gets_a_leading_quote(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-3, 0, 7, Decimal("-0.25"), Decimal("1E+3"), -1.5, 2.0, True, None])
def test_numbers_are_left_as_they_are(value: object) -> None:
    assert safe_cell(value) is value


@pytest.mark.parametrize("text", ["-0.25", "-3", "+4", "1E+3", "-1.5e-7", ".5", "-.5", "12."])
def test_text_that_is_only_a_number_stays_a_number(text: str) -> None:
    assert is_number_text(text)
    assert safe_cell(text) == text


@pytest.mark.parametrize("text", ["-2+3", "-1-1", "+1E+3+cmd", "-", "+", "--1", "-1 ", "-1,5", "-0x10", "-inf",
                                  "-NaN", "-1e", "@1"])
def test_text_that_is_more_than_a_number_is_neutralised(text: str) -> None:
    assert not is_number_text(text)
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["team-a", "a=b", "x@y", "", " =1", "gpt-4o"])
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert safe_cell(text) == text


def test_other_values_are_written_as_their_text() -> None:
    class Name:
        def __str__(self) -> str:
            return "=1+1"

    assert safe_cell(Name()) == "'=1+1"


def test_the_writers_neutralise_every_cell_and_double_embedded_quotes() -> None:
    out = io.StringIO(newline="")
    writer = SafeWriter(out, lineterminator="\r\n")
    writer.writerow(["=team", -1, Decimal("-2.5")])
    writer.writerows([['=HYPERLINK("http://x")', "-0.5", "a,b"]])
    assert out.getvalue() == "'=team,-1,-2.5\r\n\"'=HYPERLINK(\"\"http://x\"\")\",-0.5,\"a,b\"\r\n"
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["'=team", "-1", "-2.5"], ["'=HYPERLINK(\"http://x\")", "-0.5", "a,b"]]

    out = io.StringIO(newline="")
    dict_writer = SafeDictWriter(out, ["name", "cost"], lineterminator="\n")
    dict_writer.writeheader()
    dict_writer.writerows([{"name": "@SUM(A1)", "cost": Decimal("-1")}, {"name": "\tx", "cost": "-3"}])
    assert list(csv.DictReader(io.StringIO(out.getvalue()))) == [
        {"name": "'@SUM(A1)", "cost": "-1"}, {"name": "'\tx", "cost": "-3"}]


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_a_cell_holding_a_line_break_is_quoted_whatever_the_line_terminator(end: str) -> None:
    out = io.StringIO(newline="")
    SafeWriter(out, lineterminator=end).writerows([["a\rb", "c\nd", "\re"], ["x", 1, 2]])
    assert out.getvalue() == f'"a\rb","c\nd","\'\re"{end}x,1,2{end}'
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [["a\rb", "c\nd", "'\re"], ["x", "1", "2"]]


def test_typed_values_are_written_as_they_are_and_plain_text_is_not() -> None:
    from collector.csvcells import Typed, safe_cell

    assert safe_cell(Typed("-01:00:00")) == "-01:00:00"
    assert safe_cell(Typed("-Infinity")) == "-Infinity"
    assert safe_cell("-01:00:00") == "'-01:00:00"  # the same text in a string column is checked
