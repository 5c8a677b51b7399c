"""Reading sensor tables from CSV files for the command line, with errors that name the file and line.

The rules (README, "Command line"):

* the file is UTF-8 text; lines end with LF, CRLF or CR (nothing else ends a line: a form feed or
  U+2028 is part of a cell); a cell may be quoted with '"' (RFC 4180), and only a quoted cell may hold
  the separator, a quote or a line break; blank lines are skipped;
* a header row naming the columns is required. It is refused as data when its names are numbers
  where the first data row has numbers (a file without a header whose first column is text would
  otherwise lose its first row to the header), so numeric columns need names that are not numbers;
* the separator is ',', ';' or a tab: the one that splits the header into the most columns, preferring
  one that splits the first data rows into as many; a single column whose text holds another separator
  ('|', ':' or spaces) is an error that says so;
* the time column is ``time_column`` when given, else the first column when its first value is not a
  number; its values are kept as text (and read as dates for plots when they all parse). When they
  parse (numbers or dates) and a time is not after the one before, a warning names the first such line;
* the column ``label_column`` when given, else a column named ``label`` or ``anomaly`` (any case),
  holds 0/1 labels, used only to evaluate;
* a column named ``changepoint`` (any case: SKAB's change-point annotation) and the columns named in
  ``ignore`` are left out: the table is read as if they were not there (their values are not read);
* every other column is a channel and every value in it must be a finite number in ASCII syntax:
  ``[+-]digits[.digits][e[+-]digits]`` with spaces or tabs around it (no '_' between digits, no other
  scripts' digits, no 'inf'), or a missing value: an empty cell (or one of spaces and tabs only),
  ``nan`` in any letter case with an optional sign (``NaN``, ``-nan``: what NumPy, pandas and C's printf
  write) or ``NA`` (upper case: what R writes). A missing value is read as NaN (``missing="nan"``, the
  default) or refused naming its line and column (``missing="error"``: ``mixtura detect --gaps error``).
  Nothing else stands for a missing value ('N/A', 'null', '-', '?' are not numbers); the label column
  takes no missing value. In a file of one column an empty cell is a blank line, which is skipped:
  write NaN or NA there;
* the "first value" of the first column that decides whether it is the time column is its first value
  in the first five data rows that is not a missing value (a leading gap in a channel does not make it
  the time column; a column with only missing values there is not the time column).

Reading is by blocks of lines, each parsed by NumPy when it is plain (no quote, every line with the
header's number of fields, every value of the ASCII syntax or, with missing="nan", a missing value) and
line by line otherwise, which is where
every error message comes from: both ways read the same values.
"""
import contextlib
import csv
import io
import math
import os
import re
import warnings

import numpy as np

