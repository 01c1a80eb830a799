"""Reading a contacts CSV: phone numbers to wa_ids, labels, opt-in, bad rows by line.

Pure: text in, rows out. Excel exports (a byte order mark, `;` between fields, numbers
written as `+49 151 …`, `0049 151 …` or nationally as `0151 …`) read like plain ones.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.contacts.label_names import clean_label, label_key
from bot.contacts.numbers import NumberError, to_wa_id

COLUMNS = ("wa_id", "name", "labels", "opted_in")
NAME_MAX = 256
# A quoted cell may hold line breaks (Excel writes a cell's Alt+Enter so), but no contact
# field needs many; a quote still open after this many lines is taken as never closed.
MAX_CELL_LINES = 20
_TRUE = frozenset({"true", "yes", "ja", "1", "y", "j"})
_FALSE = frozenset({"false", "no", "nein", "0", "n"})


class CsvError(ValueError):
    """The file as a whole cannot be read (no header, no wa_id column); `problem` says which,
    for a message in the reader's language: "empty", "quote" or "no_wa_id"."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class ContactRow:
    line: int
    wa_id: str
    name: str | None  # None: not given, leave as it is
    labels: tuple[str, ...] | None  # None: not given, leave as they are
    opted_in: bool | None  # None: not given, leave as it is (new contacts: not opted in)
    duplicate_of: int | None = None  # the line that had the same number before


class RowProblem(enum.StrEnum):
    """Why a row was skipped, beside a number's own (bot.contacts.numbers.Problem)."""

    OPTED_IN = "opted_in"
    FIELDS = "fields"
    QUOTE = "quote"
    LABEL = "label"


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str  # in English, as the command line prints it
    # For a report in the reader's language: a RowProblem or a numbers.Problem, and the value
    # it is about (the number, the opted_in cell, the count of fields).
    problem: str = ""
    value: str = ""


