"""Reading sensor tables from CSV files for the command line, with errors that name the file and line.

The rules (README, "Command line"):

* a header row naming the columns is required;
* the separator is ',', ';' or a tab: the one that splits the header into the most columns, preferring
  one that splits the first data rows into as many; a single column whose text holds another separator
  ('|', ':' or spaces) is an error that says so;
* the time column is ``time_column`` when given, else the first column when its first value is not a
  number; its values are kept as text (and read as dates for plots when they all parse);
* the column ``label_column`` when given, else a column named ``label`` or ``anomaly`` (any case),
  holds 0/1 labels, used only to evaluate;
* a column named ``changepoint`` (any case: SKAB's change-point annotation) and the columns named in
  ``ignore`` are left out: the table is read as if they were not there (their values are not read);
* every other column is a channel and every value in it must be a finite number.
"""
import csv
import math

import numpy as np

SEPARATORS = (",", ";", "\t")
LABEL_COLUMNS = ("label", "anomaly")
ANNOTATION_COLUMNS = ("changepoint",)  # ground truth that is not the label: never a channel
_OTHER_SEPARATORS = {"|": "'|'", ":": "':'", " ": "spaces"}
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab"}


class DataError(ValueError):
    """A file the command line cannot use; the message names the file and, where there is one, the line."""


class Table:
    """A numeric sensor table: ``values`` (n_rows, n_channels) float64, column names ``channels``,
    ``time`` (list of str, or None), ``labels`` (int8 0/1 or None), ``lines`` (file line of each row) and
    ``ignored`` (the names of the columns left out)."""

    def __init__(self, path, channels, values, time, time_column, labels, label_column, lines, separator,
                 ignored=()):
        self.path = path
        self.channels = channels
        self.values = values
        self.time = time
        self.time_column = time_column
        self.labels = labels
        self.label_column = label_column
        self.lines = lines
        self.separator = separator
        self.ignored = list(ignored)

    @property
    def n_rows(self):
        return self.values.shape[0]

    def time_axis(self):
        """The time column as float or datetime64 when every value parses, else the row numbers."""
        if self.time is not None:
            for dtype in (np.float64, "datetime64[s]"):  # numbers first: datetime64 reads '100' as a year
                try:
                    return np.array(self.time, dtype=dtype)
                except ValueError:
                    pass
        return np.arange(self.n_rows)

    def time_label(self, row):
        return self.time[row] if self.time is not None else f"row {row}"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split(line, sep):
    return next(csv.reader([line], delimiter=sep))


def _choose_separator(name, header_line, data_lines):
    """The separator by the rule in the module documentation, or a DataError for a one-column file
    that looks separated by something else."""
    best, best_key = None, None
    for sep in SEPARATORS:
        n = len(_split(header_line, sep))
        if n < 2:
            continue
        consistent = all(len(_split(line, sep)) == n for line in data_lines)
        key = (consistent, n)
        if best_key is None or key > best_key:
            best, best_key = sep, key
    if best is not None:
        return best
    for other, what in _OTHER_SEPARATORS.items():
        sample = [header_line.strip()] + [line.strip() for line in data_lines]
        if all(other in s for s in sample if s):
            raise DataError(f"{name}: line 1: one column only, and '{header_line.strip()}' looks separated by {what}; "
                            f"mixtura reads files separated by ',', ';' or tabs")
    return ","


