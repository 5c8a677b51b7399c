"""Sensor data shipped inside the package.

``machine_temperature_system_failure`` from the Numenta Anomaly Benchmark (NAB, ``realKnownCause/``,
MIT licence, ``data/LICENSE-NAB.txt``): the temperature of an industrial machine every 5 minutes,
22,695 readings from 2013-12-02 to 2014-02-19, with NAB's four labelled anomaly windows.
"""
import csv
import dataclasses
import pathlib

import numpy as np

__all__ = ["SensorSeries", "data_path", "load_machine_temperature"]

_DATA = pathlib.Path(__file__).resolve().parent / "data"
MACHINE_TEMPERATURE = "machine_temperature_system_failure.csv"
MACHINE_TEMPERATURE_WINDOWS = "machine_temperature_system_failure.windows.csv"


def data_path(name=MACHINE_TEMPERATURE):
    """Path of a bundled data file (``machine_temperature_system_failure.csv``, its ``.windows.csv``,
    ``LICENSE-NAB.txt``, ``README.md``)."""
    path = _DATA / name
    if not path.is_file():
        available = sorted(p.name for p in _DATA.iterdir())
        raise FileNotFoundError(f"no bundled data file {name!r}; the package holds {available}")
    return path


def read_windows(path):
    """NAB anomaly windows as a list of (start, end) ``datetime64[s]`` pairs, both ends included."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip() for c in rows[0]] != ["start", "end"]:
        raise ValueError(f"{path}: line 1 must be the header 'start,end'")
    windows = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2:
            raise ValueError(f"{path}: line {line}: expected 'start,end', got {','.join(row)!r}")
        start, end = (np.datetime64(v.strip(), "s") for v in row)
        windows.append((start, end))
    return windows


def window_labels(timestamps, windows):
    """1 for the timestamps inside any (start, end) window (ends included), else 0 (int8)."""
    timestamps = np.asarray(timestamps, dtype="datetime64[s]")
    labels = np.zeros(len(timestamps), dtype=np.int8)
    for start, end in windows:
        labels[(timestamps >= start) & (timestamps <= end)] = 1
    return labels


@dataclasses.dataclass(frozen=True)
class SensorSeries:
    """A labelled single-channel sensor series (see :func:`load_machine_temperature`)."""

    timestamps: np.ndarray
    values: np.ndarray
    labels: np.ndarray
    windows: list
    path: pathlib.Path
    windows_path: pathlib.Path
    DESCR: str


def load_machine_temperature():
    """NAB's machine_temperature_system_failure series with 0/1 labels from its anomaly windows.

    Returns
    -------
    SensorSeries with
        timestamps : ndarray of datetime64[s], shape (22695,)
        values : ndarray of float64, shape (22695,), degrees (NAB gives no unit)
        labels : ndarray of int8, shape (22695,), 1 inside a labelled anomaly window
        windows : list of (start, end) datetime64[s] pairs, NAB's four anomaly windows
        path, windows_path : pathlib.Path of the bundled CSV files
        DESCR : str, the bundled README
    """
    path = data_path(MACHINE_TEMPERATURE)
    windows_path = data_path(MACHINE_TEMPERATURE_WINDOWS)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [r for r in reader if r]
    if header != ["timestamp", "value"]:
        raise ValueError(f"{path}: unexpected header {header}")
    timestamps = np.array([r[0] for r in rows], dtype="datetime64[s]")
    values = np.array([float(r[1]) for r in rows], dtype=np.float64)
    windows = read_windows(windows_path)
    return SensorSeries(timestamps=timestamps, values=values, labels=window_labels(timestamps, windows),
                        windows=windows, path=path, windows_path=windows_path,
                        DESCR=data_path("README.md").read_text(encoding="utf-8"))
