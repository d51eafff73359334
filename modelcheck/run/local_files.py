"""Read a gate's local data file (.csv, .json, .jsonl, .parquet) with pandas/pyarrow, fast and with reasons.

``datasets`` costs seconds to import and writes an Arrow cache before the first row; pandas reads the
same file in milliseconds. A file that cannot be read is a DataError that says why and where: the
line that is not UTF-8, the line with the wrong number of fields, the JSON line cut short, an empty file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from modelcheck.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".json", ".jsonl", ".parquet")


def read_local(path: Path, *, limit: int | None = None) -> pd.DataFrame:
    """The rows of ``path`` in file order (the first ``limit`` of them), as a DataFrame."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv(path, limit)
    if suffix in (".json", ".jsonl"):
        return _json(path, limit)
    if suffix == ".parquet":
        return _parquet(path, limit)
    raise DataError(f"data file {path} has an unsupported extension {suffix!r}; use one of {', '.join(SUFFIXES)}")


def _csv(path: Path, limit: int | None) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(path, nrows=limit, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file is empty; a CSV data file needs a header line and at least one row"
        ) from None
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except pd.errors.ParserError as exc:
        raise DataError(
            f"cannot read {path} as CSV: {_short(exc)} (fix that line, or quote fields that hold commas)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as CSV: {_short(exc)}") from None
    if frame.empty and limit != 0:
        raise DataError(f"{path}: the file has a header line but no rows to evaluate")
    return frame


def _json(path: Path, limit: int | None) -> pd.DataFrame:
    """A JSON array of records (or an object of columns), or JSON lines (one record per line)."""
    import pandas as pd

    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty; a JSON data file holds records (a list, or one object per line)")
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped[:1] in "[{" and not _looks_like_lines(stripped):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        records = document.get("data", document) if isinstance(document, dict) else document
        try:
            frame = pd.DataFrame(records)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: expected a list of records or an object of columns ({_short(exc)})") from None
        return frame.head(limit) if limit is not None else frame
    return _json_lines(path, text, limit)


def _looks_like_lines(text: str) -> bool:
    """``{...}\\n{...}``: JSON lines in a .json file (as datasets accepts)."""
    first, _, rest = text.partition("\n")
    if not first.strip().startswith("{") or not rest.strip():
        return False
    try:
        json.loads(first)
    except json.JSONDecodeError:
        return False
    return True


def _json_lines(path: Path, text: str, limit: int | None) -> pd.DataFrame:
    import pandas as pd

    records: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if limit is not None and len(records) >= limit:
            break
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            cut = " (was it cut short?)" if number == len(text.splitlines()) else ""
            raise DataError(
                f"{path} line {number} is not valid JSON{cut}: {exc.msg} at column {exc.colno}; "
                "each line of a JSON-lines file is one object"
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{path} line {number} holds a {type(record).__name__}, not a JSON object (a record)")
        records.append(record)
    return pd.DataFrame.from_records(records)


def _parquet(path: Path, limit: int | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read {path} as parquet: {_short(exc)}") from None
    if limit is not None:
        table = table.slice(0, limit)
    return table.to_pandas()


def _not_utf8(path: Path) -> DataError:
    """Where the file stops being UTF-8: its line and column."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _undecodable(path, raw, exc)
    return DataError(f"{path} is not UTF-8; save the file as UTF-8")


def _undecodable(path: Path, raw: bytes, exc: UnicodeDecodeError) -> DataError:
    line = raw.count(b"\n", 0, exc.start) + 1
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    return DataError(
        f"{path} line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x}) at column {column}; "
        "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
