"""The benchmark still runs: its quick mode (what `scripts/bench.sh --quick` runs, here
bench/run_bench.py straight over this build) exits 0 and prints every row of its table,
each with a figure, and the benchmark's own calls break no rule. No timing is judged: the
numbers of a test run on a busy machine mean nothing."""
import shutil
import subprocess
import sys

from harness import *

out = subprocess.run([sys.executable, os.path.join(SOURCE, "bench", "run_bench.py"), "--build", BUILD, "--quick",
                      "--no-install"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=280)
sys.stdout.write(out.stdout)
sys.stderr.write(out.stderr)
eq(out.returncode, 0, "run_bench.py --quick exit status")

text = out.stdout
check("\nSummary" in text, "the summary follows the table")
table, summary = text.split("\nSummary", 1)
lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| measure")]
cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
for c in cells:
    eq(len(c), 9, f"cells of row {c}")
# the README's summary: 9 lines of 4 modes, then the memory, ltrace and report notes
summary_rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| added")]
eq(len(summary_rows), 9, "summary rows")
for line in summary_rows:
    eq(len(line.strip().strip("|").split("|")), 6, f"cells of summary row {line}")
for note in ("- shim memory per live allocation", "- ltrace ", "- `acl-ipc-guard report --json`"):
    check(any(line.startswith(note) for line in summary.splitlines()), f"summary note {note!r}")

# every latency row: 3 measures x 4 modes x 1 and 8 threads x 2 sizes
MODES = ["off", "audit, log off", "audit, JSON file", "enforce, JSON file"]
SIZES = {"malloc+free, per pair": ["1,000 allocations", "1,000,000 allocations"],
         "export+close, per call": ["100 keys", "65,000 keys"],
         "import+close, per call": ["100 keys", "65,000 keys"]}
seen = {tuple(c[:4]) for c in cells}
for mode in MODES:
    for measure, lives in SIZES.items():
        for threads in ("1", "8"):
            for live in lives:
                check((measure, mode, threads, live) in seen, f"row {measure} / {mode} / {threads} threads / {live}")
latency = [c for c in cells if c[0] in SIZES]
eq(len(latency), 48, "latency rows")
for c in latency:
    for cell in c[4:7]:  # direct median, added median, added p99
        check(cell.endswith(" ns") or cell.endswith(" µs"), f"a time: {cell!r} in {c}")
    check("violations" not in c[8], f"the benchmark's calls break no rule: {c}")
    check("dropped" not in c[8] or c[1] != "audit, log off", f"nothing to drop without a log: {c}")


def rows(prefix):
    found = [c for c in cells if c[0].startswith(prefix)]
    check(found, f"a row {prefix!r}")
    return found


mem = rows("shim memory per live allocation")
eq(sorted(c[1] for c in mem), ["audit, JSON file", "off"], "memory rows' modes")
for c in mem:
    check(" B (heap " in c[5], f"bytes per allocation: {c}")

lt = rows("ltrace ")[0]
check(lt[5].startswith("ltrace +") or lt[5].startswith("skipped"), f"ltrace row: {lt}")
if os.environ.get("CI") == "true" or shutil.which("ltrace"):
    # setup.sh installs ltrace as root; a skipped comparison is then a failure
    check(lt[5].startswith("ltrace +"), f"ltrace measured (it is installed, or CI=true): {lt}")

rep = rows("`acl-ipc-guard report --json`")
eq(len(rep), 2, "report rows (two log sizes)")
for c in rep:
    check("MB/s" in c[5] and "peak RSS" in c[5], f"report throughput and memory: {c}")
    check(c[3].startswith("64 logs"), f"64 processes' logs: {c}")
done("bench.smoke")