def read_table(path, time_column=None, display_name=None, ignore=(), channels=None, label_column=None):
    """Read a CSV sensor table (rules in the module documentation); the columns named in ``ignore``
    (and an annotation column such as SKAB's ``changepoint``) are left out. With ``channels`` (the
    columns a fitted model reads), exactly those columns are the channels, in that order, and the
    other columns besides the time and the label are left out unread.

    Raises
    ------
    DataError
        Missing, unreadable or empty file, no header, unknown ``time_column``, no numeric column, a
        ragged row, a value that is not a finite number or a label that is not 0/1, a name in
        ``ignore`` that is not a column or that is ``time_column``, a ``label_column`` that is not a
        column or is the time column, a name in ``channels`` that is not a column — the message
        names the file, the line and the column.
    """
    name = display_name or str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read: {e.strerror}") from None

    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError(f"{name}: the file is empty (a header row and data rows are needed)")
    header_line = lines[first]
    sample = [line for line in lines[first + 1:first + 6] if line.strip()]
    sep = _choose_separator(name, header_line, sample)

    reader = csv.reader(lines[first:], delimiter=sep)
    header = [h.strip() for h in next(reader)]
    header_no = first + 1
    for j, h in enumerate(header):
        if not h:
            raise DataError(f"{name}: line {header_no}: column {j + 1} has no name in the header")
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DataError(f"{name}: line {header_no}: the header names column '{dup}' twice")
    if all(_is_number(h) for h in header):
        raise DataError(f"{name}: line {header_no}: '{header_line.strip()}' looks like data, not a header; "
                        f"the first row must name the columns")

    rows, row_lines = [], []
    for fields in reader:
        line_no = first + reader.line_num
        if not fields or all(not v.strip() for v in fields) and len(fields) <= 1:
            continue  # blank line
        if len(fields) != len(header):
            hint = ""
            others = [s for s in SEPARATORS if s != sep and s in sep.join(fields)]
            if others:
                hint = f" (the row contains {_SEPARATOR_NAMES[others[0]]}: mixed separators?)"
            raise DataError(f"{name}: line {line_no}: {len(fields)} field{'s' if len(fields) != 1 else ''}, "
                            f"but the header has {len(header)}{hint}")
        rows.append([v.strip() for v in fields])
        row_lines.append(line_no)
    if not rows:
        raise DataError(f"{name}: no data rows after the header (line {header_no})")

    for c in ignore:
        if c not in header:
            raise DataError(f"{name}: no column '{c}' for --ignore-column; the columns are {', '.join(header)}")
        if c == time_column:
            raise DataError(f"{name}: column '{c}' is both --time-column and --ignore-column")
    ignored = [j for j, h in enumerate(header) if h in ignore or h.lower() in ANNOTATION_COLUMNS]
    kept = [j for j in range(len(header)) if j not in ignored]
    if time_column is not None:
        if time_column not in header:
            raise DataError(f"{name}: no column '{time_column}' for --time-column; the columns are "
                            f"{', '.join(header)}")
        t_index = header.index(time_column)
    elif kept and not _is_number(rows[0][kept[0]]) and header[kept[0]].lower() not in LABEL_COLUMNS:
        t_index = kept[0]
    else:
        t_index = None
    if label_column is not None:
        if label_column not in header:
            raise DataError(f"{name}: no column '{label_column}' for --label-column; the columns are "
                            f"{', '.join(header)}")
        l_index = header.index(label_column)
        if l_index == t_index:
            raise DataError(f"{name}: column '{label_column}' is both the time column and --label-column")
        if l_index in ignored:
            raise DataError(f"{name}: column '{label_column}' is both --label-column and left out")
    else:
        l_index = next((j for j in kept if header[j].lower() in LABEL_COLUMNS and j != t_index), None)
    if channels is None:
        channel_index = [j for j in kept if j not in (t_index, l_index)]
    else:
        missing = [c for c in channels if c not in header]
        if missing:
            others = [header[j] for j in kept if j not in (t_index, l_index)]
            raise DataError(f"{name}: the model needs the column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(c) for c in missing)}; the file's other columns are "
                            f"{', '.join(others) if others else '(none)'}")
        channel_index = [header.index(c) for c in channels]
        for j in channel_index:
            if j in ignored or j in (t_index, l_index):
                role = "ignored" if j in ignored else "the time column" if j == t_index else "the label column"
                raise DataError(f"{name}: the model reads column '{header[j]}' as a channel, but here it is {role}")
        ignored = [j for j in range(len(header)) if j not in channel_index and j not in (t_index, l_index)]
    if not channel_index:
        used = [f"time column '{header[t_index]}'" if t_index is not None else None,
                f"label column '{header[l_index]}'" if l_index is not None else None,
                f"ignored column{'s' if len(ignored) > 1 else ''} {', '.join(repr(header[j]) for j in ignored)}"
                if ignored else None]
        raise DataError(f"{name}: no numeric columns to analyse (the header has only the "
                        f"{' and the '.join(u for u in used if u)})")

    values = np.empty((len(rows), len(channel_index)), dtype=np.float64)
    for i, (row, line_no) in enumerate(zip(rows, row_lines)):
        for k, j in enumerate(channel_index):
            values[i, k] = _number(name, line_no, header[j], row[j], sep)
    labels = None
    if l_index is not None:
        labels = np.empty(len(rows), dtype=np.int8)
        for i, (row, line_no) in enumerate(zip(rows, row_lines)):
            v = _number(name, line_no, header[l_index], row[l_index], sep)
            if v not in (0.0, 1.0):
                raise DataError(f"{name}: line {line_no}, column '{header[l_index]}': '{row[l_index]}' is not a "
                                f"label (0 or 1)")
            labels[i] = int(v)
    return Table(path=name, channels=[header[j] for j in channel_index], values=values,
                 time=[r[t_index] for r in rows] if t_index is not None else None,
                 time_column=header[t_index] if t_index is not None else None,
                 labels=labels, label_column=header[l_index] if l_index is not None else None,
                 lines=np.array(row_lines), separator=sep, ignored=[header[j] for j in ignored])


def _number(name, line_no, column, text, sep):
    where = f"{name}: line {line_no}, column '{column}'"
    if not text:
        raise DataError(f"{where}: empty value (mixtura does not fill gaps: fill or drop the row)")
    try:
        v = float(text)
    except ValueError:
        hint = ""
        if sep != "," and _is_number(text.replace(",", ".", 1)):
            hint = " (a decimal comma? write the decimal point as '.')"
        raise DataError(f"{where}: '{text}' is not a number{hint}") from None
    if not math.isfinite(v):
        raise DataError(f"{where}: '{text}' is not a finite number (mixtura does not fill gaps: fill or drop the row)")
    return v
