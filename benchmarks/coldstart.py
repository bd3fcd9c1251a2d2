"""Cold start: wall time of fresh processes, interleaved (one run of each command per round), median of N.

    python benchmarks/coldstart.py [--runs N]

Times ``python -c "import numpy"`` (the yardstick: any numpy program pays it), the command line's symbolic path
``indexdiff "x_i A_ij x_j" --wrt x`` and ``python -c "import indexdiff"``, and prints each median with its ratio
to the numpy import. The interpreter is this one (``sys.executable``), and the command line is the console script
installed beside it (``python -m indexdiff`` where there is none), so no launcher shim is timed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("indexdiff")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "indexdiff"]


COMMANDS = {
    'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
    'indexdiff "x_i A_ij x_j" --wrt x': [*_cli(), "x_i A_ij x_j", "--wrt", "x"],
    'python -c "import indexdiff"': [sys.executable, "-c", "import indexdiff"],
    'python -c "pass"': [sys.executable, "-c", "pass"],
}


def _run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="fresh processes per command (default 30)")
    runs = max(parser.parse_args().runs, 1)
    for command in COMMANDS.values():  # warm the file cache and the .pyc files
        _run(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, command in COMMANDS.items():
            times[name].append(_run(command))
    base = statistics.median(times['python -c "import numpy"'])
    print(f"cold start, median of {runs} fresh processes each (interleaved)")
    print(f"{'command':<36} {'median (s)':>10} {'× import numpy':>15}")
    for name, t in times.items():
        median = statistics.median(t)
        print(f"{name:<36} {median:>10.3f} {median / base:>15.2f}")


if __name__ == "__main__":
    main()
