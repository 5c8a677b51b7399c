"""Reading sensor tables from Parquet files for the command line (optional: needs pyarrow).

The column rules are the CSV reader's (``_csv.choose_columns``): the time column is ``time_column`` or
else the first column kept when its type is not a number (text, a timestamp, a date); the label column is
``label_column`` or a column named ``label`` or ``anomaly`` (integers or booleans, 0/1, no missing value);
``changepoint`` and the ``ignore`` columns are left out unread; every other column is a channel of
integers, floats or decimals, where a null or NaN is a missing value (NaN, or an error with
``missing="error"``) and an infinity is an error. Errors name the file, the row (from 1) and the column.
Timestamps become text as in a CSV file ("2024-01-01 00:05:00"; fractions of a second only when there
are some); tz-aware ones are in UTC.
"""
import os

import numpy as np

from ._csv import MISSING_MODES, DataError, Table, _show, choose_columns

INSTALL = "pip install pyarrow"


def is_parquet(path):
    """Whether `path` names a Parquet file (by its extension, as the command line decides)."""
    return os.fspath(path).lower().endswith(".parquet")


def _pyarrow(name):
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DataError(f"{name}: reading Parquet files needs pyarrow, which is not installed: {INSTALL}") from None
    return pyarrow


def read_parquet(path, time_column=None, display_name=None, ignore=(), channels=None, label_column=None,
                 check_time_order=True, missing="nan"):
    """The Table of a Parquet file, by the CSV reader's rules (module documentation); DataError on one
    line naming the file, the row and the column."""
    import warnings

    if missing not in MISSING_MODES:
        raise ValueError(f"read_parquet: missing must be one of {MISSING_MODES}, got {missing!r}")
    name = display_name or str(path)
    pa = _pyarrow(name)
    if os.path.isdir(path):
        raise DataError(f"{name}: is a directory, not a Parquet file")
    try:
        pf = pa.parquet.ParquetFile(path)
        schema = pf.schema_arrow
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read: {e.strerror or _first_line(e)}") from None
    except (pa.ArrowException, ValueError) as e:
        raise DataError(f"{name}: not a Parquet file that pyarrow reads ({_first_line(e)})") from None
    header = list(schema.names)
    if not header:
        raise DataError(f"{name}: the file has no columns")
    seen = set()
    dup = next((h for h in header if h in seen or seen.add(h)), None)
    if dup is not None:
        raise DataError(f"{name}: the file names column {_show(dup)} twice")
    types = [schema.field(j).type for j in range(len(header))]

    def number_type(t):
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)

    t_index, l_index, channel_index, ignored = choose_columns(
        name, header, ignore, time_column, label_column, channels, lambda j: not number_type(types[j]))
    for j in channel_index:
        if not number_type(types[j]):
            raise DataError(f"{name}: column {_show(header[j])} holds {types[j]} values, not numbers; leave it out "
                            f"with --ignore-column")
    if l_index is not None and not (pa.types.is_integer(types[l_index]) or pa.types.is_boolean(types[l_index])):
        raise DataError(f"{name}: column {_show(header[l_index])} holds {types[l_index]} values, not labels (0 or 1)")
    wanted = sorted({*channel_index, *(j for j in (t_index, l_index) if j is not None)})
    try:
        data = pf.read(columns=[header[j] for j in wanted])
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{name}: cannot read: {_first_line(e)}") from None
    n = data.num_rows
    if n == 0:
        raise DataError(f"{name}: no data rows")
    values = np.empty((n, len(channel_index)), dtype=np.float64)
    for k, j in enumerate(channel_index):
        column = data.column(header[j])
        x = column.cast(pa.float64()).to_numpy(zero_copy_only=False) if n else np.empty(0)
        x = np.array(x, dtype=np.float64)  # nulls are NaN here
        bad = ~np.isfinite(x)
        if bad.any():
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            infinite = bad & ~np.isnan(x) & ~nulls
            if infinite.any():
                i = int(np.argmax(infinite))
                raise DataError(f"{name}: row {i + 1}, column {_show(header[j])}: {float(x[i])!r} is not a finite number")
            if missing == "error":
                i = int(np.argmax(bad))
                what = "null" if nulls[i] else "NaN"
                raise DataError(f"{name}: row {i + 1}, column {_show(header[j])}: {what} (missing values are refused "
                                f"with --gaps error)")
        values[:, k] = x
    labels = None
    if l_index is not None:
        column = data.column(header[l_index])
        if column.null_count:
            i = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))
            raise DataError(f"{name}: row {i + 1}, column {_show(header[l_index])}: no label (a null)")
        y = column.cast(pa.int64()).to_numpy(zero_copy_only=False)
        bad = (y != 0) & (y != 1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{name}: row {i + 1}, column {_show(header[l_index])}: {int(y[i])} is not a label "
                            f"(0 or 1)")
        labels = y.astype(np.int8)
    time = _time_text(pa, data.column(header[t_index])) if t_index is not None else None
    table = Table(path=name, channels=[header[j] for j in channel_index], values=values, time=time,
                  time_column=header[t_index] if t_index is not None else None, labels=labels,
                  label_column=header[l_index] if l_index is not None else None,
                  lines=np.arange(1, n + 1), separator=None, ignored=[header[j] for j in ignored], line_word="row")
    if check_time_order:
        problem = table.time_order_problem()
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=2)
    return table


def _time_text(pa, column):
    """The time column as text, as a CSV file would hold it (a null: "")."""
    t = column.type
    if pa.types.is_timestamp(t):
        v = column.to_numpy(zero_copy_only=False)  # datetime64 (UTC for tz-aware), NaT for a null
        whole = v.astype("datetime64[s]")
        if np.all((v == whole) | np.isnat(v)):
            v = whole  # no fractions of a second: none written
        text = np.datetime_as_string(v)
        return ["" if s == "NaT" else s.replace("T", " ") for s in text.tolist()]
    return ["" if s is None else s for s in column.cast(pa.string()).to_pylist()]


def _first_line(e):
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
