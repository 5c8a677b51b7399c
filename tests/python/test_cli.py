"""The `mixtura` command line: the bundled data end to end, CSV reading and its errors, fit + score."""
import csv
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import mixtura
from gpu_util import HAS_GPU
from mixtura import _core, cli, datasets
from mixtura._csv import DataError, read_table
from model_tool_util import model_tool

# Not run on the lower copies of the core by tests/run_all.sh (conftest.py), for this reason:
pytestmark = pytest.mark.top_level_only(reason=(
    "the command line's options, files, outputs and errors; its fits are DensityAnomalyDetector's, "
    "checked at every level by test_anomaly*.py and test_model_files.py"))

N_ROWS = 22695  # readings in NAB's machine_temperature_system_failure.csv


def run_main(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def model_settings(path):
    """The CLI's settings in a model file (its section cli.settings)."""
    _, sections = _core.model_file_from_bytes(pathlib.Path(path).read_bytes(), "test")
    return json.loads(sections[cli.SETTINGS_SECTION])


def rewrite_settings(path, settings):
    """The model file at path with its section cli.settings replaced by `settings` (None: removed)."""
    path = pathlib.Path(path)
    kind, sections = _core.model_file_from_bytes(path.read_bytes(), "test")
    del sections[cli.SETTINGS_SECTION]
    if settings is not None:
        sections[cli.SETTINGS_SECTION] = json.dumps(settings)
    path.write_bytes(_core.model_file_to_bytes(kind, sections))


def detector_bytes(path):
    """The model file at path without its section cli.settings: the detector's bytes."""
    kind, sections = _core.model_file_from_bytes(pathlib.Path(path).read_bytes(), "test")
    del sections[cli.SETTINGS_SECTION]
    return _core.model_file_to_bytes(kind, sections)


def read_scores(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


# ------------------------------------------------------------------------------------ bundled data

def test_bundled_data_is_installed_with_its_licence():
    folder = datasets.data_path().parent
    # the installed package, not the checkout: the wheel must carry the files
    assert folder == pathlib.Path(mixtura.__file__).resolve().parent / "data"
    for name in ("machine_temperature_system_failure.csv", "machine_temperature_system_failure.windows.csv",
                 "LICENSE-NAB.txt", "README.md"):
        assert (folder / name).is_file(), name
    assert "Copyright 2014-2024 Numenta" in (folder / "LICENSE-NAB.txt").read_text()


def test_load_machine_temperature():
    d = datasets.load_machine_temperature()
    assert d.timestamps.shape == d.values.shape == d.labels.shape == (N_ROWS,)
    assert d.timestamps.dtype == np.dtype("datetime64[s]")
    # every 5 minutes, except one step back by 55 minutes in NAB's file (kept as it is)
    step = np.diff(d.timestamps).astype(int)
    assert np.flatnonzero(step != 300).tolist() == [10148] and step[10148] == -3300
    assert str(d.timestamps[0]) == "2013-12-02T21:15:00" and d.values[0] == 73.96732207
    assert len(d.windows) == 4 and set(np.unique(d.labels)) == {0, 1}
    # every labelled reading lies inside a window, and both ends of each window are labelled
    for start, end in d.windows:
        inside = (d.timestamps >= start) & (d.timestamps <= end)
        assert d.labels[inside].all()
        assert d.labels[d.timestamps == start].all() and d.labels[d.timestamps == end].all()
    outside = np.ones(N_ROWS, dtype=bool)
    for start, end in d.windows:
        outside &= ~((d.timestamps >= start) & (d.timestamps <= end))
    assert not d.labels[outside].any()


def test_unknown_bundled_file():
    with pytest.raises(FileNotFoundError, match="no bundled data file 'nope.csv'"):
        datasets.data_path("nope.csv")


@pytest.fixture(scope="module")
def detect_run(tmp_path_factory):
    """`python -m mixtura detect` on the bundled data (the README's first command), in a fresh folder."""
    out_dir = tmp_path_factory.mktemp("detect") / "out"
    proc = subprocess.run([sys.executable, "-m", "mixtura", "detect", "--out", str(out_dir)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc, out_dir


def test_detect_summary(detect_run):
    proc, out_dir = detect_run
    s = proc.stdout
    assert "machine_temperature_system_failure.csv (bundled NAB sample, MIT licence" in s
    assert f"rows        {N_ROWS} (2013-12-02 21:15:00 .. 2014-02-19 15:25:00)" in s
    assert "channels    1: value" in s
    assert f"windows     {cli.DEFAULT_WINDOW} rows, step 1" in s
    assert re.search(r"model       GaussianMixture, \d+ components?, full covariance", s), s
    assert re.search(r"threshold   -?\d", s)
    m = re.search(r"anomalies   (\d+) events? \(at least 6 flagged windows, gaps of up to (\d+) merged\), (\d+) of "
                  r"(\d+) windows flagged", s)
    assert m, s
    assert int(m.group(4)) == N_ROWS - cli.DEFAULT_WINDOW + 1
    assert int(m.group(1)) >= 1 and int(m.group(2)) == cli.DEFAULT_WINDOW  # the default gap: one window's span
    # every event line names its peak and top channel
    event_line = (r"\n    \d{4}-\S+ \S+ \.\. \S+ \S+  \d+ (of \d+ )?windows? flagged, peak \d{4}-\S+ \S+ score \S+; "
                  r"top channels: value \|z\| \d")
    assert re.search(event_line, s), s
    auc = re.search(r"ROC-AUC     (0\.\d+), average precision (0\.\d+) \(windows after the training rows", s)
    assert auc, s
    # a density fitted on the first 15 % ranks NAB's failure windows above chance
    assert float(auc.group(1)) > 0.6
    # NAB's labelled windows after the training rows (3; the first lies in the training rows), as events
    event_score = r"\n  events      [0-3] of 3 labelled windows detected, \d+ false events?, NAB-style score -?\d"
    assert re.search(event_score, s), s
    assert proc.stderr == ""  # stderr is not a terminal: no progress display


def test_detect_outputs(detect_run):
    proc, out_dir = detect_run
    header, rows = read_scores(out_dir / "scores.csv")
    assert header == ["timestamp", "score", "threshold", "flagged", "label"]
    assert len(rows) == N_ROWS - cli.DEFAULT_WINDOW + 1
    d = datasets.load_machine_temperature()
    ends = np.arange(cli.DEFAULT_WINDOW - 1, N_ROWS)
    # each window carries the time and label of its last reading
    assert [r[0] for r in rows[:3]] == [str(t).replace("T", " ") for t in d.timestamps[ends[:3]]]
    np.testing.assert_array_equal([int(r[4]) for r in rows], d.labels[ends])
    score = np.array([float(r[1]) for r in rows])
    threshold = {r[2] for r in rows}
    assert len(threshold) == 1
    flagged = np.array([int(r[3]) for r in rows])
    # predict == -1 exactly when the score is below the threshold (decision_function < 0)
    np.testing.assert_array_equal(flagged, (score < float(threshold.pop())).astype(int))
    assert 0 < flagged.sum() < len(flagged)
    png = (out_dir / "plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    settings = model_settings(out_dir / "model.mxt")  # one model file, no model.json beside it
    assert settings["window"] == cli.DEFAULT_WINDOW and settings["channels"] == ["value"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["events.csv", "model.mxt", "plot.png", "scores.csv"]


def test_fit_then_score_reproduces_detect(detect_run, tmp_path):
    _, detect_dir = detect_run
    code, out, err = run_main("fit", "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "wrote" in out and (tmp_path / "m" / "model.mxt").is_file()
    code, out, err = run_main("score", str(tmp_path / "m" / "model.mxt"), "--out", str(tmp_path / "s"),
                              "--no-plot")
    assert code == 0, err
    assert (tmp_path / "s" / "scores.csv").read_bytes() == (detect_dir / "scores.csv").read_bytes()
    assert not (tmp_path / "s" / "plot.png").exists()
    # detect's own model file scores the same way
    code, out, err = run_main("score", str(detect_dir / "model.mxt"), "--out", str(tmp_path / "d"), "--no-plot")
    assert code == 0, err
    assert (tmp_path / "d" / "scores.csv").read_bytes() == (detect_dir / "scores.csv").read_bytes()
    assert (tmp_path / "d" / "events.csv").read_bytes() == (detect_dir / "events.csv").read_bytes()


@pytest.mark.parametrize("unbuffered", [True, False])
def test_a_closed_pipe_stops_quietly(tmp_path, unbuffered):
    # `mixtura detect | head -1`: the reader goes away after the first line; no traceback. Unbuffered, the
    # next print fails; buffered (a pipe's default), the flush at the end of the command does.
    proc = subprocess.Popen([sys.executable, *(["-u"] if unbuffered else []), "-c",
                             "import sys, mixtura.cli; sys.stdout.write('mixtura detect\\n'); sys.stdout.flush(); "
                             "sys.exit(mixtura.cli.main(sys.argv[1:]))", "detect", "--no-plot", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "mixtura detect\n"
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=600) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_console_script_is_declared():
    # the installed console script runs the same main (pip writes it beside the interpreter)
    script = pathlib.Path(sys.executable).parent / ("mixtura.exe" if os.name == "nt" else "mixtura")
    assert script.exists(), f"no console script {script}"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"mixtura {mixtura.__version__}"


# ------------------------------------------------------------------------ a multi-channel table

@pytest.fixture
def three_channels(tmp_path):
    """Three noisy channels for 1500 rows; channel 'pressure' jumps for 20 rows near the end."""
    rng = np.random.default_rng(0)
    n = 1500
    base = np.stack([np.sin(np.arange(n) / 20), np.cos(np.arange(n) / 30), np.sin(np.arange(n) / 50)], axis=1)
    X = base + 0.05 * rng.standard_normal((n, 3))
    X[1300:1320, 1] += 3.0
    label = np.zeros(n, dtype=int)
    label[1300:1320] = 1
    path = tmp_path / "plant.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["time", "temperature", "pressure", "flow", "anomaly"])
        for i in range(n):
            # one reading a minute, in order (past midnight on 2 January)
            w.writerow([f"2024-01-0{1 + i // 1440} {i // 60 % 24:02d}:{i % 60:02d}:00", *(f"{v:.6f}" for v in X[i]),
                        label[i]])
    return path


def test_detect_multichannel_names_the_channel(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), "--window", "5", "--train-fraction", "0.5",
                              "--out", str(tmp_path / "o"), "--no-plot")
    assert code == 0, err
    assert "channels    3: temperature, pressure, flow" in out
    assert "labels from column 'anomaly'" in out
    assert "windows     5 rows, step 1, level and dynamics per channel -> 12 features" in out
    lines = [line for line in out.splitlines() if "top channels:" in line]
    assert lines
    # the event with the lowest peak score is the injected jump, explained by 'pressure' first
    worst = min(lines, key=lambda line: float(re.search(r" score (\S+);", line).group(1)))
    assert re.search(r"top channels: pressure \|z\|", worst), out
    auc = float(re.search(r"ROC-AUC     (\S+),", out).group(1))
    assert auc > 0.9
    header, rows = read_scores(tmp_path / "o" / "scores.csv")
    assert header == ["time", "score", "threshold", "flagged", "label"]
    assert len(rows) == 1500 - 4


def test_detect_with_differences_and_step(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), "--window", "6", "--step", "2", "--differences",
                              "--train-fraction", "0.5", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "windows     6 rows, step 2, readings, with first differences -> 33 features" in out
    # the detector's warnings reach the user as one line each, without a Python traceback location
    assert re.fullmatch(r"(mixtura detect: warning: DensityAnomalyDetector: only \d+ training rows are held out"
                        r"[^\n]*\n)+", err), err
    _, rows = read_scores(tmp_path / "o" / "scores.csv")
    assert len(rows) == (1500 - 6) // 2 + 1
    assert (tmp_path / "o" / "plot.png").stat().st_size > 10_000
    settings = model_settings(tmp_path / "o" / "model.mxt")
    assert settings["differences"] is True and settings["step"] == 2


def test_score_needs_the_model_columns(three_channels, tmp_path):
    code, _, err = run_main("fit", str(three_channels), "--window", "4", "--out", str(tmp_path / "m"))
    assert code == 0, err
    other = tmp_path / "other.csv"
    other.write_text("time,temperature,flow\n" + "".join(f"t{i},{i % 7},{i % 5}\n" for i in range(50)))
    code, _, err = run_main("score", str(tmp_path / "m" / "model.mxt"), str(other), "--out", str(tmp_path / "s"))
    assert code == 2
    assert "other.csv: the model needs the column 'pressure'" in err
    rewrite_settings(tmp_path / "m" / "model.mxt", None)  # a detector saved by hand: no window settings
    code, _, err = run_main("score", str(tmp_path / "m" / "model.mxt"), str(other))
    assert code == 2 and (f"{tmp_path / 'm' / 'model.mxt'}: no window settings: neither a section cli.settings "
                          "(written by `mixtura fit` into model.mxt) nor a model.json beside it") in err


# ---------------------------------------------------------------------------------- bad files

BAD_FILES = [
    # (file content or None for a missing file, expected message after "FILE: ")
    (None, r"no such file"),
    ("", r"the file is empty"),
    ("\n  \n", r"the file is empty"),
    ("timestamp,value\n", r"no data rows after the header \(line 1\)"),
    ("time,x\n" + "".join(f"t{i},{i}.5\n" for i in range(15)) + "t15,abc\n",
     r"line 17, column 'x': 'abc' is not a number"),
    ("time,x,y\nt0,1,2\nt1,1,2\nt2,1\nt3,1,2\n", r"line 4: 2 fields, but the header has 3"),
    ("time,x\nt0,1\nt1;2\n", r"line 3: 1 field, but the header has 2 \(the row contains ';': mixed separators\?\)"),
    ("timestamp|value\n2024-01-01|1.0\n2024-01-02|2.0\n", r"line 1: one column only, and 'timestamp\|value' looks "
     r"separated by '\|'; mixtura reads files separated by ',', ';' or tabs"),
    ("time value\nt0 1.0\nt1 2.0\n", r"line 1: one column only, and 'time value' looks separated by spaces"),
    ("time,x\nt0,1\nt1,inf\n", r"line 3, column 'x': 'inf' is not a finite number"),
    ("time,x\nt0,1\nt1,N/A\n", r"line 3, column 'x': 'N/A' is not a number"),  # a missing value is NaN or NA
    ("time;x\nt0;1,5\n",
     r"line 2, column 'x': '1,5' is not a number \(a decimal comma\? write the decimal point as '.'\)"),
    ("timestamp\n2024-01-01\n2024-01-02\n", r"no numeric columns to analyse \(the header has only the time column "
     r"'timestamp'\)"),
    ("timestamp,label\n2024-01-01,0\n", r"no numeric columns to analyse \(the header has only the time column "
     r"'timestamp' and the label column 'label'\)"),
    ("1.0,2.0\n3.0,4.0\n", r"line 1: '1.0,2.0' looks like data, not a header"),
    ("time,x,x\nt0,1,2\n", r"line 1: the header names column 'x' twice"),
    ("time,,y\nt0,1,2\n", r"line 1: column 2 has no name in the header"),
    ("time,x,label\nt0,1,0\nt1,2,2\n", r"line 3, column 'label': '2' is not a label \(0 or 1\)"),
]


@pytest.mark.parametrize("content,message", BAD_FILES, ids=[m[:40] for _, m in BAD_FILES])
@pytest.mark.parametrize("command", ["detect", "fit"])
def test_bad_files_name_the_file_and_line(tmp_path, content, message, command):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    code, out, err = run_main(command, str(path), "--window", "1", "--out", str(tmp_path / "out"))
    assert code == 2
    assert re.fullmatch(rf"mixtura {command}: error: {re.escape(str(path))}: {message}.*\n", err, re.S), err
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_bad_file_for_score(tmp_path):
    code, _, err = run_main("score", str(tmp_path / "none.mxt"))
    assert code == 2 and f"{tmp_path / 'none.mxt'}: no such model file" in err


def test_unknown_time_column(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("t,x,y\n1,2,3\n")
    code, _, err = run_main("detect", str(path), "--time-column", "when")
    assert code == 2 and "no column 'when' for --time-column; the columns are t, x, y" in err


def test_fewer_rows_than_the_window(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("t,x\n" + "".join(f"{i},{i % 3}\n" for i in range(10)))
    code, _, err = run_main("detect", str(path), "--window", "24", "--out", str(tmp_path / "o"))
    assert code == 2 and "10 data rows, fewer than the window of 24 rows" in err
    code, _, err = run_main("detect", str(path), "--window", "5", "--train-fraction", "0.2",
                            "--out", str(tmp_path / "o"))
    assert code == 2 and "hold 1 window(s) of 5 rows; at least 2 are needed" in err


@pytest.mark.parametrize("argv,message", [
    (["detect", "--train-fraction", "0"], "0 is not in (0, 1]"),
    (["detect", "--train-fraction", "x"], "'x' is not a number"),
    (["detect", "--contamination", "0.7"], "0.7 is not in (0, 0.5]"),
    (["detect", "--window", "0"], "0 is not >= 1"),
    ([], "the following arguments are required"),
])
def test_bad_options_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------- CSV reading

def test_separators_time_and_labels(tmp_path):
    rows = ["2024-01-01 00:00:00", "2024-01-01 00:05:00"]
    for sep in (",", ";", "\t"):
        path = tmp_path / "t.csv"
        path.write_text(f"time{sep}a{sep}b{sep}Label\n" + "".join(f"{t}{sep}{i}.5{sep}-{i}{sep}{i}\n"
                                                                    for i, t in enumerate(rows)))
        t = read_table(path)
        assert t.separator == sep and t.channels == ["a", "b"] and t.time == rows
        assert t.label_column == "Label" and t.labels.tolist() == [0, 1]
        np.testing.assert_array_equal(t.values, [[0.5, 0.0], [1.5, -1.0]])
        assert t.time_axis().dtype == np.dtype("datetime64[s]")


def test_numeric_first_column_is_a_channel_unless_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("epoch,x\n100,1\n200,2\n300,4\n")
    t = read_table(path)
    assert t.time is None and t.channels == ["epoch", "x"] and t.time_label(2) == "row 2"
    t = read_table(path, time_column="epoch")
    assert t.channels == ["x"] and t.time == ["100", "200", "300"]
    np.testing.assert_array_equal(t.time_axis(), [100.0, 200.0, 300.0])


def test_changepoint_and_ignored_columns_are_left_out_unread(tmp_path):
    path = tmp_path / "t.csv"
    # SKAB's layout: ';', the time first, the label 'anomaly' and the annotation 'changepoint' last.
    path.write_text("datetime;a;notes;b;anomaly;changepoint\n"
                    "2020-03-09 10:34:33;1;ok;2;0;0\n2020-03-09 10:34:34;3;check pump;4;1;1\n")
    t = read_table(path, ignore=["notes"])
    assert t.channels == ["a", "b"] and t.ignored == ["notes", "changepoint"]
    assert t.label_column == "anomaly" and t.time_column == "datetime"
    np.testing.assert_array_equal(t.values, [[1, 2], [3, 4]])
    # Ignored columns are as if absent: the first remaining column is the time when it is not numeric.
    t = read_table(path, ignore=["datetime", "notes"])
    assert t.time is None and t.channels == ["a", "b"]
    t = read_table(path, ignore=["notes", "anomaly"])
    assert t.labels is None and t.channels == ["a", "b"]
    with pytest.raises(DataError, match=r"t.csv: line 2, column 'notes': 'ok' is not a number"):
        read_table(path)
    with pytest.raises(DataError, match=r"no column 'Notes' for --ignore-column; the columns are datetime, a, notes"):
        read_table(path, ignore=["Notes"])
    with pytest.raises(DataError, match=r"column 'datetime' is both --time-column and --ignore-column"):
        read_table(path, time_column="datetime", ignore=["datetime", "notes"])
    with pytest.raises(DataError, match=r"no numeric columns to analyse \(the header has only the time column "
                                        r"'datetime' and the label column 'anomaly' and the ignored columns 'a', "
                                        r"'notes', 'b', 'changepoint'\)"):
        read_table(path, ignore=["a", "notes", "b"])


def test_a_label_column_by_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x0,x1,y\n1,2,0\n3,4,1\n")  # ODDS's csv copies: the label is 'y'
    assert read_table(path).channels == ["x0", "x1", "y"]
    t = read_table(path, label_column="y")
    assert t.channels == ["x0", "x1"] and t.label_column == "y" and t.labels.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"t.csv: no column 'Y' for --label-column; the columns are x0, x1, y"):
        read_table(path, label_column="Y")
    with pytest.raises(DataError, match=r"column 'x0' is both the time column and --label-column"):
        read_table(path, time_column="x0", label_column="x0")
    with pytest.raises(DataError, match=r"column 'y' is both --label-column and left out"):
        read_table(path, label_column="y", ignore=["y"])
    with pytest.raises(DataError, match=r"line 2, column 'x1': '2' is not a label \(0 or 1\)"):
        read_table(path, label_column="x1")
    code, out, err = run_main("fit", str(path), "--label-column", "y", "--window", "1", "--train-fraction", "1",
                              "--out", str(tmp_path / "o"))
    assert "channels    2: x0, x1" in out and "labels from column 'y'" in out


def test_a_model_reads_exactly_its_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,b,notes,a,label\nt0,2,x,1,0\nt1,4,y,3,1\n")
    t = read_table(path, channels=["a", "b"])  # the model's order; 'notes' is never read
    assert t.channels == ["a", "b"] and t.ignored == ["notes"] and t.labels.tolist() == [0, 1]
    np.testing.assert_array_equal(t.values, [[1, 2], [3, 4]])
    with pytest.raises(DataError, match=r"the model needs the columns 'c', 'd'; the file's other columns are b, "
                                        r"notes, a"):
        read_table(path, channels=["a", "c", "d"])
    with pytest.raises(DataError, match=r"the model reads column 'a' as a channel, but here it is ignored"):
        read_table(path, channels=["a", "b"], ignore=["a"])
    with pytest.raises(DataError, match=r"the model reads column 'time' as a channel, but here it is the time column"):
        read_table(path, channels=["time", "b"])


def test_cli_leaves_out_columns_in_fit_and_score(three_channels, tmp_path):
    # The plant table with a text column and SKAB's annotation column beside the channels.
    lines = three_channels.read_text().splitlines()
    noisy = tmp_path / "noisy.csv"
    noisy.write_text("\n".join([lines[0] + ";notes;changepoint"] +
                               [f"{line};note {i};{i % 2}" for i, line in enumerate(lines[1:])]) + "\n")
    code, out, err = run_main("detect", str(noisy), "--window", "5", "--train-fraction", "0.5", "--ignore-column",
                              "notes", "--out", str(tmp_path / "o"), "--no-plot")
    assert code == 0, err
    assert "channels    3: temperature, pressure, flow\n  left out    notes, changepoint\n" in out
    code, plain, err = run_main("detect", str(three_channels), "--window", "5", "--train-fraction", "0.5",
                                "--out", str(tmp_path / "p"), "--no-plot")
    assert code == 0, err
    _, rows_noisy = read_scores(tmp_path / "o" / "scores.csv")
    _, rows_plain = read_scores(tmp_path / "p" / "scores.csv")
    assert rows_noisy == rows_plain  # the left-out columns change nothing
    # score reads the model's columns only: the text column needs no option there.
    code, out, err = run_main("score", str(tmp_path / "o" / "model.mxt"), str(noisy), "--out",
                              str(tmp_path / "s"), "--no-plot")
    assert code == 0, err
    assert "left out    notes, changepoint" in out
    assert read_scores(tmp_path / "s" / "scores.csv")[1] == rows_plain
    code, _, err = run_main("detect", str(noisy), "--ignore-column", "note", "--out", str(tmp_path / "q"))
    assert code == 2 and "noisy.csv: no column 'note' for --ignore-column" in err


# ----------------------------------------------------------------------------------------- --device

PLANT = ("--window", "5", "--train-fraction", "0.5", "--no-plot")


def test_flags_are_predicts_from_one_scoring_pass(three_channels):
    # _score_all scores each window once and flags it by predict's own rule.
    table = read_table(three_channels, None)
    X = mixtura.sliding_windows(table.values, 5)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(X[:700])
    scores, flagged = cli._score_all(det, X, cli.Progress("scoring", total=len(X), enabled=False))
    np.testing.assert_array_equal(scores, det.score_samples(X))
    np.testing.assert_array_equal(flagged, det.predict(X) == -1)
    assert 0 < flagged.sum() < len(X)
    det.offset_ = scores[100]  # a window exactly at the threshold is not flagged (predict: score - offset_ < 0)
    scores, flagged = cli._score_all(det, X, cli.Progress("scoring", total=len(X), enabled=False))
    np.testing.assert_array_equal(flagged, det.predict(X) == -1)
    assert not flagged[100] and flagged[scores < scores[100]].all()


def test_scoring_builds_the_windows_a_chunk_at_a_time(three_channels, tmp_path, monkeypatch):
    # All windows at once took n_windows x n_features x 8 bytes (3.8 GB for 4M rows of 10 channels).
    built = []
    real = cli._features
    monkeypatch.setattr(cli, "_features", lambda rows, *a: built.append(len(rows)) or real(rows, *a))
    monkeypatch.setattr(cli, "SCORE_CHUNK", 100)
    code, out, err = run_main("detect", str(three_channels), "--window", "5", "--step", "2", "--differences",
                              "--train-fraction", "0.5", "--no-plot", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert built and max(built[1:]) <= 2 * (100 - 1) + 5  # the first call builds the training windows
    # the same scores as from all the windows at once
    table = read_table(three_channels)
    X = mixtura.sliding_windows(table.values, 5, 2, True)
    windows = cli._Windows(table.values, {"window": 5, "step": 2, "differences": True, "features": "windows"})
    assert len(windows) == len(X)
    for key in (slice(0, len(X)), slice(3, 250), slice(7, 7), slice(len(X) - 1, len(X) + 9),
                np.array([0, 1, 2, 40, 42, 43, len(X) - 1]), np.array([], dtype=int)):
        np.testing.assert_array_equal(windows[key], X[key])


@pytest.mark.skipif(HAS_GPU, reason="'auto' takes the GPU here")
def test_device_cpu_and_auto_without_a_gpu(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--out", str(tmp_path / "c"))
    assert code == 0, err
    assert "\n  device      cpu\n" in out
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--device", "auto", "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert "\n  device      cpu (--device auto)\n" in out
    assert (tmp_path / "a" / "scores.csv").read_bytes() == (tmp_path / "c" / "scores.csv").read_bytes()
    code, out, err = run_main("score", str(tmp_path / "a" / "model.mxt"), str(three_channels), "--device", "auto",
                              "--out", str(tmp_path / "s"), "--no-plot")
    assert code == 0, err
    assert "\n  device      cpu (--device auto)\n" in out
    assert (tmp_path / "s" / "scores.csv").read_bytes() == (tmp_path / "c" / "scores.csv").read_bytes()


@pytest.mark.skipif(HAS_GPU, reason="a GPU is visible here")
@pytest.mark.parametrize("command", ["detect", "fit", "score"])
def test_device_cuda_without_a_gpu_says_what_is_missing(three_channels, tmp_path, command):
    missing = "no CUDA device is visible" if _core.HAS_CUDA else "this build of mixtura has no CUDA backend"
    model = ["no-such.mxt"] if command == "score" else []  # the device is checked before anything is read
    code, out, err = run_main(command, *model, str(three_channels), "--device", "cuda", "--out", str(tmp_path / "o"))
    assert code == 3 and out == ""  # the machine, not the command
    assert err.startswith(f"mixtura {command}: error: --device cuda: {missing}"), err
    assert "use --device cpu or auto" in err
    assert not (tmp_path / "o").exists()  # nothing written


@pytest.mark.parametrize("command", ["detect", "fit", "score"])
def test_an_unknown_device_exits_2(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, *(["m.mxt"] if command == "score" else []), "--device", "gpu"])
    assert e.value.code == 2
    assert "argument --device: invalid choice: 'gpu' (choose from" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA backend or no CUDA device")
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_device_cuda_follows_the_cpu(three_channels, tmp_path, device):
    # The GPU's fit and scores match the CPU's within the CUDA backend's float64 tolerance (not bit for
    # bit); the model file it writes says device='cpu', so it loads and scores anywhere.
    code, cpu_out, err = run_main("detect", str(three_channels), *PLANT, "--out", str(tmp_path / "c"))
    assert code == 0, err
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--device", device, "--out", str(tmp_path / "g"))
    assert code == 0, err
    how = "" if device == "cuda" else "; --device auto"
    assert f"\n  device      cuda (GPU 0{how})\n" in out
    model_line = re.compile(r"\n  model       GaussianMixture, \d+ components?, \w+ covariance")
    assert model_line.search(out).group(0) == model_line.search(cpu_out).group(0)
    _, rows_cpu = read_scores(tmp_path / "c" / "scores.csv")
    _, rows_gpu = read_scores(tmp_path / "g" / "scores.csv")
    a, b = (np.array([float(r[1]) for r in rows]) for rows in (rows_cpu, rows_gpu))
    threshold = float(rows_cpu[0][2])
    tol = 1e-9 * max(1.0, np.abs(a).max())
    assert np.abs(a - b).max() <= tol and abs(float(rows_gpu[0][2]) - threshold) <= tol
    clear = np.abs(a - threshold) > 2 * tol  # windows not at the threshold within the tolerance
    assert [r[3] for r, c in zip(rows_gpu, clear) if c] == [r[3] for r, c in zip(rows_cpu, clear) if c]
    assert mixtura.load(tmp_path / "g" / "model.mxt").device == "cpu"
    code, out, err = run_main("score", str(tmp_path / "g" / "model.mxt"), str(three_channels), "--device",
                              "cuda", "--out", str(tmp_path / "s"), "--no-plot")
    assert code == 0, err
    assert "\n  device      cuda (GPU 0)\n" in out
    _, rows_score = read_scores(tmp_path / "s" / "scores.csv")
    assert [r[1] for r in rows_score] == [r[1] for r in rows_gpu]  # the same device, the same bits


def test_quotes_bom_crlf_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b'\xef\xbb\xbf"time","x, y"\r\n"a",1\r\n\r\n"b", 2 \r\n\r\n')
    t = read_table(path)
    assert t.channels == ["x, y"] and t.time == ["a", "b"] and t.values[:, 0].tolist() == [1.0, 2.0]
    assert t.lines.tolist() == [2, 4]


def test_line_numbers_count_leading_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n\ntime,x\nt0,1\nt1,oops\n")
    with pytest.raises(DataError, match=r"line 5, column 'x': 'oops' is not a number"):
        read_table(path)


def test_single_column_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("value\n1\n2\n3\n")
    t = read_table(path)
    assert t.channels == ["value"] and t.time is None and t.values.shape == (3, 1)


# ---------------------------------------------------------------------------- helpers of the CLI

def test_flagged_ranges():
    assert cli.flagged_ranges([0, 1, 1, 0, 1, 0, 0, 1]) == [(1, 2), (4, 4), (7, 7)]
    assert cli.flagged_ranges([1, 1]) == [(0, 1)]
    assert cli.flagged_ranges([0, 0]) == []
    assert cli.flagged_ranges([]) == []


def test_channel_contributions_take_the_largest_abs_z():
    # 2 channels, width 2, differences: features [x0c0, x0c1, x1c0, x1c1, d0c0, d0c1]
    z = np.array([[0.5, -1.0, 2.0, 0.1, -3.0, 0.2],
                  [0.0, -4.0, 1.0, 0.1, 0.5, 0.2]])
    got = cli.channel_contributions(z, 2, 2, True)
    np.testing.assert_array_equal(got, [[3.0, 1.0], [1.0, 4.0]])
    with pytest.raises(ValueError, match="6 features, the windows have 4"):
        cli.channel_contributions(z, 2, 2, False)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal():
    quiet = io.StringIO()
    with cli.Progress("scoring", total=10, stream=quiet, interval=0.01) as p:
        p.update(10)
    assert quiet.getvalue() == ""
    tty = FakeTerminal()
    with cli.Progress("scoring", total=10, stream=tty, interval=0.01) as p:
        p.update(4)
        time.sleep(0.05)
    text = tty.getvalue()
    # redrawn in place at 40 % while working, then a last line at 100 % with a newline
    assert "\rscoring [############..................]  40 %" in text
    last = text.split("\r")[-1]
    assert last.startswith("scoring [##############################] 100 %") and last.endswith(" done\n")
    spinner = FakeTerminal()
    with pytest.raises(RuntimeError):
        with cli.Progress("fitting", stream=spinner, interval=0.01):
            time.sleep(0.05)
            raise RuntimeError("boom")
    assert spinner.getvalue().startswith("\rfitting ... ") and spinner.getvalue().endswith(" failed\n")
    # a step shorter than one redraw interval writes nothing
    quick = FakeTerminal()
    with cli.Progress("scoring", total=3, stream=quick, interval=5):
        pass
    assert quick.getvalue() == ""


# ---------------------------------------------------------------------- the output folder, user errors

def small_table(tmp_path, n=40, name="s.csv"):
    rng = np.random.default_rng(1)
    path = tmp_path / name
    path.write_text("time,x,y\n" + "".join(f"{i},{a:.4f},{b:.4f}\n" for i, (a, b) in
                                           enumerate(rng.normal(size=(n, 2)))))
    return path


def assert_one_line_error(code, err, command, status=2):
    """Exit status `status` (2: bad input; 3: the machine) and, besides warnings, one line on stderr: the
    error."""
    assert code == status, err
    lines = [line for line in err.splitlines(keepends=True) if not line.startswith(f"mixtura {command}: warning: ")]
    assert len(lines) == 1 and lines[0].startswith(f"mixtura {command}: error: ") and lines[0].endswith("\n"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("command,options,message", [
    ("detect", ["--window", "50"], "fewer than the window of 50 rows"),
    ("fit", ["--window", "50"], "fewer than the window of 50 rows"),
    ("detect", ["--window", "5", "--train-fraction", "0.1"], "at least 2 are needed"),
    ("fit", ["--window", "5", "--train-fraction", "0.1"], "at least 2 are needed"),
    ("detect", ["--window", "39", "--train-fraction", "1"], "the fit failed"),  # 2 windows: none to calibrate
    ("fit", ["--window", "39", "--train-fraction", "1"], "the fit failed"),
    ("score", ["--window", "50"], "fewer than the window of 50 rows"),
])
def test_errors_after_reading_leave_no_output_folder(tmp_path, command, options, message):
    path = small_table(tmp_path)
    out = tmp_path / "deep" / "out"
    if command == "score":  # a model with windows of 50 rows, fitted on a longer file
        long = small_table(tmp_path, n=400, name="long.csv")
        code, _, err = run_main("fit", str(long), *options, "--out", str(tmp_path / "m"))
        assert code == 0, err
        argv = ["score", str(tmp_path / "m" / "model.mxt"), str(path)]
    else:
        argv = [command, str(path), *options]
    code, _, err = run_main(*argv, "--out", str(out))
    assert_one_line_error(code, err, command)
    assert message in err
    assert not (tmp_path / "deep").exists()  # not even the parent


def test_an_unwritable_output_folder_is_one_line_before_the_fit(tmp_path, monkeypatch):
    path = small_table(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if pathlib.Path(p) == ro else real_access(p, mode))
    fitted = []
    monkeypatch.setattr(mixtura.DensityAnomalyDetector, "fit", lambda *a, **k: fitted.append(1))
    code, out, err = run_main("detect", str(path), "--window", "3", "--out", str(ro / "out"))
    assert_one_line_error(code, err, "detect")
    assert f"{ro / 'out'}: cannot create the output folder: {ro} is not writable" in err
    assert not fitted and out == ""  # refused before the (possibly long) fit


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_folder_for_real(tmp_path):
    path = small_table(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run_main("detect", str(path), "--window", "3", "--out", str(ro / "out"))
    finally:
        ro.chmod(0o755)
    assert_one_line_error(code, err, "detect")


def test_a_failure_while_writing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    code, _, err = run_main("detect", str(small_table(tmp_path)), "--window", "3", "--no-plot",
                            "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect", status=3)  # the folder was checked: the machine refused
    assert f"{tmp_path / 'o'}: cannot write the output folder: Permission denied" in err
    assert not (tmp_path / "o").exists()
    (tmp_path / "f").write_text("a file")
    code, _, err = run_main("detect", str(small_table(tmp_path)), "--window", "3", "--out", str(tmp_path / "f" / "x"))
    assert_one_line_error(code, err, "detect")


def test_a_failed_model_save_keeps_the_previous_outputs(tmp_path, monkeypatch):
    out = tmp_path / "o"
    code, _, err = run_main("detect", str(small_table(tmp_path)), "--window", "3", "--no-plot", "--out", str(out))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"scores.csv", "events.csv", "model.mxt"}

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "model_file_bytes", full_disk)
    code, _, err = run_main("detect", str(small_table(tmp_path, n=60)), "--window", "4", "--no-plot",
                            "--out", str(out))
    assert_one_line_error(code, err, "detect", status=3)
    assert f"{out}: cannot write model.mxt: No space left on device" in err
    # the new scores.csv was written before the model failed: it is not there, nor the temporary folder
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_second_run_replaces_every_output(tmp_path):
    out = tmp_path / "o"
    assert run_main("detect", str(small_table(tmp_path)), "--window", "3", "--out", str(out))[0] == 0
    assert (out / "plot.png").is_file()
    (out / "notes.txt").write_text("mine")
    assert run_main("detect", str(small_table(tmp_path, n=50)), "--window", "3", "--no-plot", "--out", str(out))[0] == 0
    # the old plot would show other scores; the user's own file stays
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "model.mxt", "notes.txt", "scores.csv"]
    assert len(read_scores(out / "scores.csv")[1]) == 48


def test_user_errors_in_files_are_one_line(tmp_path):
    names = ",".join(f"c{j}" for j in range(100_000))  # a header over the csv module's 128 KiB field limit
    cases = [names + "\n" + ",".join("1" for _ in range(100_000)) + "\n",
             "time,x\nt0,1\u2028\nt1,2\n", "time,x\nt0,1\x0c5\n", "time,x\nt0,\u0661\n", "2024-01-01,5\n2024-01-02,6\n"]
    for k, content in enumerate(cases):
        path = tmp_path / f"bad{k}.csv"
        path.write_text(content)
        code, _, err = run_main("detect", str(path), "--out", str(tmp_path / f"o{k}"))
        assert_one_line_error(code, err, "detect")
        assert not (tmp_path / f"o{k}").exists()


def test_times_out_of_order_warn_on_the_command_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,x\n" + "".join(f"2024-01-01 00:{m:02d},{m % 7}\n" for m in [0, 1, 2, 3, 2, 5, 6, 7, 8, 9]))
    code, _, err = run_main("detect", str(path), "--window", "2", "--train-fraction", "1", "--out", str(tmp_path / "o"),
                            "--no-plot", "--contamination", "0.1")
    assert code == 0, err
    assert (f"mixtura detect: warning: {path}: line 6: time '2024-01-01 00:02' is before the previous row's "
            "'2024-01-01 00:03' (line 5; 1 such row in all); the windows follow the file's row order\n") in err


# ------------------------------------------------------------------------------ missing values: --gaps

N_GAPPY = 300
HOLE = (200, 206)  # every value of these rows is missing: windows of 4 rows inside it have nothing observed
GAPPY = ("--window", "4", "--train-fraction", "0.5", "--features", "windows")  # the readings: checked one by one


def write_sensor_table(path, values, time, label):
    """A CSV of time, the channels x and y and the label; NaN cells written as '', 'NaN' or 'NA' in turn."""
    spellings = ["", "NaN", "NA"]
    k = 0
    with open(path, "w") as f:
        f.write("time,x,y,label\n")
        for t, row, lab in zip(time, values, label):
            cells = []
            for v in row:
                if np.isnan(v):
                    cells.append(spellings[k % 3])
                    k += 1
                else:
                    cells.append(f"{v:.6f}")
            f.write(f"{t},{','.join(cells)},{lab}\n")
    return path


@pytest.fixture
def gappy(tmp_path):
    """(path of a table with gaps, path of the same table complete, its values with NaN): two channels of
    300 rows, 6 % of the values missing and rows 200..205 with none; a jump in x at rows 260..269."""
    rng = np.random.default_rng(3)
    i = np.arange(N_GAPPY)
    X = np.stack([np.sin(i / 15), np.cos(i / 25)], axis=1) + 0.05 * rng.standard_normal((N_GAPPY, 2))
    X[260:270, 0] += 2.0
    X = np.round(X, 6)
    label = ((i >= 260) & (i < 270)).astype(int)
    time = [f"2024-01-01 {k // 60:02d}:{k % 60:02d}" for k in i]
    complete = write_sensor_table(tmp_path / "complete.csv", X, time, label)
    G = X.copy()
    G[rng.random(G.shape) < 0.06] = np.nan
    G[HOLE[0]:HOLE[1]] = np.nan
    return write_sensor_table(tmp_path / "gappy.csv", G, time, label), complete, G


def window_features(values, width, features="windows"):
    return mixtura.level_dynamics(values, width) if features == "level-dynamics" else \
        mixtura.sliding_windows(values, width)


def cli_detector(values, width=4, train_fraction=0.5, features="windows"):
    """The detector `detect` fits on these values (its windows with an observed value)."""
    train_rows = max(width, int(train_fraction * len(values)))
    W = window_features(values[:train_rows], width, features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few rows held out for calibration (the CLI says so on stderr)
        return mixtura.DensityAnomalyDetector(random_state=0).fit(W[~np.isnan(W).all(axis=1)])


def missing_line(G, what):
    n_missing, rows = int(np.isnan(G).sum()), int(np.isnan(G).any(axis=1).sum())
    return f"\n  missing     {n_missing} of {G.size} values ({100 * n_missing / G.size:.3g} %), in {rows} rows; {what}\n"


def test_gaps_marginalize_scores_windows_on_their_observed_values(gappy, tmp_path):
    path, _, G = gappy
    code, out, err = run_main("detect", str(path), *GAPPY, "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert missing_line(G, "windows score on their observed values (--gaps marginalize)") in out
    assert "\n  rows        300 (2024-01-01 00:00 .. 2024-01-01 04:59)\n" in out
    assert "\n  training    first 150 rows (50 %), 147 windows\n" in out
    assert "\n  unscored    3 windows with no observed value (no score in scores.csv, not flagged)\n" in out
    # the scores: the detector fitted on the training windows, each window scored by the density of its
    # observed values; the windows inside the hole have none: no score, not flagged
    header, rows = read_scores(tmp_path / "o" / "scores.csv")
    assert len(rows) == N_GAPPY - 3
    W = mixtura.sliding_windows(G, 4)
    empty = np.isnan(W).all(axis=1)
    assert np.flatnonzero(empty).tolist() == [HOLE[0] + k - 3 + 3 for k in range(3)]  # ending at rows 203..205
    det = cli_detector(G)
    want = mixtura.StreamScorer(det, 4).score_chunk(G)
    assert [r[1] for r in rows] == ["" if np.isnan(s) else repr(float(s)) for s in want]
    assert all(r[3] == "0" for r, e in zip(rows, empty) if e)
    assert [r[3] for r, e in zip(rows, empty) if not e] == [str(int(s < det.offset_)) for s in want[~empty]]
    # the jump is flagged, and ROC-AUC counts the scored windows only
    assert any(r[3] == "1" for r in rows[260 - 3:270 - 3])
    assert re.search(r"ROC-AUC     \S+, average precision \S+ \(windows after the training rows: 147, 10 labelled", out)
    assert (tmp_path / "o" / "plot.png").stat().st_size > 10_000
    # the model file loads and scores windows with gaps
    loaded = mixtura.load(tmp_path / "o" / "model.mxt")
    np.testing.assert_array_equal(mixtura.StreamScorer(loaded, 4).score_chunk(G), want)
    assert "gaps" not in model_settings(tmp_path / "o" / "model.mxt")  # the default mode is not written
    code, out, err = run_main("score", str(tmp_path / "o" / "model.mxt"), str(path), "--no-plot",
                              "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "windows score on their observed values (--gaps marginalize)" in out and "unscored    3 windows" in out
    assert (tmp_path / "s" / "scores.csv").read_bytes() == (tmp_path / "o" / "scores.csv").read_bytes()


def test_gaps_drop_removes_the_rows_before_windowing(gappy, tmp_path):
    path, _, G = gappy
    keep = ~np.isnan(G).any(axis=1)
    n_kept = int(keep.sum())
    code, out, err = run_main("detect", str(path), *GAPPY, "--gaps", "drop", "--no-plot", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert missing_line(G, f"those rows are dropped before windowing (--gaps drop): {n_kept} rows left") in out
    assert "\n  rows        300 (2024-01-01 00:00 .. 2024-01-01 04:59)\n" in out  # the rows read
    assert f"\n  training    first {n_kept // 2} rows (50 %), {n_kept // 2 - 3} windows\n" in out
    assert "unscored" not in out
    # the same as the complete rows alone, each window at the time of its last (kept) row
    header, rows = read_scores(tmp_path / "o" / "scores.csv")
    kept_times = [f"2024-01-01 {k // 60:02d}:{k % 60:02d}" for k in np.flatnonzero(keep)]
    assert [r[0] for r in rows] == kept_times[3:]
    det = cli_detector(G[keep])
    want = det.score_samples(mixtura.sliding_windows(G[keep], 4))
    assert [r[1] for r in rows] == [repr(float(s)) for s in want]
    assert model_settings(tmp_path / "o" / "model.mxt")["gaps"] == "drop"
    # score takes the fit's mode by default, --gaps another
    model = str(tmp_path / "o" / "model.mxt")
    code, out, err = run_main("score", model, str(path), "--no-plot", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "(--gaps drop)" in out
    assert (tmp_path / "s" / "scores.csv").read_bytes() == (tmp_path / "o" / "scores.csv").read_bytes()
    code, out, err = run_main("score", model, str(path), "--gaps", "marginalize", "--no-plot",
                              "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert len(read_scores(tmp_path / "m" / "scores.csv")[1]) == N_GAPPY - 3


@pytest.mark.parametrize("command", ["detect", "fit", "score"])
def test_gaps_error_names_the_first_missing_cell(gappy, tmp_path, command):
    path, complete, G = gappy
    first = np.argwhere(np.isnan(G))[0]
    line, column = int(first[0]) + 2, "xy"[first[1]]
    model = []
    if command == "score":
        code, _, err = run_main("fit", str(complete), *GAPPY, "--out", str(tmp_path / "m"))
        assert code == 0, err
        model = [str(tmp_path / "m" / "model.mxt")]
    code, out, err = run_main(command, *model, str(path), *([] if model else GAPPY), "--gaps", "error",
                              "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, command)
    assert re.fullmatch(rf"mixtura {command}: error: {re.escape(str(path))}: line {line}, column '{column}': empty "
                        r"value \(missing values are refused with --gaps error\)\n", err), err
    assert out == "" and not (tmp_path / "o").exists()


@pytest.mark.parametrize("cell,message", [("", "empty value"), ("nan", "'nan' is a missing value"),
                                          ("NA", "'NA' is a missing value"), ("-NaN", "'-NaN' is a missing value")])
def test_gaps_error_for_each_spelling(tmp_path, cell, message):
    path = tmp_path / "data.csv"
    path.write_text("time,x\n" + "".join(f"t{i},{i % 5}.5\n" for i in range(15)) + f"t15,{cell}\n")
    code, _, err = run_main("detect", str(path), "--window", "1", "--gaps", "error", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert err == (f"mixtura detect: error: {path}: line 17, column 'x': {message} (missing values are refused "
                   f"with --gaps error)\n")
    code, out, err = run_main("detect", str(path), "--window", "1", "--train-fraction", "1", "--contamination", "0.1",
                              "--out", str(tmp_path / "o"), "--no-plot")
    assert code == 0, err  # by default: a missing value
    assert "\n  missing     1 of 16 values (6.25 %), in 1 row; windows score" in out


def test_a_complete_file_is_read_and_scored_as_before(gappy, tmp_path):
    # No gaps: every mode prints and writes what detect did before it took gaps, and no line about them.
    _, complete, _ = gappy
    outputs = {}
    for mode in ("marginalize", "drop", "error", None):
        out_dir = tmp_path / str(mode)
        code, out, err = run_main("detect", str(complete), *GAPPY, *(["--gaps", mode] if mode else []),
                                  "--out", str(out_dir))
        assert code == 0, err
        outputs[mode] = (out.replace(str(out_dir), "OUT"), err, (out_dir / "scores.csv").read_bytes(),
                         detector_bytes(out_dir / "model.mxt"), (out_dir / "plot.png").read_bytes())
        assert ("gaps" in model_settings(out_dir / "model.mxt")) == (mode in ("drop", "error"))
    assert len(set(outputs.values())) == 1
    out = outputs[None][0]
    assert "missing" not in out and "unscored" not in out and "left out" not in out
    assert [line[:14] for line in out.splitlines()][:9] == [
        "mixtura detect", "  data        ", "  rows        ", "  channels    ", "  windows     ", "  device      ",
        "  training    ", "  model       ", "  threshold   "]
    table = read_table(complete)
    X = mixtura.sliding_windows(table.values, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few rows held out for calibration (the CLI says so on stderr)
        det = mixtura.DensityAnomalyDetector(random_state=0).fit(X[:147])
    _, rows = read_scores(tmp_path / "None" / "scores.csv")
    assert [r[1] for r in rows] == [repr(float(s)) for s in det.score_samples(X)]


def test_gaps_in_the_training_windows(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((200, 2))
    time = [f"t{k}" for k in range(200)]
    label = [0] * 200
    # a hole in the training rows: its windows are left out of the fit, and said so
    G = X.copy()
    G[40:47] = np.nan
    path = write_sensor_table(tmp_path / "a.csv", G, time, label)
    code, out, err = run_main("detect", str(path), *GAPPY, "--no-plot", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "\n  training    first 100 rows (50 %), 93 windows (4 with no observed value left out)\n" in out
    # a channel with no observed value in the training rows
    G = X.copy()
    G[:120, 1] = np.nan
    path = write_sensor_table(tmp_path / "b.csv", G, time, label)
    code, _, err = run_main("detect", str(path), *GAPPY, "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert err.endswith(f"{path}: channel 'y' has no observed value in the first 100 rows (--train-fraction 0.5); "
                        "raise --train-fraction or leave the channel out with --ignore-column\n")
    # a channel observed every other row: its first differences never are
    G = X.copy()
    G[::2, 1] = np.nan
    path = write_sensor_table(tmp_path / "c.csv", G, time, label)
    code, _, err = run_main("detect", str(path), *GAPPY, "--differences", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert (f"{path}: channel 'y' has no two consecutive observed values in the first 100 rows (--train-fraction "
            "0.5), so its first differences (--differences) are never observed; leave out --differences or use "
            "--gaps drop\n") in err
    code, out, err = run_main("detect", str(path), *GAPPY, "--no-plot", "--out", str(tmp_path / "o"))
    assert code == 0, err  # without differences the windows have y
    # nothing observed in the training rows
    G = X.copy()
    G[:100] = np.nan
    path = write_sensor_table(tmp_path / "d.csv", G, time, label)
    code, _, err = run_main("detect", str(path), *GAPPY, "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert ("the first 100 rows (--train-fraction 0.5) hold 0 window(s) of 4 rows with an observed value (97 have "
            "none); at least 2 are needed") in err


def test_gaps_drop_leaving_too_few_rows(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("t,x,y\n" + "".join(f"{i},{i % 3},{'' if i % 2 else 1}\n" for i in range(10)))
    code, _, err = run_main("detect", str(path), "--window", "6", "--gaps", "drop", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert (f"{path}: 5 data rows left after dropping 5 with missing values (--gaps drop), fewer than the window of "
            "6 rows; use a smaller --window") in err


def test_score_with_no_observed_window(gappy, tmp_path):
    _, complete, _ = gappy
    code, _, err = run_main("fit", str(complete), *GAPPY, "--out", str(tmp_path / "m"))
    assert code == 0, err
    path = tmp_path / "empty.csv"
    path.write_text("time,x,y\n" + "".join(f"t{i},,NA\n" for i in range(10)))
    code, _, err = run_main("score", str(tmp_path / "m" / "model.mxt"), str(path), "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    assert f"{path}: no window of 4 rows has an observed value; nothing to score\n" in err
    rewrite_settings(tmp_path / "m" / "model.mxt", {**model_settings(tmp_path / "m" / "model.mxt"), "gaps": "fill"})
    code, _, err = run_main("score", str(tmp_path / "m" / "model.mxt"), str(path), "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    assert "model.mxt: section cli.settings: unknown gaps mode 'fill'; give --gaps" in err


@pytest.mark.parametrize("requested", ["cuda", "auto"])
def test_gaps_keep_off_the_gpu(gappy, tmp_path, monkeypatch, requested):
    # The CUDA backend takes complete rows only: with missing values 'auto' runs on the CPU and says why,
    # 'cuda' is an error before anything is written (a GPU is faked: only the choice is tested).
    path, complete, _ = gappy
    monkeypatch.setattr(cli, "_resolve_device", lambda requested: "cuda")
    code, out, err = run_main("detect", str(path), *GAPPY, "--device", requested, "--no-plot",
                              "--out", str(tmp_path / "o"))
    if requested == "auto":
        assert code == 0, err
        assert ("\n  device      cpu (--device auto; missing values: the CUDA backend takes complete rows only)\n"
                in out)
    else:
        assert_one_line_error(code, err, "detect")
        assert err == (f"mixtura detect: error: --device cuda: {path} has missing values (--gaps marginalize), which "
                       "the CUDA backend does not take; use --device cpu or auto, or --gaps drop\n")
        assert not (tmp_path / "o").exists()


def test_gaps_option_in_the_help(capsys):
    for command in ("detect", "fit", "score"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        assert "--gaps {marginalize,drop,error}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["detect", "--gaps", "fill"])
    assert e.value.code == 2
    assert "argument --gaps: invalid choice: 'fill'" in capsys.readouterr().err


def test_level_dynamics_is_the_default_and_scores_with_gaps(gappy, tmp_path):
    # The default features: level_dynamics of each window; windows with gaps score on their observed
    # features, windows with no reading get no score, `score` rebuilds the same features from the settings.
    path, _, G = gappy
    code, out, err = run_main("detect", str(path), "--window", "4", "--train-fraction", "0.5", "--out",
                              str(tmp_path / "o"), "--no-plot")
    assert code == 0, err
    assert "windows     4 rows, step 1, level and dynamics per channel -> 8 features" in out
    # no feature observed: the windows whose last two readings (the short level's) fall in the hole
    assert "\n  unscored    5 windows with no observed value (no score in scores.csv, not flagged)\n" in out
    F = mixtura.level_dynamics(G[:150], 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = mixtura.DensityAnomalyDetector(random_state=0).fit(F[~np.isnan(F).all(axis=1)])
    want = mixtura.StreamScorer(det, 4, features="level-dynamics").score_chunk(G)
    _, rows = read_scores(tmp_path / "o" / "scores.csv")
    assert [r[1] for r in rows] == ["" if np.isnan(v) else repr(float(v)) for v in want]
    assert model_settings(tmp_path / "o" / "model.mxt")["features"] == "level-dynamics"
    code, out, err = run_main("score", str(tmp_path / "o" / "model.mxt"), str(path), "--no-plot",
                              "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert (tmp_path / "s" / "scores.csv").read_bytes() == (tmp_path / "o" / "scores.csv").read_bytes()


def test_features_options(gappy, tmp_path):
    path, complete, G = gappy
    # --differences and one-row windows mean the readings, as before level-dynamics became the default
    for extra, want in ((("--window", "4", "--differences"), "readings, with first differences -> 14 features"),
                        (("--window", "1"), "readings -> 2 features")):
        code, out, err = run_main("fit", str(complete), "--train-fraction", "0.5", *extra, "--out", str(tmp_path / "f"))
        assert code == 0, err
        assert want in out
    for extra, msg in ((("--features", "level-dynamics", "--differences"),
                        "--differences applies to --features windows, not level-dynamics"),
                       (("--features", "level-dynamics", "--window", "1"),
                        "--features level-dynamics needs --window >= 2")):
        with pytest.raises(SystemExit) as e:
            run_main("detect", str(complete), *extra)
        assert e.value.code == 2
    # a channel observed every other row: its change is never observed at a window's end
    H = G.copy()
    H[::2, 1] = np.nan
    H[np.isnan(H).all(axis=1), 0] = 0.5
    p = write_sensor_table(tmp_path / "c.csv", H, [f"t{k}" for k in range(len(H))], [0] * len(H))
    code, _, err = run_main("detect", str(p), "--window", "4", "--train-fraction", "0.5", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert "channel 'y' has no two consecutive observed values at a window's end" in err
    # settings from before "features" was written describe raw windows
    code, _, err = run_main("fit", str(complete), *GAPPY, "--out", str(tmp_path / "old"))
    assert code == 0, err
    d = model_settings(tmp_path / "old" / "model.mxt")
    del d["features"]
    rewrite_settings(tmp_path / "old" / "model.mxt", d)
    code, out, err = run_main("score", str(tmp_path / "old" / "model.mxt"), str(complete), "--no-plot",
                              "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "readings -> 8 features" in out


# ------------------------------------------------------------------------------- events and --adapt

def read_events(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_events_csv_holds_each_event_with_its_channels(three_channels, tmp_path):
    # (the readings themselves, so that the jump's windows are known row by row)
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--features", "windows", "--out",
                              str(tmp_path / "o"))
    assert code == 0, err
    header, rows = read_events(tmp_path / "o" / "events.csv")
    assert header == ["start_time", "end_time", "peak_time", "peak_score", "n_flagged",
                      "channel_1", "abs_z_1", "channel_2", "abs_z_2", "channel_3", "abs_z_3"]
    _, windows = read_scores(tmp_path / "o" / "scores.csv")
    times = [w[0] for w in windows]
    score = np.array([float(w[1]) for w in windows])
    flagged = np.array([int(w[3]) for w in windows])
    # the events are group_events of scores.csv's flags with the default gap, ceil(5 / 1) windows
    expected = mixtura.group_events(flagged, score, min_length=3, merge_gap=5)  # ceil(5 / 2), ceil(5 / 1)
    assert [(r[0], r[1], r[2], float(r[3]), int(r[4])) for r in rows] == \
        [(times[e.start], times[e.end], times[e.peak], e.peak_score, e.n_flagged) for e in expected]
    assert f"anomalies   {len(expected)} event" in out
    # the strongest is the jump of 'pressure' at rows 1300..1319 (windows of 5 rows end at 1300..1323)
    worst = min(rows, key=lambda r: float(r[3]))
    assert worst[0] == "2024-01-01 21:40:00" and worst[5] == "pressure"  # row 1300
    assert "2024-01-01 21:40:00" <= worst[2] <= "2024-01-01 22:03:00"
    z = [float(worst[k]) for k in (6, 8, 10)]
    assert z == sorted(z, reverse=True) and z[0] > 5 and {worst[7], worst[9]} == {"temperature", "flow"}
    # the labelled jump is one labelled window: detected, the score beside ROC-AUC
    m = re.search(r"\n  events      1 of 1 labelled windows detected, (\d+) false events?, NAB-style score (\S+) ", out)
    assert m, out
    # after the 746 training windows; the labelled windows end at rows 1300..1319
    assert int(m.group(1)) == sum(1 for e in expected if e.start >= 746 and not 1296 <= e.start <= 1315)
    assert float(m.group(2)) > 50


def two_bursts(tmp_path):
    """One channel, 600 rows: a slow sine with noise, and two bursts of 6 rows, 14 rows apart."""
    rng = np.random.default_rng(5)
    x = np.sin(np.arange(600) / 30) + 0.02 * rng.standard_normal(600)
    x[400:406] += 3.0
    x[420:426] += 3.0
    path = tmp_path / "bursts.csv"
    path.write_text("x\n" + "".join(f"{v:.6f}\n" for v in x))
    return path


def test_merge_gap_joins_two_nearby_bursts(tmp_path):
    path = two_bursts(tmp_path)
    spans = {}
    for gap in ("0", "4", "20"):
        code, out, err = run_main("detect", str(path), "--window", "4", "--train-fraction", "0.5", "--no-plot",
                                  "--merge-gap", gap, "--out", str(tmp_path / gap))
        assert code == 0, err
        assert f"gaps of up to {gap} merged" in out
        _, rows = read_events(tmp_path / gap / "events.csv")
        # without a time column the events are at row numbers: those around the bursts (rows 400..428)
        spans[gap] = [(int(r[0]), int(r[1])) for r in rows if 395 <= int(r[0]) <= 430]
    # windows of 4 rows see the bursts at rows 400..408 and 420..428, 11 unflagged windows apart
    assert spans["0"] == spans["4"] == [(400, 408), (420, 428)]
    assert spans["20"] == [(400, 428)]


def test_min_event_length_drops_short_events(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--min-event-length", "15", "--out",
                              str(tmp_path / "o"))
    assert code == 0, err
    assert "(at least 15 flagged windows, gaps of up to 5 merged)" in out
    _, rows = read_events(tmp_path / "o" / "events.csv")
    assert rows and all(int(r[4]) >= 15 for r in rows)


def hand_adapted(values, width, first, half_life, detector, chunk=cli.ADAPT_CHUNK, features="level-dynamics"):
    """Scores and thresholds of the windows from `first` on, the detector following them chunk by chunk:
    score the chunk, flag it with the threshold in force, then partial_fit."""
    W = window_features(values, width, features)[first:]
    detector.set_params(half_life=half_life)
    scores, thresholds = [], []
    for s in range(0, len(W), chunk):
        thresholds.append(np.full(len(W[s:s + chunk]), detector.offset_))
        scores.append(detector.score_samples(W[s:s + chunk]))
        detector.partial_fit(W[s:s + chunk])
    return np.concatenate(scores), np.concatenate(thresholds)


def scores_csv(path):
    _, rows = read_scores(path)
    return (np.array([float(r[1]) for r in rows]), np.array([float(r[2]) for r in rows]),
            np.array([int(r[3]) for r in rows]))


def test_adapt_flags_each_chunk_by_the_threshold_in_force(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--adapt", "--out", str(tmp_path / "a"))
    assert code == 0, err
    values = read_table(three_channels).values
    train_rows, n_train = 750, 746
    assert (f"\n  adapting    from window {n_train + 1} of 1496 (after the training rows), in chunks of "
            f"{cli.ADAPT_CHUNK} windows, half-life {n_train} windows (--adapt)\n") in out
    fitted = cli_detector(values, width=5, features="level-dynamics")
    score, threshold, flagged = scores_csv(tmp_path / "a" / "scores.csv")
    # the training windows: the fitted model, its threshold
    W = mixtura.level_dynamics(values, 5)
    np.testing.assert_array_equal(score[:n_train], fitted.score_samples(W[:n_train]))
    assert (threshold[:n_train] == fitted.offset_).all()
    # after them: a hand-made loop on the same windows
    hand_scores, hand_thresholds = hand_adapted(values, 5, n_train, n_train, fitted)
    np.testing.assert_array_equal(score[n_train:], hand_scores)
    np.testing.assert_array_equal(threshold[n_train:], hand_thresholds)
    np.testing.assert_array_equal(flagged, (score < threshold).astype(int))
    assert len(np.unique(threshold[n_train:])) > 1  # the threshold moved with the stream
    # the model file is the fit's, not the adapted one
    saved = mixtura.load(tmp_path / "a" / "model.mxt")
    assert saved.offset_ == cli_detector(values, width=5, features="level-dynamics").offset_ and saved.n_steps_ == 0 and saved.half_life is None
    assert train_rows == max(5, int(0.5 * len(values)))


def test_score_adapts_from_the_first_window(three_channels, tmp_path):
    code, _, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5", "--out",
                            str(tmp_path / "m"))
    assert code == 0, err
    code, out, err = run_main("score", str(tmp_path / "m" / "model.mxt"), str(three_channels), "--adapt",
                              "--half-life", "300", "--no-plot", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "adapting    from the first window, in chunks of 100 windows, half-life 300 windows" in out
    values = read_table(three_channels).values
    hand_scores, hand_thresholds = hand_adapted(values, 5, 0, 300, mixtura.load(tmp_path / "m" / "model.mxt"))
    score, threshold, flagged = scores_csv(tmp_path / "s" / "scores.csv")
    np.testing.assert_array_equal(score, hand_scores)
    np.testing.assert_array_equal(threshold, hand_thresholds)
    np.testing.assert_array_equal(flagged, (hand_scores < hand_thresholds).astype(int))


def test_half_life_needs_adapt(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["detect", "--half-life", "100"])
    assert e.value.code == 2 and "--half-life applies only with --adapt" in capsys.readouterr().err
    for bad in ("0", "-3", "nan", "x"):
        with pytest.raises(SystemExit) as e:
            cli.main(["detect", "--adapt", "--half-life", bad])
        assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["detect", "--merge-gap", "-1"])
    assert e.value.code == 2 and "argument --merge-gap: -1 is not >= 0" in capsys.readouterr().err


def test_event_settings_in_the_model_and_older_files(three_channels, tmp_path):
    code, _, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5", "--merge-gap", "2",
                            "--min-event-length", "3",
                            "--out", str(tmp_path / "m"))
    assert code == 0, err
    model = str(tmp_path / "m" / "model.mxt")
    sidecar = model_settings(model)
    assert (sidecar["merge_gap"], sidecar["min_event_length"]) == (2, 3)
    code, out, err = run_main("score", model, str(three_channels), "--no-plot", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "(at least 3 flagged windows, gaps of up to 2 merged)" in out  # the fit's settings
    code, out, err = run_main("score", model, str(three_channels), "--no-plot", "--merge-gap", "7",
                              "--out", str(tmp_path / "s"))
    assert code == 0 and "(at least 3 flagged windows, gaps of up to 7 merged)" in out  # the options win
    # settings written before events: the defaults
    del sidecar["merge_gap"], sidecar["min_event_length"]
    rewrite_settings(model, sidecar)
    code, out, err = run_main("score", model, str(three_channels), "--no-plot", "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert "(at least 3 flagged windows, gaps of up to 5 merged)" in out
    sidecar["merge_gap"] = -2
    rewrite_settings(model, sidecar)
    code, out, err = run_main("score", model, str(three_channels), "--no-plot", "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    assert "model.mxt: section cli.settings: merge_gap must be an integer >= 0, got -2" in err


def test_without_matplotlib_plot_png_is_skipped_and_the_rest_written(tmp_path):
    out = tmp_path / "out"
    code = ("import sys; sys.modules['matplotlib'] = None; from mixtura import cli; "
            f"sys.exit(cli.main(['detect', '--out', {str(out)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    assert "plot.png skipped: matplotlib is not installed (pip install 'mixtura[plot]')" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "model.mxt", "scores.csv"]


# ------------------------------------------------------------------------------- the detector's options

def fitted_like_the_cli(path, width=5, train_fraction=0.5, **params):
    """The detector `fit` makes of path's level-dynamics windows with these parameters (random_state 0
    unless given)."""
    values = read_table(path).values
    train_rows = max(width, int(train_fraction * len(values)))
    params.setdefault("random_state", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mixtura.DensityAnomalyDetector(**params).fit(mixtura.level_dynamics(values[:train_rows], width))


@pytest.mark.parametrize("options,params", [
    (["--components", "2", "--covariance-type", "diag"], dict(n_components=2, covariance_type="diag")),
    (["--false-alarm-rate", "0.05", "--seed", "7"], dict(false_alarm_rate=0.05, random_state=7)),
    (["--method", "kmeans", "--components", "3"], dict(method="kmeans", n_components=3)),
    (["--contamination", "0.02", "--covariance-type", "spherical", "--components", "bic"],
     dict(contamination=0.02, covariance_type="spherical")),
    (["--seed", str(2**64 - 1)], dict(random_state=2**64 - 1)),
])
def test_detector_options_are_its_parameters(three_channels, tmp_path, options, params):
    code, out, err = run_main("detect", str(three_channels), *PLANT, *options, "--out", str(tmp_path / "o"))
    assert code == 0, err
    want = fitted_like_the_cli(three_channels, **params)
    saved = mixtura.load((tmp_path / "o" / "model.mxt"))
    expected = {"method": "gmm", "n_components": "bic", "covariance_type": "full", "contamination": "auto",
                "false_alarm_rate": 0.01, "random_state": 0, **params}
    assert {k: saved.get_params()[k] for k in expected} == expected
    assert saved.offset_ == want.offset_ and saved.n_components_ == want.n_components_
    values = read_table(three_channels).values
    score, threshold, _ = scores_csv(tmp_path / "o" / "scores.csv")
    np.testing.assert_array_equal(score, want.score_samples(mixtura.level_dynamics(values, 5)))
    assert (threshold == want.offset_).all()
    if "n_components" in params:
        assert saved.n_components_ == params["n_components"]
    method = params.get("method", "gmm")
    assert f"model       {'GaussianMixture' if method == 'gmm' else 'KMeans'}, {want.n_components_} component" in out


def test_the_seed_and_the_false_alarm_rate_move_the_threshold(three_channels, tmp_path):
    offsets = {}
    for options in ((), ("--seed", "0"), ("--seed", "1"), ("--false-alarm-rate", "0.2")):
        code, _, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5", *options,
                                "--out", str(tmp_path / "o"))
        assert code == 0, err
        offsets[options] = mixtura.load((tmp_path / "o" / "model.mxt")).offset_
    assert offsets[()] == offsets[("--seed", "0")]  # the default seed is 0
    assert offsets[("--seed", "1")] != offsets[()]  # another calibration split
    assert offsets[("--false-alarm-rate", "0.2")] > offsets[()]  # a higher quantile of the held-out scores


@pytest.mark.parametrize("argv,message", [
    (["--components", "0"], "argument --components: 0 is not >= 1"),
    (["--components", "two"], "argument --components: 'two' is neither 'bic' nor an integer"),
    (["--covariance-type", "block"], "argument --covariance-type: invalid choice: 'block'"),
    (["--method", "iforest"], "argument --method: invalid choice: 'iforest'"),
    (["--false-alarm-rate", "1"], "argument --false-alarm-rate: 1 is not in (0, 1)"),
    (["--false-alarm-rate", "0"], "argument --false-alarm-rate: 0 is not in (0, 1)"),
    (["--false-alarm-rate", "x"], "argument --false-alarm-rate: 'x' is not a number"),
    (["--seed", "-1"], "argument --seed: -1 is not in [0, 2**64 - 1]"),
    (["--seed", str(2**64)], f"argument --seed: {2**64} is not in [0, 2**64 - 1]"),
    (["--seed", "1.5"], "argument --seed: '1.5' is not an integer"),
    (["--method", "kmeans", "--covariance-type", "diag"],
     "--covariance-type applies to --method gmm, not kmeans (got --covariance-type diag)"),
    (["--method", "kmeans", "--adapt"], "--adapt needs --method gmm: kmeans is fitted in one batch"),
    (["--contamination", "0.1", "--false-alarm-rate", "0.05"],
     "--false-alarm-rate 0.05 applies with --contamination auto, not --contamination 0.1"),
])
@pytest.mark.parametrize("command", ["detect", "fit"])
def test_bad_detector_options_exit_2(capsys, command, argv, message):
    with pytest.raises(SystemExit) as e:
        cli.main([command, *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    if command == "fit" and "--adapt" in argv:  # fit has no --adapt
        assert "mixtura: error: unrecognized arguments: --adapt" in err, err
    else:
        assert f"mixtura {command}: error: {message}" in err, err


def test_contamination_auto_goes_with_a_false_alarm_rate(three_channels, tmp_path):
    code, _, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5", "--contamination",
                            "auto", "--false-alarm-rate", "0.05", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert mixtura.load((tmp_path / "o" / "model.mxt")).false_alarm_rate == 0.05


@pytest.mark.parametrize("option", ["--method", "--components", "--covariance-type", "--false-alarm-rate", "--seed",
                                    "--contamination"])
def test_score_does_not_refit(capsys, option):
    with pytest.raises(SystemExit) as e:
        cli.main(["score", "m.mxt", option, "1"])
    assert e.value.code == 2 and f"unrecognized arguments: {option} 1" in capsys.readouterr().err


def test_kmeans_takes_complete_windows(gappy, tmp_path):
    path, complete, G = gappy
    code, _, err = run_main("detect", str(path), *GAPPY, "--method", "kmeans", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "detect")
    assert (f"{path}: {int(np.isnan(G).sum())} missing values (--gaps marginalize), which --method kmeans does not "
            "take (complete windows only); use --gaps drop or --method gmm\n") in err
    code, _, err = run_main("detect", str(path), *GAPPY, "--method", "kmeans", "--gaps", "drop", "--no-plot",
                            "--out", str(tmp_path / "o"))
    assert code == 0, err
    # a kmeans model scores complete files, refuses gaps and does not adapt
    model = (tmp_path / "o" / "model.mxt")
    code, _, err = run_main("score", str(model), str(complete), "--no-plot", "--out", str(tmp_path / "s"))
    assert code == 0, err
    code, _, err = run_main("score", str(model), str(path), "--gaps", "marginalize", "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    assert "which --method kmeans does not take" in err
    code, _, err = run_main("score", str(model), str(complete), "--adapt", "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    assert f"{model}: --adapt follows a detector of method gmm (partial_fit); this model's method is kmeans" in err


# ---------------------------------------------------------------------------------------- exit statuses

def test_fail_on_anomaly_exits_1_when_an_event_is_reported(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--out", str(tmp_path / "a"))
    assert code == cli.EXIT_OK == 0, err
    n_events = int(re.search(r"anomalies   (\d+) event", out).group(1))
    assert n_events >= 1  # events found, and still 0 without --fail-on-anomaly
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--fail-on-anomaly", "--out", str(tmp_path / "b"))
    assert code == cli.EXIT_ANOMALIES == 1 and err == ""
    # the outputs are written all the same
    assert (tmp_path / "b" / "scores.csv").read_bytes() == (tmp_path / "a" / "scores.csv").read_bytes()
    assert (tmp_path / "b" / "events.csv").read_bytes() == (tmp_path / "a" / "events.csv").read_bytes()
    # flagged windows that make no event (shorter than --min-event-length) are not a finding
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--fail-on-anomaly", "--min-event-length",
                              "100000", "--out", str(tmp_path / "c"))
    assert code == 0, err
    assert re.search(r"anomalies   0 events .*, [1-9]\d* of \d+ windows flagged", out), out
    model = (tmp_path / "a" / "model.mxt")
    code, _, err = run_main("score", str(model), str(three_channels), "--no-plot", "--fail-on-anomaly",
                            "--out", str(tmp_path / "s"))
    assert code == 1, err
    code, _, err = run_main("score", str(model), str(three_channels), "--no-plot", "--out", str(tmp_path / "s"))
    assert code == 0, err
    with pytest.raises(SystemExit) as e:  # fit reports no events
        cli.main(["fit", str(three_channels), "--fail-on-anomaly"])
    assert e.value.code == 2


def test_exit_statuses_of_the_process(three_channels, tmp_path):
    # What a shell sees: python -m mixtura exits with main's status.
    def status(*argv):
        return subprocess.run([sys.executable, "-m", "mixtura", *argv], capture_output=True, text=True,
                              timeout=300).returncode

    assert status("detect", str(three_channels), *PLANT, "--fail-on-anomaly", "--out", str(tmp_path / "o")) == 1
    assert status("detect", str(three_channels), "--window", "0") == 2  # a bad option
    assert status("detect", str(tmp_path / "none.csv"), "--out", str(tmp_path / "n")) == 2  # a bad input
    assert status("score", str(three_channels), "--out", str(tmp_path / "n")) == 2  # not a model file


@pytest.mark.parametrize("failure,status,message", [
    (MemoryError(), 3, "out of memory (a smaller file, --step or --window needs less)"),
    (OSError(5, "Input/output error", "somewhere"), 3, "somewhere: Input/output error"),
    (KeyboardInterrupt(), 130, None),
])
def test_exit_statuses_of_failures(tmp_path, monkeypatch, failure, status, message):
    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(mixtura.DensityAnomalyDetector, "fit", fail)
    code, out, err = run_main("detect", str(small_table(tmp_path)), "--window", "3", "--out", str(tmp_path / "o"))
    assert code == status
    assert err == (f"mixtura detect: error: {message}\n" if message else "mixtura detect: interrupted\n")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------- the model file

OLD_PAIR = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "cli_model_pair"


def test_an_older_model_pair_still_scores(tmp_path, monkeypatch):
    # model.mixtura + model.json as `mixtura fit` wrote them before model.mxt (tests/fixtures/cli_model_pair)
    for name in ("plant.csv", "model.mixtura", "model.json"):
        (tmp_path / name).write_bytes((OLD_PAIR / name).read_bytes())
    monkeypatch.chdir(tmp_path)  # the file the model was fitted on, by the name it was fitted on
    code, out, err = run_main("score", "model.mixtura", "plant.csv", "--no-plot", "--out", "s")
    assert code == 0, err
    # the pair's settings: its --gaps drop, its event options, its training rows
    assert "(--gaps drop): 299 rows left" in out
    assert "(at least 3 flagged windows, gaps of up to 3 merged)" in out
    assert "(windows after the training rows: 150, 8 labelled anomalous)" in out
    header, rows = read_scores(tmp_path / "s" / "scores.csv")
    want_header, want = read_scores(OLD_PAIR / "scores.csv")
    assert header == want_header and [r[0] for r in rows] == [r[0] for r in want]
    got_scores, want_scores = (np.array([float(r[1]) for r in x]) for x in (rows, want))
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-9)  # the same but for the vector width's rounding
    assert [r[3] for r in rows] == [r[3] for r in want]
    _, events = read_events(tmp_path / "s" / "events.csv")
    _, want_events = read_events(OLD_PAIR / "events.csv")
    assert [e[:3] + [e[4], e[5], e[7]] for e in events] == [e[:3] + [e[4], e[5], e[7]] for e in want_events]
    # without its model.json the older file has no settings
    (tmp_path / "model.json").unlink()
    code, _, err = run_main("score", "model.mixtura", "plant.csv", "--out", "t")
    assert_one_line_error(code, err, "score")
    assert "model.mixtura: no window settings: neither a section cli.settings" in err


def test_a_fit_writes_one_model_file_in_place_of_an_older_pair(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    for name in ("model.mixtura", "model.json"):
        (out / name).write_bytes((OLD_PAIR / name).read_bytes())
    code, _, err = run_main("fit", str(OLD_PAIR / "plant.csv"), "--window", "6", "--train-fraction", "0.5",
                            "--merge-gap", "3", "--gaps", "drop", "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["model.mxt"]  # the older pair would be stale beside it
    settings = model_settings(out / "model.mxt")
    old = json.loads((OLD_PAIR / "model.json").read_text())
    assert settings == {**old, "fitted_on": f"{OLD_PAIR / 'plant.csv'}, labels from column 'label'"}
    # mixtura.load reads the detector (the section is the command line's): the older pair's, to rounding
    plain, old_detector = mixtura.load(out / "model.mxt"), mixtura.load(OLD_PAIR / "model.mixtura")
    assert isinstance(plain, mixtura.DensityAnomalyDetector) and plain.n_features_in_ == 8
    assert plain.get_params() == old_detector.get_params()
    assert plain.offset_ == pytest.approx(old_detector.offset_, rel=1e-9)


def test_score_refuses_a_model_of_another_kind(three_channels, tmp_path):
    km = mixtura.KMeans(2, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 3)))
    km.save(tmp_path / "km.mxt")
    code, _, err = run_main("score", str(tmp_path / "km.mxt"), str(three_channels), "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    assert "km.mxt: cannot load the model: mixtura.load(" in err and "holds a 'KMeans' model, not a " \
        "'DensityAnomalyDetector'" in err
    (tmp_path / "bad.mxt").write_bytes(b"MIXTURA\0" + b"\0" * 40)
    code, _, err = run_main("score", str(tmp_path / "bad.mxt"), str(three_channels), "--out", str(tmp_path / "s"))
    assert_one_line_error(code, err, "score")
    det = fitted_like_the_cli(three_channels)
    for text in ("{", '{"format": "other"}', "[1, 2]"):
        (tmp_path / "d.mxt").write_bytes(cli.model_file_bytes(det, {}))
        rewrite_settings(tmp_path / "d.mxt", None)
        kind, sections = _core.model_file_from_bytes((tmp_path / "d.mxt").read_bytes(), "test")
        sections[cli.SETTINGS_SECTION] = text
        (tmp_path / "d.mxt").write_bytes(_core.model_file_to_bytes(kind, sections))
        code, _, err = run_main("score", str(tmp_path / "d.mxt"), str(three_channels), "--out", str(tmp_path / "s"))
        assert_one_line_error(code, err, "score")
        assert f"{tmp_path / 'd.mxt'}: section cli.settings: " in err


def test_the_model_file_loads_in_cpp(three_channels, tmp_path):
    # The settings' section is in an application namespace ("cli."), which the C++ loaders ignore: the
    # file is a DensityAnomalyDetector file to them, and scores the windows as Python does.
    tool = model_tool()
    code, _, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5",
                            "--out", str(tmp_path / "m"))
    assert code == 0, err
    model = tmp_path / "m" / "model.mxt"
    info = subprocess.run([tool, "info", str(model)], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and info.stdout.split() == ["DensityAnomalyDetector", "float64", "12"], info.stderr
    W = mixtura.level_dynamics(read_table(three_channels).values, 5)
    np.savetxt(tmp_path / "W.csv", W, fmt="%.17g", delimiter=",")
    r = subprocess.run([tool, "score", str(model), str(tmp_path / "W.csv"), str(tmp_path / "cpp.csv")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cpp = np.loadtxt(tmp_path / "cpp.csv", delimiter=",", ndmin=2)
    det = mixtura.load(model)
    want = det.score_samples(W)
    np.testing.assert_allclose(cpp[:, 0], want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    clear = np.abs(want - det.offset_) > 1e-9 * np.abs(want).max()
    np.testing.assert_array_equal(cpp[clear, 1], det.predict(W)[clear])


# ----------------------------------------------------------------------------------------------- --json

def test_json_summary_agrees_with_the_files(three_channels, tmp_path):
    code, out, err = run_main("detect", str(three_channels), *PLANT, "--json", "--fail-on-anomaly",
                              "--out", str(tmp_path / "j"))
    assert code == 1 and err == ""
    s = json.loads(out)  # stdout is one JSON object and nothing else
    assert out.endswith("}\n") and out.count("\n") == 1
    # the same run without --json writes the same files
    code, human, err = run_main("detect", str(three_channels), *PLANT, "--out", str(tmp_path / "h"))
    assert code == 0, err
    for name in ("scores.csv", "events.csv"):
        assert (tmp_path / "j" / name).read_bytes() == (tmp_path / "h" / name).read_bytes()
    assert s["command"] == "detect" and s["mixtura_version"] == mixtura.__version__
    assert s["rows"] == 1500 and s["channels"] == ["temperature", "pressure", "flow"]
    assert s["data"]["file"] == str(three_channels) and s["data"]["time_column"] == "time"
    assert s["data"]["label_column"] == "anomaly" and s["data"]["first_time"] == "2024-01-01 00:00:00"
    assert s["windows"] == {"window": 5, "step": 1, "features": "level-dynamics", "differences": False,
                            "n_features": 12, "count": 1496, "flagged": s["windows"]["flagged"], "unscored": 0}
    assert s["training"] == {"rows": 750, "windows": 746, "windows_without_observed_value": 0}
    assert s["device"] == "cpu" and s["adapt"] is None
    assert s["event_options"] == {"min_event_length": 3, "merge_gap": 5}
    # the model: as saved, its threshold the one in scores.csv
    saved = mixtura.load(tmp_path / "j" / "model.mxt")
    assert s["model"] == {"file": str(tmp_path / "j" / "model.mxt"), "method": "gmm",
                          "components": saved.n_components_, "covariance_type": "full", "threshold": saved.offset_,
                          "contamination": "auto", "false_alarm_rate": 0.01, "random_state": 0,
                          "n_iter": saved.n_iter_, "converged": bool(saved.model_.converged_)}
    score, threshold, flagged = scores_csv(tmp_path / "j" / "scores.csv")
    assert (threshold == s["model"]["threshold"]).all() and s["windows"]["flagged"] == flagged.sum() > 0
    # the events: events.csv's rows, with the windows (rows of scores.csv) they span
    _, rows = read_events(tmp_path / "j" / "events.csv")
    assert len(s["events"]) == len(rows) >= 1
    _, windows = read_scores(tmp_path / "j" / "scores.csv")
    for e, row in zip(s["events"], rows):
        assert [e["start"], e["end"], e["peak"]] == row[:3]
        assert [windows[e[k]][0] for k in ("start_window", "end_window", "peak_window")] == row[:3]
        assert e["peak_score"] == float(row[3]) == score[e["peak_window"]] and e["n_flagged"] == int(row[4])
        assert [(c["channel"], c["abs_z"]) for c in e["top_channels"]] == \
            [(row[k], float(row[k + 1])) for k in range(5, len(row), 2)]
    # the metrics: ROC-AUC and the NAB-style score of the windows after the training rows, from scores.csv
    from sklearn.metrics import roc_auc_score
    labels = np.array([int(w[4]) for w in windows])
    after = slice(746, None)
    m = s["metrics"]
    assert m["evaluated"] == "windows after the training rows" and m["windows"] == 750
    assert m["windows_labelled_anomalous"] == labels[after].sum() == 20
    assert m["roc_auc"] == roc_auc_score(labels[after], -score[after])
    ev = mixtura.score_events([e["start_window"] - 746 for e in s["events"] if e["start_window"] >= 746],
                              cli.label_windows(labels[after]), n=750)
    assert m["events"] == {"anomaly_windows": 1, "detected": ev.windows_detected, "missed": ev.windows_missed,
                           "false_events": ev.false_events, "nab_score": ev.normalized, "nab_raw": ev.raw}
    assert f"NAB-style score {ev.normalized:.1f}" in human and f"ROC-AUC     {m['roc_auc']:.3f}" in human
    assert s["files"] == [str(tmp_path / "j" / n) for n in ("scores.csv", "events.csv", "model.mxt")]


def test_json_of_fit_and_score(three_channels, tmp_path):
    code, out, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5", "--method",
                              "kmeans", "--components", "2", "--seed", "3", "--json", "--out", str(tmp_path / "m"))
    assert code == 0, err
    s = json.loads(out)
    model = tmp_path / "m" / "model.mxt"
    assert s["command"] == "fit" and s["files"] == [str(model)]
    assert s["model"]["method"] == "kmeans" and s["model"]["components"] == 2 and s["model"]["random_state"] == 3
    assert s["model"]["covariance_type"] is None and s["model"]["threshold"] == mixtura.load(model).offset_
    assert s["event_options"] == {"min_event_length": 3, "merge_gap": 5}  # what score takes from the file
    assert "events" not in s and "metrics" not in s  # fit scores nothing
    # score, following the stream: the thresholds scores.csv gives each window
    code, out, err = run_main("fit", str(three_channels), "--window", "5", "--train-fraction", "0.5",
                              "--out", str(tmp_path / "g"))
    assert code == 0, err
    code, out, err = run_main("score", str(tmp_path / "g" / "model.mxt"), str(three_channels), "--adapt",
                              "--half-life", "300", "--no-plot", "--json", "--out", str(tmp_path / "s"))
    assert code == 0, err
    s = json.loads(out)
    _, threshold, flagged = scores_csv(tmp_path / "s" / "scores.csv")
    assert s["command"] == "score" and s["model"]["file"] == str(tmp_path / "g" / "model.mxt")
    assert s["adapt"] == {"first_window": 0, "half_life": 300.0, "chunk": cli.ADAPT_CHUNK,
                          "threshold_min": threshold.min(), "threshold_max": threshold.max(),
                          "threshold_last": threshold[-1]}
    assert s["windows"]["flagged"] == flagged.sum() and "training" not in s
    assert s["metrics"]["evaluated"] == "windows after the training rows"  # the file the model was fitted on


def test_json_without_labels_and_on_errors(tmp_path):
    path = two_bursts(tmp_path)
    code, out, err = run_main("detect", str(path), "--window", "4", "--train-fraction", "0.5", "--no-plot", "--json",
                              "--out", str(tmp_path / "o"))
    assert code == 0, err
    s = json.loads(out)
    assert s["metrics"] is None and s["data"]["time_column"] is None and s["data"]["first_time"] is None
    _, rows = read_events(tmp_path / "o" / "events.csv")
    assert [(e["start"], e["end"]) for e in s["events"]] == [(int(r[0]), int(r[1])) for r in rows]  # row numbers
    # an error: nothing on stdout, one line on stderr
    code, out, err = run_main("detect", str(tmp_path / "none.csv"), "--json", "--out", str(tmp_path / "n"))
    assert code == 2 and out == "" and err.startswith("mixtura detect: error: ")


def test_json_from_the_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mixtura", "detect", str(small_table(tmp_path, n=60)), "--window", "3",
                           "--no-plot", "--json", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["rows"] == 60 and s["channels"] == ["time", "x", "y"] and s["windows"]["count"] == 58


# --------------------------------------------------------------------------------------------- Parquet

def plant_tables(tmp_path, n=400):
    """The same table as CSV and as Parquet: a timestamp, channels 'a' (float, with missing values as
    nulls / NaN and empty cells), 'b' (integers), a text column 'notes', 'changepoint' and the label 'anomaly'
    (booleans in the Parquet file); a jump in 'a' at rows 330..339."""
    pa = pytest.importorskip("pyarrow")
    import datetime

    import pyarrow.parquet as pq

    rng = np.random.default_rng(11)
    i = np.arange(n)
    a = np.round(np.sin(i / 7) + 0.05 * rng.standard_normal(n), 6)
    a[330:340] += 3.0
    b = (np.cos(i / 11) * 100).astype(np.int64) + rng.integers(0, 3, n)
    label = (i >= 330) & (i < 340)
    a_null = np.zeros(n, dtype=bool)
    a_null[[50, 51, 250]] = True
    a_nan = np.zeros(n, dtype=bool)
    a_nan[[120]] = True
    times = [datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=int(k)) for k in i]
    pq.write_table(pa.table({
        "when": pa.array(times, pa.timestamp("us")),
        "a": pa.array([None if m else (np.nan if z else float(v)) for v, m, z in zip(a, a_null, a_nan)], pa.float64()),
        "notes": pa.array([f"note {k}" for k in i]),
        "b": pa.array(b, pa.int32()),
        "changepoint": pa.array(i % 2, pa.int8()),
        "anomaly": pa.array(label),
    }), tmp_path / "plant.parquet")
    with open(tmp_path / "plant.csv", "w") as f:
        f.write("when,a,notes,b,changepoint,anomaly\n")
        for k in i:
            cell = "" if a_null[k] else ("NaN" if a_nan[k] else repr(float(a[k])))
            f.write(f"{times[k]:%Y-%m-%d %H:%M:%S},{cell},note {k},{b[k]},{k % 2},{int(label[k])}\n")
    return tmp_path / "plant.csv", tmp_path / "plant.parquet"


def test_parquet_reads_as_the_csv(tmp_path):
    csv_path, parquet = plant_tables(tmp_path)
    t, p = read_table(csv_path, ignore=["notes"]), cli.read_parquet(parquet, ignore=["notes"])
    assert p.channels == t.channels == ["a", "b"] and p.time == t.time and p.time[1] == "2024-01-01 00:01:00"
    assert p.time_column == "when" and p.label_column == "anomaly" and p.ignored == t.ignored == ["notes", "changepoint"]
    np.testing.assert_array_equal(p.values, t.values)  # NaN where a null, a NaN or an empty cell is
    np.testing.assert_array_equal(p.labels, t.labels)
    assert np.isnan(p.values[:, 0]).sum() == 4
    outputs = {}
    for path in (csv_path, parquet):
        code, out, err = run_main("detect", str(path), "--window", "6", "--train-fraction", "0.5", "--ignore-column",
                                  "notes", "--no-plot", "--out", str(tmp_path / path.suffix[1:]))
        assert code == 0, err
        assert "channels    2: a, b\n  left out    notes, changepoint\n" in out
        assert "missing     4 of 800 values" in out and "labels from column 'anomaly'" in out
        outputs[path.suffix] = [(tmp_path / path.suffix[1:] / n).read_bytes() for n in ("scores.csv", "events.csv")]
    assert outputs[".parquet"] == outputs[".csv"]
    _, rows = read_scores(tmp_path / "parquet" / "scores.csv")
    assert rows[0][0] == "2024-01-01 00:05:00" and any(r[3] == "1" for r in rows[330 - 5:340 - 5])
    # a model fitted on the CSV file scores the Parquet file (its columns by name, the others unread)
    code, _, err = run_main("score", str(tmp_path / "csv" / "model.mxt"), str(parquet), "--no-plot", "--json",
                            "--out", str(tmp_path / "s"))
    assert code == 0, err
    assert (tmp_path / "s" / "scores.csv").read_bytes() == outputs[".csv"][0]


def test_parquet_errors_are_one_line(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    def write(name, **columns):
        pq.write_table(pa.table(columns), tmp_path / name)
        return tmp_path / name

    x = [float(k % 5) for k in range(20)]
    cases = [
        (write("gap.parquet", x=pa.array(x[:7] + [None] + x[8:])), ["--gaps", "error"],
         "row 8, column 'x': null (missing values are refused with --gaps error)"),
        (write("nan.parquet", x=pa.array(x[:3] + [float("nan")] + x[4:])), ["--gaps", "error"],
         "row 4, column 'x': NaN (missing values are refused with --gaps error)"),
        (write("inf.parquet", x=pa.array(x[:5] + [float("inf")] + x[6:])), [],
         "row 6, column 'x': inf is not a finite number"),
        (write("text.parquet", t=pa.array([f"t{k}" for k in range(20)]), x=pa.array(x), y=pa.array(["a"] * 20)), [],
         "column 'y' holds string values, not numbers; leave it out with --ignore-column"),
        (write("label.parquet", x=pa.array(x), label=pa.array([0] * 10 + [2] + [0] * 9)), [],
         "row 11, column 'label': 2 is not a label (0 or 1)"),
        (write("nolabel.parquet", x=pa.array(x), label=pa.array([0] * 10 + [None] + [0] * 9, pa.int8())), [],
         "row 11, column 'label': no label (a null)"),
        (write("empty.parquet", x=pa.array([], pa.float64())), [], "no data rows"),
        (write("only.parquet", label=pa.array([0, 1])), [], "no numeric columns to analyse"),
        (tmp_path / "none.parquet", [], "no such file"),
    ]
    (tmp_path / "csv.parquet").write_text("time,x\nt0,1\n")
    cases.append((tmp_path / "csv.parquet", [], "not a Parquet file that pyarrow reads"))
    for path, options, message in cases:
        code, out, err = run_main("detect", str(path), "--window", "2", *options, "--out", str(tmp_path / "o"))
        assert_one_line_error(code, err, "detect")
        assert err.startswith(f"mixtura detect: error: {path}: {message}"), err
        assert out == "" and not (tmp_path / "o").exists()
    # a time column by name, numbers kept as text; times out of order warn naming the row
    path = write("t.parquet", epoch=pa.array([0, 60, 120, 60, 240] * 4), x=pa.array(x))
    t = cli.read_parquet(path, time_column="epoch", check_time_order=False)
    assert t.time[:3] == ["0", "60", "120"] and t.channels == ["x"]
    with pytest.warns(UserWarning, match=r"t.parquet: row 4: time '60' is before the previous row's '120' \(row 3;"):
        cli.read_parquet(path, time_column="epoch")


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path):
    # (no pyarrow needed: it is blocked) a CSV run does not import it; a Parquet file is one line, exit 2
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1")
    code = ("import sys; sys.modules['pyarrow'] = None; from mixtura import cli; "
            f"status = cli.main(['detect', {str(small_table(tmp_path))!r}, '--window', '3', '--no-plot', '--out', "
            f"{str(tmp_path / 'c')!r}]); assert status == 0, status; "
            f"sys.exit(cli.main(['detect', {str(path)!r}, '--out', {str(tmp_path / 'o')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.endswith(f"\nmixtura detect: error: {path}: reading Parquet files needs pyarrow, which is not "
                             "installed: pip install pyarrow\n")  # (after the small fit's warning)
    assert "Traceback" not in r.stderr