SEPARATORS = (",", ";", "\t")
LABEL_COLUMNS = ("label", "anomaly")
ANNOTATION_COLUMNS = ("changepoint",)  # ground truth that is not the label: never a channel
_OTHER_SEPARATORS = {"|": "'|'", ":": "':'", " ": "spaces"}
_SEPARATOR_NAMES = {",": "','", ";": "';'", "\t": "tab"}
_BLANKS = " \t"  # stripped around a cell
BLOCK_BYTES = 1 << 20  # a block of lines parsed at once: large enough for NumPy, small beside the table

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)\Z", re.IGNORECASE)
# A missing value (the module documentation): empty, nan in any case with a sign or not, or 'NA'.
_MISSING = re.compile(r"(?:[+-]?[nN][aA][nN]|NA)?\Z")
MISSING_MODES = ("nan", "error")
# NumPy's loadtxt reads the ASCII syntax and 'nan'/'inf' (refused by the finiteness check), and strips
# any whitespace around a value: a block with whitespace other than blanks is read line by line.
_OTHER_SPACE = re.compile("[\x0b\x0c\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


class DataError(ValueError):
    """A file the command line cannot use; the message names the file and, where there is one, the line."""


class Table:
    """A numeric sensor table: ``values`` (n_rows, n_channels) float64, column names ``channels``,
    ``time`` (list of str, or None), ``labels`` (int8 0/1 or None), ``lines`` (file line of each row; for
    a Parquet file, its row number from 1: ``line_word`` "row") and ``ignored`` (the names of the columns
    left out)."""

    def __init__(self, path, channels, values, time, time_column, labels, label_column, lines, separator,
                 ignored=(), line_word="line"):
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
        self.line_word = line_word

    @property
    def n_rows(self):
        return self.values.shape[0]

    def time_axis(self):
        """The time column as float or datetime64 when every value parses, else the row numbers."""
        parsed = self._parsed_time()
        return parsed if parsed is not None else np.arange(self.n_rows)

    def _parsed_time(self):
        if self.time is None:
            return None
        for dtype in (np.float64, "datetime64[s]"):  # numbers first: datetime64 reads '100' as a year
            try:
                return np.array(self.time, dtype=dtype)
            except ValueError:
                pass
        return None

    def time_label(self, row):
        return self.time[row] if self.time is not None else f"row {row}"

    def time_order_problem(self):
        """A one-line description of the first row whose time is not after the previous row's, or None
        (also when the times are not all numbers or all dates: their order is then unknown)."""
        t = self._parsed_time()
        if t is None or len(t) < 2 or (t.dtype == np.float64 and not np.isfinite(t).all()):
            return None
        step = t[1:] > t[:-1]
        if step.all():
            return None
        i = int(np.argmin(step)) + 1
        what = "repeats" if t[i] == t[i - 1] else "is before"
        n_bad = int((~step).sum())
        w = self.line_word
        return (f"{self.path}: {w} {self.lines[i]}: time {_show(self.time[i])} {what} the previous row's "
                f"{_show(self.time[i - 1])} ({w} {self.lines[i - 1]}; {n_bad} such row{'s' if n_bad > 1 else ''} "
                f"in all); the windows follow the file's row order")


def _show(text, limit=60):
    """A cell in a one-line message: quoted, control characters and line separators escaped, cut."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"'{text}'" if text.isprintable() else repr(text)


def _names(names, limit=20):
    """Column names for a message, the first `limit` of them when there are more."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} columns)"


def _is_number(text):
    """ASCII number syntax (the rule for values)."""
    return _NUMBER.match(text) is not None


def _is_missing(text):
    """A missing value's spelling (the rule in the module documentation); text stripped of blanks."""
    return _MISSING.match(text) is not None


def _reads_as_number(text):
    """Whether Python's float() reads it: decides the roles of columns, so that '1_000' or Arabic-Indic
    digits in a column make it a channel with an error, not silently the time column."""
    try:
        float(text)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _no_field_limit():
    """The csv module refuses fields over 128 KiB (a 100k-column header split by the wrong separator)."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _split(line, sep):
    if '"' not in line:
        return line.split(sep)
    with _no_field_limit():
        try:
            return next(csv.reader([line], delimiter=sep), [""])
        except csv.Error:  # a NUL byte before Python 3.11: read as if unquoted
            return line.split(sep)


def _is_blank(fields):
    return not fields or (len(fields) == 1 and not fields[0].strip())


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
            raise DataError(f"{name}: line 1: one column only, and {_show(header_line.strip())} looks separated by "
                            f"{what}; mixtura reads files separated by ',', ';' or tabs")
    return ","


# ------------------------------------------------------------------------------------- blocks of lines

def _blocks(f, name):
    """(number of the first line, bytes) of consecutive blocks of whole lines of the open binary file f:
    line ends made LF, each block ending with one, an even number of quotes in each (a quoted line
    break stays inside its block), the UTF-8 checked and a leading byte-order mark dropped."""
    offset, line_no, rest = 0, 1, b""
    at_start, at_end = True, False
    while not at_end:
        data = f.read(BLOCK_BYTES)
        at_end = not data
        rest += data
        if at_start and len(rest) < 3 and not at_end:
            continue
        if at_start:
            if rest.startswith(b"\xef\xbb\xbf"):
                rest, offset = rest[3:], 3
            at_start = False
        cut = len(rest) if at_end else rest.rfind(b"\n") + 1
        if cut == 0 or (not at_end and rest.count(b'"', 0, cut) % 2):
            continue  # no whole line yet, or a quoted line break runs on: read more
        block, rest = rest[:cut], rest[cut:]
        if not block:
            break
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{name}: not a UTF-8 text file ({e.reason} at byte {offset + e.start})") from None
        offset += len(block)
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not block.endswith(b"\n"):
            block += b"\n"
        yield line_no, block
        line_no += block.count(b"\n")


def _records(name, text, first_line, sep):
    """(line number, fields) of each non-blank record of LF-ended text; the number is the record's last
    line (a quoted line break spans lines)."""
    lines = [line + "\n" for line in text.split("\n")[:-1]]  # with its end: a quoted line break is kept
    with _no_field_limit():
        reader = csv.reader(lines, delimiter=sep)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:  # a NUL byte before Python 3.11
                raise DataError(f"{name}: line {first_line + reader.line_num - 1}: {e}") from None
            if not _is_blank(fields):
                yield first_line + reader.line_num - 1, fields


def _gaps_as_nan(block, buf, seps, line_ends):
    """The block (bytes, every line ending with LF, no quote) with each cell that is empty, blanks only
    or 'NA' between blanks written 'nan', for NumPy. buf: the block as uint8; seps, line_ends: the
    positions of its separators and LFs. Vectorised: a cell is a gap by its counts of non-blank bytes and
    of 'NA' pairs (prefix sums over the block)."""
    ends = np.sort(np.concatenate([seps, line_ends]))  # the byte after each cell
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    nonblank = np.zeros(len(buf) + 1, dtype=np.int64)
    np.cumsum((buf != 32) & (buf != 9), out=nonblank[1:])  # blanks: space, tab (a tab separator is no blank)
    n_nonblank = nonblank[ends] - nonblank[starts]
    gap = n_nonblank == 0
    two = np.flatnonzero(n_nonblank == 2)
    if len(two):  # 'NA': two non-blank bytes, 'N' then 'A'
        pair = np.zeros(len(buf), dtype=np.int64)  # pair[k]: 'NA' pairs starting before k
        np.cumsum((buf[:-1] == ord("N")) & (buf[1:] == ord("A")), out=pair[1:])
        s, e = starts[two], ends[two]
        gap[two[pair[e - 1] - pair[s] == 1]] = True
    pieces, pos = [], 0
    for s, e in zip(starts[gap].tolist(), ends[gap].tolist()):
        pieces += [block[pos:s], b"nan"]
        pos = e
    pieces.append(block[pos:])
    return b"".join(pieces)


class _Columns:
    """What each column is and how a block's rows are read into arrays."""

    def __init__(self, name, header, sep, channel_index, t_index, l_index, missing):
        self.name, self.header, self.sep = name, header, sep
        self.channel_index, self.t_index, self.l_index = channel_index, t_index, l_index
        self.missing = missing

    def read(self, block, first_line):
        """(values, time list or None, labels or None, lines) of a block's rows."""
        return self._plain(block, first_line) or self._line_by_line(block.decode("utf-8"), first_line)

    def _plain(self, block, first_line):
        """The block parsed by NumPy's loadtxt (C code), or None when it is not plain: a quote, a blank
        or ragged line, whitespace other than blanks, or a value that is not a finite number of the
        ASCII syntax (nor, with missing="nan", a missing value). It is then read line by line, which says
        what is wrong. NumPy reads 'nan' in any case and sign (and nothing else) as NaN; an empty or 'NA'
        cell is given to it as 'nan'."""
        n_cols = len(self.header)
        if n_cols < 2 or b'"' in block:
            return None
        buf = np.frombuffer(block, dtype=np.uint8)
        line_ends = np.flatnonzero(buf == 10)
        seps = np.flatnonzero(buf == ord(self.sep))
        if np.any(np.diff(np.searchsorted(seps, line_ends), prepend=0) != n_cols - 1):
            return None  # a blank or ragged line
        text = block.decode("utf-8")
        if _OTHER_SPACE.search(text) or "\x00" in text:  # NumPy's strings would drop a trailing NUL
            return None
        numeric = self.channel_index + ([self.l_index] if self.l_index is not None else [])
        options = dict(delimiter=self.sep, comments=None, quotechar=None, ndmin=2)
        try:
            numbers = np.loadtxt(io.StringIO(text), dtype=np.float64, usecols=numeric, **options)
        except ValueError:  # not a number (the line-by-line reading says which), or an empty or 'NA' cell
            if self.missing != "nan":
                return None
            try:
                gaps_as_nan = _gaps_as_nan(block, buf, seps, line_ends).decode("utf-8")
                numbers = np.loadtxt(io.StringIO(gaps_as_nan), dtype=np.float64, usecols=numeric, **options)
            except ValueError:
                return None
        if not (np.isfinite(numbers).all() or (self.missing == "nan" and not np.isinf(numbers).any())):
            return None
        values = numbers[:, :len(self.channel_index)]
        labels = None
        if self.l_index is not None:
            labels = numbers[:, -1]
            if not np.isin(labels, (0.0, 1.0)).all():
                return None
            labels = labels.astype(np.int8)
            values = np.ascontiguousarray(values)
        time = None
        if self.t_index is not None:
            column = np.loadtxt(io.StringIO(text), dtype=np.str_, usecols=[self.t_index], **options)[:, 0]
            time = np.char.strip(column, _BLANKS).tolist()
        return values, time, labels, np.arange(first_line, first_line + len(line_ends), dtype=np.int64)

    def _line_by_line(self, text, first_line):
        name, header = self.name, self.header
        values, time, labels, lines = [], [], [], []
        for line_no, fields in _records(name, text, first_line, self.sep):
            if len(fields) != len(header):
                hint = ""
                others = [s for s in SEPARATORS if s != self.sep and s in self.sep.join(fields)]
                if others:
                    hint = f" (the row contains {_SEPARATOR_NAMES[others[0]]}: mixed separators?)"
                raise DataError(f"{name}: line {line_no}: {len(fields)} field{'s' if len(fields) != 1 else ''}, "
                                f"but the header has {len(header)}{hint}")
            row = [v.strip(_BLANKS) for v in fields]
            values.append([_number(name, line_no, header[j], row[j], self.sep, self.missing)
                           for j in self.channel_index])
            if self.t_index is not None:
                time.append(row[self.t_index])
            if self.l_index is not None:
                v = _number(name, line_no, header[self.l_index], row[self.l_index], self.sep)
                if v not in (0.0, 1.0):
                    raise DataError(f"{name}: line {line_no}, column {_show(header[self.l_index])}: "
                                    f"{_show(row[self.l_index])} is not a label (0 or 1)")
                labels.append(int(v))
            lines.append(line_no)
        return (np.array(values, dtype=np.float64).reshape(len(lines), len(self.channel_index)),
                time if self.t_index is not None else None,
                np.array(labels, dtype=np.int8) if self.l_index is not None else None,
                np.array(lines, dtype=np.int64))


class _Rows:
    """The table's rows, block after block, in arrays that grow in place (no second copy at the end)."""

    def __init__(self, n_channels, capacity):
        self.values = np.empty((max(capacity, 1024), n_channels), dtype=np.float64)
        self.n = 0
        self.time, self.labels, self.lines = [], [], []

    def add(self, values, time, labels, lines):
        m = len(lines)
        if self.n + m > len(self.values):
            # realloc: for a large array the pages move without a copy
            self.values.resize((max(2 * len(self.values), self.n + m), self.values.shape[1]), refcheck=False)
        self.values[self.n:self.n + m] = values
        self.n += m
        if time is not None:
            self.time.extend(time)
        if labels is not None:
            self.labels.append(labels)
        self.lines.append(lines)

    def finish(self):
        self.values.resize((self.n, self.values.shape[1]), refcheck=False)
        return self.values


# ---------------------------------------------------------------------------------------------- reading

def read_table(path, time_column=None, display_name=None, ignore=(), channels=None, label_column=None,
               check_time_order=True, missing="nan"):
    """Read a CSV sensor table (rules in the module documentation); the columns named in ``ignore``
    (and an annotation column such as SKAB's ``changepoint``) are left out. With ``channels`` (the
    columns a fitted model reads), exactly those columns are the channels, in that order, and the
    other columns besides the time and the label are left out unread. With ``check_time_order``, a
    UserWarning names the first row whose time is not after the previous one. A missing value in a
    channel (an empty cell, ``nan`` in any case and sign, ``NA``) is NaN in ``values`` with
    ``missing="nan"`` (the default) and an error with ``missing="error"``.

    Raises
    ------
    DataError
        Missing, unreadable or empty file, no header, unknown ``time_column``, no numeric column, a
        ragged row, a value that is neither a finite number nor (with ``missing="nan"``) a missing value,
        a missing value with ``missing="error"``, a label that is not 0/1, a name in
        ``ignore`` that is not a column or that is ``time_column``, a ``label_column`` that is not a
        column or is the time column, a name in ``channels`` that is not a column — the message
        names the file, the line and the column, on one line.
    """
    if missing not in MISSING_MODES:
        raise ValueError(f"read_table: missing must be one of {MISSING_MODES}, got {missing!r}")
    name = display_name or str(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not a CSV file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read: {e.strerror}") from None
    try:
        with f:
            if os.path.isdir(path):  # Windows opens nothing, POSIX may open a directory
                raise DataError(f"{name}: is a directory, not a CSV file")
            size = os.fstat(f.fileno()).st_size
            table = _read(f, name, size, time_column, ignore, channels, label_column, missing)
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not a CSV file") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read: {e.strerror}") from None
    if check_time_order:
        problem = table.time_order_problem()
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=2)
    return table


