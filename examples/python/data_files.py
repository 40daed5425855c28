"""Data analysis without mounts: a CSV goes in, the program a model wrote groups it, and
the files it writes (a summary and a bar chart as SVG) come back to the host.

    python examples/python/data_files.py [OUT_DIR]

prints what the program printed and the files it returned, and saves them under OUT_DIR
(a new temporary directory by default).
"""

import pathlib
import sys
import tempfile

import pyeval

SALES = """region,month,amount
north,2024-01,120
south,2024-01,80
north,2024-02,150
east,2024-02,60
south,2024-02,95
east,2024-03,70
"""

# What a model wrote for "total sales per region, as a table and a chart".
PROGRAM = """
import csv, os
from collections import defaultdict

totals = defaultdict(int)
with open("sales.csv") as f:
    for row in csv.DictReader(f):
        totals[row["region"]] += int(row["amount"])

os.makedirs("out", exist_ok=True)
with open("out/summary.csv", "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["region", "total"])
    for region, total in sorted(totals.items()):
        writer.writerow([region, total])

top = max(totals.values())
bars = "".join(
    f'<rect x="{10 + i * 60}" y="{110 - 100 * t // top}" width="40" height="{100 * t // top}"/>'
    f'<text x="{10 + i * 60}" y="125">{r}</text>'
    for i, (r, t) in enumerate(sorted(totals.items())))
with open("out/chart.svg", "w") as f:
    f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="130">{bars}</svg>')
print(f"{len(totals)} regions, best: {max(totals, key=totals.get)}")
"""


def main():
    out_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
    outcome = pyeval.Evaluator().eval(PROGRAM, files={"sales.csv": SALES})
    if outcome.error:
        sys.exit(outcome.error.traceback)
    print(outcome.stdout, end="")
    for file in outcome.files:
        target = out_dir / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
        print(f"{file.path}: {file.size} bytes, {file.media_type}")
    print(f"saved under {out_dir}")


if __name__ == "__main__":
    main()