def decode(data: bytes) -> str:
    """UTF-8 (with or without a byte order mark), else Windows-1252 as older Excel saves."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def normalize_wa_id(text: str, region: str | None = None) -> str:
    """A phone number as its wa_id (see bot.contacts.numbers.to_wa_id): international, or
    national in `region`; NumberError (a ValueError) if it is no valid number."""
    return to_wa_id(text, region)


def parse_bool(text: str) -> bool | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"opted_in is {text.strip()!r}; use true or false")


def parse_labels(text: str) -> tuple[str, ...] | None:
    """Labels separated by `;` (`,` too), trimmed, without repeats; None when empty."""
    names: list[str] = []
    for part in re.split(r"[;,]", text):
        name = clean_label(part)
        if not name:
            continue
        if label_key(name) not in (label_key(n) for n in names):
            names.append(name)
    return tuple(names) if names else None


def sniff_delimiter(header: str) -> str:
    """`;` for the header of a German Excel export, else `,`."""
    return ";" if header.count(";") > header.count(",") else ","


def read_contacts(text: str, region: str | None = None) -> Iterator[ContactRow | BadRow]:
    """Every data row of the file as a ContactRow or a BadRow, with its line number; national
    numbers are read in `region` (None: refused for want of a country code).

    Raises CsvError when the header has no wa_id column.
    """
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    records = _records(text, sniff_delimiter(first_line))
    first = next(records, None)
    if first is None:
        raise CsvError("the file is empty; expected the header wa_id,name,labels,opted_in", "empty")
    if isinstance(first, BadRow):
        raise CsvError(f"line 1: {first.reason}", "quote")
    _, header = first
    columns = [h.strip().lower().removeprefix("\ufeff") for h in header]
    if "wa_id" not in columns:
        raise CsvError(
            f"line 1: no wa_id column (found {', '.join(columns) or 'nothing'}); "
            "expected the header wa_id,name,labels,opted_in",
            "no_wa_id",
        )
    index = {name: columns.index(name) for name in COLUMNS if name in columns}
    seen: dict[str, int] = {}
    for record in records:
        if isinstance(record, BadRow):
            yield record
            continue
        line, fields = record
        if not any(f.strip() for f in fields):
            continue  # blank lines, or a row of empty cells as spreadsheets leave behind
        if len(fields) > len(columns) and any(f.strip() for f in fields[len(columns) :]):
            yield BadRow(
                line,
                f"{len(fields)} fields, the header has {len(columns)}",
                RowProblem.FIELDS,
                str(len(fields)),
            )
            continue

        def field(name: str, fields: list[str] = fields) -> str:
            i = index.get(name)
            return fields[i] if i is not None and i < len(fields) else ""

        try:
            wa_id = normalize_wa_id(field("wa_id"), region)
        except NumberError as exc:
            yield BadRow(line, str(exc), exc.problem, exc.text)
            continue
        try:
            opted_in = parse_bool(field("opted_in"))
        except ValueError as exc:
            yield BadRow(line, str(exc), RowProblem.OPTED_IN, field("opted_in").strip())
            continue
        try:
            labels = parse_labels(unguard(field("labels")))
        except ValueError as exc:
            yield BadRow(line, str(exc), RowProblem.LABEL)
            continue
        name = unguard(" ".join(field("name").split()))[:NAME_MAX] or None
        yield ContactRow(line, wa_id, name, labels, opted_in, duplicate_of=seen.get(wa_id))
        seen[wa_id] = line


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]] | BadRow]:
    """Each record of the file with the line it starts on, or a BadRow for a line not read.

    Python's csv module reads everything after an opening quote that never closes into that
    one field, so the rows below it would vanish. A record running over line breaks is
    therefore kept only when it is a proper cell with line breaks, as Excel writes them: its
    quotes close by the rules (strict parsing) within MAX_CELL_LINES lines, and no delimiter
    follows its first line break (rows swallowed by a stray quote further down have them). Any
    other is an unclosed quote: its line is reported and reading goes on at the next line.
    """
    lines = io.StringIO(text, newline="").readlines()
    start = 0
    while start < len(lines):
        window = lines[start : start + MAX_CELL_LINES]
        try:
            # Lenient first, so that a line that ends its record reads as it always did.
            fields, used = _read_record(window, delimiter, strict=False)
        except csv.Error as exc:
            yield BadRow(start + 1, str(exc), RowProblem.QUOTE)
            start += 1
            continue
        if used > 1:
            unclosed = _unclosed_quote(window, delimiter, start + 1)
            if unclosed is not None:
                yield BadRow(start + 1, unclosed, RowProblem.QUOTE)
                start += 1
                continue
        yield start + 1, fields
        start += used


def _read_record(lines: list[str], delimiter: str, *, strict: bool) -> tuple[list[str], int]:
    """The first record in `lines` and how many of the lines it takes."""
    reader = csv.reader(lines, delimiter=delimiter, strict=strict)
    return next(reader), reader.line_num


def _unclosed_quote(lines: list[str], delimiter: str, line: int) -> str | None:
    """Why the record on `lines` (from file line `line`, over line breaks) is not a proper one."""
    try:
        fields, used = _read_record(lines, delimiter, strict=True)
    except csv.Error:
        return 'unclosed quote (a field opens with " and is not closed)'
    for cell in fields:
        _first, newline, rest = cell.replace("\r", "\n").partition("\n")
        if newline and delimiter in rest:
            return (
                f"unclosed quote (the quoted field runs on to line {line + used - 1} "
                "over what look like further rows)"
            )
    return None


# A cell a spreadsheet would run as a formula: written with a leading apostrophe (which Excel
# and LibreOffice show as text), and read back without it.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def guard(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def unguard(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def write_contacts(rows: Iterable[tuple[str, str | None, Iterable[str], bool]]) -> Iterator[str]:
    """The CSV of these contacts (wa_id, name, labels, opted_in), header first, a line at a
    time: the file `contacts import` reads back as it was."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for wa_id, name, labels, opted_in in rows:
        cells = [wa_id, guard(name or ""), guard(";".join(labels)), "true" if opted_in else "false"]
        writer.writerow(cells)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()
