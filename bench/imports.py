"""make bench, second part: `python -m seed import` on a 1,000,000-row ACLED-layout file.

Writes var/bench-acled.csv once (deterministic: the same --seed gives the same bytes),
imports it into a new var/bench-import.db with the command a partner runs, and prints
the rows per second and the memory of the importer and its workers, sampled through
the run, so that a load whose memory grows with the file shows it. Target: 3 minutes
on a 2-core machine (issue 19 settled issue 13's 2 minutes, which assumed validation
was cheap: EventSchema.load alone costs about 117 us a row).
"""

import argparse
import csv
import datetime
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas.acled_csv import ACLED_COLUMNS  # noqa: E402
from schemas.vocabulary import ACLED_SUB_EVENT_TYPES  # noqa: E402
from seed.places import OBLASTS  # noqa: E402

TARGET_S = 180
_DISORDER = {
    "Protests": "Demonstrations",
    "Riots": "Demonstrations",
    "Strategic developments": "Strategic developments",
}
# Ukraine's events lean on shelling, strikes and clashes; every sub-event type occurs.
_WEIGHTS = {
    "Shelling/artillery/missile attack": 40,
    "Air/drone strike": 25,
    "Armed clash": 20,
    "Disrupted weapons use": 6,
}


def write_rows(path: Path, rows: int, seed: int) -> None:
    """rows ACLED-layout rows in Ukraine's oblasts and towns, from random.Random(seed)."""
    rng = random.Random(seed)
    pairs = list(ACLED_SUB_EVENT_TYPES)
    weights = [_WEIGHTS.get(sub, 1) for _, sub in pairs]
    towns = [(oblast, town) for oblast in OBLASTS if oblast.weight for town in oblast.towns]
    first = datetime.date(2022, 2, 24)
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(ACLED_COLUMNS)
        for n in range(rows):
            acled_type, sub = rng.choices(pairs, weights)[0]
            oblast, (town, lat, lon) = rng.choice(towns)
            day = first + datetime.timedelta(days=rng.randrange(1000))
            precision = rng.choices(["1", "2", "3"], [90, 7, 3])[0]
            geo = rng.choices(["1", "2", "3"], [70, 25, 5])[0]
            fatalities = rng.choices([0, rng.randint(1, 30)], [70, 30])[0]
            russia, civilians = "Military Forces of Russia (2000-)", "Civilians (Ukraine)"
            writer.writerow(
                [
                    f"UKR{n + 1:07d}",
                    day.isoformat(),
                    day.year,
                    precision,
                    _DISORDER.get(acled_type, "Political violence"),
                    acled_type,
                    sub,
                    russia,
                    "",
                    rng.choice(["1", "State forces"]),
                    civilians if rng.random() < 0.5 else "Military Forces of Ukraine (2019-)",
                    "",
                    rng.choice(["7", "1"]),
                    "17",
                    "",
                    "804",
                    "Europe",
                    "Ukraine",
                    oblast.name.removesuffix(" Oblast"),
                    "",
                    "",
                    town,
                    lat,
                    lon,
                    geo,
                    "Made-up Daily; Regional Military Administration",
                    "National-Regional",
                    f"On {day:%d %B %Y}, Russian forces attacked {town}; "
                    f"{fatalities} people were reported killed.",
                    fatalities,
                    "",
                    1_700_000_000 + n,
                ]
            )


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the import's workers), in MB."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(child) for child in task.read_text().split()]
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (not its children), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    # utime and stime are the 14th and 15th fields; [0] here is the 3rd (state).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--csv", type=Path, default=ROOT / "var" / "bench-acled.csv")
    parser.add_argument("--db", type=Path, default=ROOT / "var" / "bench-import.db")
    args = parser.parse_args()
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    marker = args.csv.with_suffix(f".{args.rows}-{args.seed}.done")
    if not marker.exists():
        print(f"writing {args.rows:,} ACLED rows to {args.csv} ...", flush=True)
        write_rows(args.csv, args.rows, args.seed)
        marker.touch()
    for leftover in (args.db, Path(f"{args.db}-wal"), Path(f"{args.db}-shm")):
        leftover.unlink(missing_ok=True)
    command = [sys.executable, "-m", "seed", "--db", str(args.db), "import"]
    command += ["--format", "acled", str(args.csv)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    importer_cpu = 0.0
    while process.poll() is None:
        samples.append((time.perf_counter() - started, rss_mb(process.pid)))
        importer_cpu = cpu_seconds(process.pid) or importer_cpu
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    # The import and its workers are this script's only children: their CPU, less the
    # importer's own (sampled, so short by half a second at most), is the workers'.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = children.ru_utime + children.ru_stime - importer_cpu
    output = process.stdout.read() if process.stdout else ""
    print(output, end="")
    if process.returncode != 0:
        print(f"the import failed (exit {process.returncode})")
        return 1
    peak = max((rss for _, rss in samples), default=0.0)
    # Memory at a tenth, half and nine tenths of the run: flat when they are close.
    marks = [samples[int(len(samples) * share)][1] for share in (0.1, 0.5, 0.9)] if samples else []
    verdict = "ok" if seconds < TARGET_S else "SLOW"
    print(f"\nimport of {args.rows:,} ACLED rows, {datetime.date.today()}")
    print(f"{f'time (< {TARGET_S} s)':<48}{seconds:>10.1f} s  {verdict}")
    print(f"{'rows/s':<48}{args.rows / seconds:>12,.0f}")
    print(f"{'peak RSS, importer + workers':<48}{peak:>10.0f} MB")
    print(
        f"{'CPU, importer / its workers':<48}{importer_cpu:>10.0f} s"
        f" / {workers_cpu:.0f} s = {importer_cpu / args.rows * 1e6:.0f} / "
        f"{workers_cpu / args.rows * 1e6:.0f} us a row"
    )
    print(
        f"{'RSS at 10% / 50% / 90% of the run':<48}"
        + " / ".join(f"{mark:.0f}" for mark in marks)
        + " MB"
    )
    return 0 if seconds < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
