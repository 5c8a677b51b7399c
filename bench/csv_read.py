"""The command line's CSV reader on a large generated file (bench/RESULTS.md, "Reading a 200 MB CSV").

    python bench/csv_read.py generate big.csv [N_ROWS]   # N_ROWS (4,000,000) x 10 channels, ~200 MB
    python bench/csv_read.py generate-timed big.csv      # the same after a time column, ~280 MB
    /usr/bin/time -v python bench/csv_read.py read big.csv
    /usr/bin/time -v mixtura detect big.csv --no-plot --out big-out

"read" prints the time of mixtura._csv.read_table alone; /usr/bin/time adds the peak RSS of the process.
"""
import sys
import time

import numpy as np


def generate(path, n_rows=4_000_000, timed=False):
    """Readings like a sensor log's: 10 channels with one decimal, a header, ',' separators; with
    timed, a first column of times a second apart ('2024-01-01 00:00:00')."""
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write(("time," if timed else "") + ",".join(f"c{j}" for j in range(10)) + "\n")
        for start in range(0, n_rows, 200_000):
            block = np.round(rng.normal(50, 10, size=(min(200_000, n_rows - start), 10)), 1)
            if not timed:
                np.savetxt(f, block, fmt="%.1f", delimiter=",")
                continue
            t = np.datetime64("2024-01-01T00:00:00") + np.arange(start, start + len(block))
            times = np.char.replace(t.astype(str), "T", " ")
            f.writelines(f"{s},{','.join(row)}\n" for s, row in zip(times.tolist(), block.astype(str).tolist()))


def read(path):
    from mixtura._csv import read_table

    start = time.perf_counter()
    table = read_table(path)
    print(f"read_table: {time.perf_counter() - start:.1f} s, {table.values.shape[0]} rows x "
          f"{table.values.shape[1]} channels")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("generate", "generate-timed", "read"):
        sys.exit(__doc__)
    if sys.argv[1].startswith("generate"):
        generate(sys.argv[2], *(int(a) for a in sys.argv[3:4]), timed=sys.argv[1] == "generate-timed")
    else:
        read(sys.argv[2])