def _read(f, name, size, time_column, ignore, channels, label_column, missing):
    blocks = _blocks(f, name)
    # The header, and the first data lines to choose the separator (read from the first blocks).
    pending, head_lines = [], []
    for first_line, block in blocks:
        pending.append((first_line, block))
        head_lines = [(first_line + i, line) for first_line, b in pending
                      for i, line in enumerate(b.decode("utf-8").split("\n")[:-1])]
        if sum(1 for _, line in head_lines if line.strip()) >= 6:
            break
    first = next((k for k, (_, line) in enumerate(head_lines) if line.strip()), None)
    if first is None:
        raise DataError(f"{name}: the file is empty (a header row and data rows are needed)")
    header_no, header_line = head_lines[first]
    sample = [line for _, line in head_lines[first + 1:] if line.strip()][:5]
    sep = _choose_separator(name, header_line, sample)

    header = [h.strip() for h in _split(header_line, sep)]
    for j, h in enumerate(header):
        if not h:
            raise DataError(f"{name}: line {header_no}: column {j + 1} has no name in the header")
    if len(set(header)) != len(header):
        seen = set()
        dup = next(h for h in header if h in seen or seen.add(h))
        raise DataError(f"{name}: line {header_no}: the header names column {_show(dup)} twice")
    sample_rows = [[v.strip(_BLANKS) for v in _split(line, sep)] for line in sample]
    first_row = sample_rows[0] if sample_rows else []
    numeric = [j for j, v in enumerate(first_row[:len(header)]) if _reads_as_number(v)]
    if all(_reads_as_number(h) for h in header) or (numeric and all(_reads_as_number(header[j]) for j in numeric)):
        raise DataError(f"{name}: line {header_no}: {_show(header_line.strip())} looks like data, not a header; "
                        f"the first row must name the columns (names that are not numbers)")

    def first_is_time(j):  # its first value (in the first rows) that is not missing is not a number
        return bool(first_row) and j < len(first_row) and not _reads_as_number(_first_value(sample_rows, j) or "0")

    t_index, l_index, channel_index, ignored = choose_columns(name, header, ignore, time_column, label_column,
                                                              channels, first_is_time)
    columns = _Columns(name, header, sep, channel_index, t_index, l_index, missing)
    # The rows after the header line: the rest of the blocks read so far, then the others.
    k, cut = 0, 0
    while pending[k][0] + pending[k][1].count(b"\n") <= header_no:
        k += 1
    line, block = pending[k]
    for _ in range(header_no - line + 1):
        cut = block.index(b"\n", cut) + 1
    first_rest = [(header_no + 1, block[cut:])] if cut < len(block) else []
    line_bytes = max(1, len(block) // max(1, block.count(b"\n")))
    rows = _Rows(len(channel_index), int(1.05 * size / line_bytes))
    for first_line, b in first_rest + pending[k + 1:]:
        rows.add(*columns.read(b, first_line))
    for first_line, b in blocks:
        rows.add(*columns.read(b, first_line))
    if rows.n == 0:
        raise DataError(f"{name}: no data rows after the header (line {header_no})")
    values = rows.finish()
    return Table(path=name, channels=[header[j] for j in channel_index], values=values,
                 time=rows.time if t_index is not None else None,
                 time_column=header[t_index] if t_index is not None else None,
                 labels=np.concatenate(rows.labels) if l_index is not None else None,
                 label_column=header[l_index] if l_index is not None else None,
                 lines=np.concatenate(rows.lines), separator=sep, ignored=[header[j] for j in ignored])


def choose_columns(name, header, ignore, time_column, label_column, channels, first_is_time):
    """The roles of the columns named in `header` by the rules of the module documentation (shared by the
    CSV and Parquet readers): (time index or None, label index or None, channel indices, ignored indices).
    `first_is_time(j)`: whether column j, the first one kept, is a time column when none is named."""
    for c in ignore:
        if c not in header:
            raise DataError(f"{name}: no column {_show(c)} for --ignore-column; the columns are {_names(header)}")
        if c == time_column:
            raise DataError(f"{name}: column {_show(c)} is both --time-column and --ignore-column")
    ignored = [j for j, h in enumerate(header) if h in ignore or h.lower() in ANNOTATION_COLUMNS]
    ignored_set = set(ignored)
    kept = [j for j in range(len(header)) if j not in ignored_set]
    if time_column is not None:
        if time_column not in header:
            raise DataError(f"{name}: no column {_show(time_column)} for --time-column; the columns are "
                            f"{_names(header)}")
        t_index = header.index(time_column)
    elif kept and first_is_time(kept[0]) and header[kept[0]].lower() not in LABEL_COLUMNS:
        t_index = kept[0]
    else:
        t_index = None
    if label_column is not None:
        if label_column not in header:
            raise DataError(f"{name}: no column {_show(label_column)} for --label-column; the columns are "
                            f"{_names(header)}")
        l_index = header.index(label_column)
        if l_index == t_index:
            raise DataError(f"{name}: column {_show(label_column)} is both the time column and --label-column")
        if l_index in ignored_set:
            raise DataError(f"{name}: column {_show(label_column)} is both --label-column and left out")
    else:
        l_index = next((j for j in kept if header[j].lower() in LABEL_COLUMNS and j != t_index), None)
    if channels is None:
        channel_index = [j for j in kept if j not in (t_index, l_index)]
    else:
        absent = [c for c in channels if c not in header]
        if absent:
            others = [header[j] for j in kept if j not in (t_index, l_index)]
            raise DataError(f"{name}: the model needs the column{'s' if len(absent) > 1 else ''} "
                            f"{', '.join(_show(c) for c in absent)}; the file's other columns are "
                            f"{_names(others) if others else '(none)'}")
        channel_index = [header.index(c) for c in channels]
        for j in channel_index:
            if j in ignored_set or j in (t_index, l_index):
                role = "ignored" if j in ignored_set else "the time column" if j == t_index else "the label column"
                raise DataError(f"{name}: the model reads column {_show(header[j])} as a channel, but here it is "
                                f"{role}")
        used = set(channel_index)
        ignored = [j for j in range(len(header)) if j not in used and j not in (t_index, l_index)]
    if not channel_index:
        parts = [f"time column {_show(header[t_index])}" if t_index is not None else None,
                 f"label column {_show(header[l_index])}" if l_index is not None else None,
                 f"ignored column{'s' if len(ignored) > 1 else ''} {', '.join(_show(header[j]) for j in ignored)}"
                 if ignored else None]
        raise DataError(f"{name}: no numeric columns to analyse (the header has only the "
                        f"{' and the '.join(p for p in parts if p)})")
    return t_index, l_index, channel_index, ignored


def _first_value(rows, j):
    """Column j's first value in rows that is not a missing value, or None when there is none."""
    return next((row[j] for row in rows if j < len(row) and not _is_missing(row[j])), None)


def _number(name, line_no, column, text, sep, missing=None):
    """The value of a cell (stripped of blanks) by the rules of the module documentation. ``missing``:
    "nan" reads a missing value as NaN, "error" refuses it as one, None (labels) refuses it as before
    gaps were taken."""
    where = f"{name}: line {line_no}, column {_show(column)}"
    if missing is not None and _is_missing(text):
        if missing == "nan":
            return math.nan
        what = "empty value" if not text else f"{_show(text)} is a missing value"
        raise DataError(f"{where}: {what} (missing values are refused with --gaps error)")
    if not text:
        raise DataError(f"{where}: empty value (mixtura does not fill gaps: fill or drop the row)")
    if _NOT_FINITE.match(text):
        raise DataError(f"{where}: {_show(text)} is not a finite number (mixtura does not fill gaps: fill or drop "
                        f"the row)")
    if not _is_number(text):
        if sep != "," and _is_number(text.replace(",", ".", 1)):
            hint = " (a decimal comma? write the decimal point as '.')"
        elif _reads_as_number(text):
            hint = " (numbers are read in ASCII digits only, without '_' between them)"
        else:
            hint = ""
        raise DataError(f"{where}: {_show(text)} is not a number{hint}")
    v = float(text)
    if not math.isfinite(v):
        raise DataError(f"{where}: {_show(text)} is not a finite number (mixtura does not fill gaps: fill or drop "
                        f"the row)")
    return v
