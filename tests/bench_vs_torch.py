#!/usr/bin/python3
"""bench_vs_torch.py: znet against PyTorch on the same CPU, fairly (issue 19): batch 128, 2
threads each, `znet bench` and the PyTorch peers interleaved over several rounds, PyTorch both
with its default OpenMP waiting and with OMP_WAIT_POLICY=PASSIVE, the load average and an
OpenBLAS sgemm 2048^3 reading (1 and 2 threads, the library znet links) beside each round.
PyTorch links the same OpenBLAS: every side runs the OpenBLAS kernels znet runs (OPENBLAS_CORETYPE
as `znet --version` names them, where the caller set none: docs/performance.md, "OpenBLAS's kernels").
Rounds that start above --max-load do not count. Beside each round it also shows the share of
the CPU time that the hypervisor gave other guests during it (steal, /proc/stat): a host can be
contended at a low load average (docs/performance.md, "Session 29 check"). Prints the ratio
table (znet / the faster PyTorch) and writes every reading as JSON lines. Not part of the build or tests; see
docs/performance.md for the figures and the exact commands.
Usage: /usr/bin/python3 tests/bench_vs_torch.py [--rows a,b] [--rounds 3] [--quick] [--json F]"""
import argparse, ctypes, json, os, re, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = "/work/shared/bench"  # the read-only peer scripts
PY = "/usr/bin/python3"        # Debian's PyTorch


def zee_peer(model, mode):
    return lambda a, steps, w: [PY, os.path.join(HERE, "bench_zee_torch.py"), model, "--batch", str(a.batch),
                                "--steps", str(steps), "--width", str(w)] + (["--inference"] if mode == "infer" else [])


def david_peer(a, steps, w):  # the shared yardstick: its width is a multiple of 64
    return [PY, os.path.join(a.shared, "davidnet_torch.py"), str(a.batch), str(steps), str(w / 64)]


# name: znet model file, width, train|infer, timed steps (full mode), the PyTorch command
ROWS = {
    "davidnet16": ("davidnet", 16, "train", 5, david_peer),
    "davidnet64": ("davidnet", 64, "train", 2, david_peer),
    "multisoft16": ("davidnet_multisoft", 16, "train", 3, zee_peer("multisoft", "train")),
    "zee16": ("davidnet_zee", 16, "train", 3, zee_peer("zee", "train")),
    "davidnet16-infer": ("davidnet", 16, "infer", 10, zee_peer("davidnet", "infer")),
    "davidnet64-infer": ("davidnet", 64, "infer", 3, zee_peer("davidnet", "infer")),
}
RUNNERS = ("znet", "torch", "torch_passive")


def die(msg):
    sys.exit(f"bench_vs_torch: {msg}")


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_times():
    """(steal, total) jiffies of all CPUs so far, from /proc/stat's first line (steal is its 8th
    figure; guest time is counted within user time, so the first eight make the total)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return fields[7], sum(fields)


def steal_pct(start):
    steal, total = cpu_times()
    return 100.0 * (steal - start[0]) / max(total - start[1], 1)


class Sgemm:
    """C = A B, 2048^3 floats, through the OpenBLAS that znet links (libopenblas.so.0)."""
    N = 2048

    def __init__(self):
        try:
            self.lib = ctypes.CDLL("libopenblas.so.0")
        except OSError as e:
            die(f"cannot load OpenBLAS for the sgemm reading: {e}")
        self.lib.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int,
                                                               ctypes.c_void_p, ctypes.c_int, ctypes.c_float,
                                                               ctypes.c_void_p, ctypes.c_int]
        self.m = [(ctypes.c_float * (self.N * self.N))() for _ in range(3)]

    def gflops(self, threads, reps=3):  # best of reps, after one warm-up
        self.lib.openblas_set_num_threads(threads)
        n, best = self.N, float("inf")
        for i in range(reps + 1):
            t = time.perf_counter()
            self.lib.cblas_sgemm(101, 111, 111, n, n, n, 1.0, self.m[0], n, self.m[1], n, 0.0, self.m[2], n)
            if i: best = min(best, time.perf_counter() - t)
        return 2.0 * n ** 3 / best * 1e-9


def run(cmd, env, what):
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=ROOT)
    except subprocess.TimeoutExpired:
        die(f"{what}: no answer within an hour: {' '.join(cmd)}")
    except OSError as e:
        die(f"{what}: cannot run {cmd[0]}: {e}")
    if p.returncode:
        die(f"{what}: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def grab(pattern, text, what):
    m = re.search(pattern, text)
    if not m: die(f"{what}: no '{pattern}' in its output:\n{text}")
    return m.group(1)


def znet_cmd(a, row, steps):
    model, width, mode, _, _ = ROWS[row]
    return [a.znet, "bench", f"models/{model}.znet", "--set", f"width={width}", "--batch", str(a.batch),
            "--threads", str(a.threads), "--steps", str(steps), "--train-only" if mode == "train" else "--inference-only"]


def measure(a, row, runner, steps):
    """img/s of one run."""
    model, width, mode, _, peer = ROWS[row]
    what = f"{row} {runner}"
    if runner == "znet":
        out = run(znet_cmd(a, row, steps), dict(os.environ), what)
        return float(grab(r"(?:training|inference):.*?=\s*([\d.]+) img/s", out, what))
    env = dict(os.environ, THREADS=str(a.threads))
    env.pop("OMP_WAIT_POLICY", None)
    if runner == "torch_passive": env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = run(peer(a, steps, width), env, what)
    return float(grab(r"train [\d.]+ ms/step = ([\d.]+) img/s" if mode == "train" else r"eval [\d.]+ ms/step = ([\d.]+) img/s", out, what))


def param_counts(a, row):
    """(znet's trainable parameters, PyTorch's parameters): the two models must be the same."""
    model, width, mode, _, peer = ROWS[row]
    out = run([a.znet, "summary", f"models/{model}.znet", "--set", f"width={width}"], dict(os.environ), f"{row} summary")
    mine = int(grab(r"trainable parameters\s+([\d,]+)", out, f"{row} summary").replace(",", ""))
    out = run(peer(a, 1, width), dict(os.environ, THREADS=str(a.threads)), f"{row} torch")
    return mine, int(grab(r"params=(\d+)", out, f"{row} torch"))


def emit(a, rec):
    print(json.dumps(rec), file=a.json_out, flush=True)


def table(a, rows, results, rounds_info):
    print("\nimg/s (batch %d, %d threads); sgemm in GFLOP/s; steal: %% of the CPU time given to other guests"
          " during the round; ratio = znet / the faster PyTorch; * = round started above load %.1f, not counted"
          % (a.batch, a.threads, a.max_load))
    if a.quick: print("--quick: one timed step per run; these figures prove the script runs and measure nothing")
    print("%-18s %5s %6s %11s %6s %10s %10s %10s %7s" % ("row", "round", "load", "sgemm 1t/2t", "steal", "znet",
                                                        "torch", "passive", "ratio"))
    for row in rows:
        counted = []
        for r, info in enumerate(rounds_info):
            v = results[row][r]
            ratio = v["znet"] / max(v["torch"], v["torch_passive"])
            mark = "" if info["counts"] else "*"
            if info["counts"]: counted.append(ratio)
            sgemm = "%.0f/%.0f" % (info["sgemm_gflops_1t"], info["sgemm_gflops_2t"])
            print("%-18s %5s %6.2f %11s %5.1f%% %10.1f %10.1f %10.1f %7.2f"
                  % (row, f"{r + 1}{mark}", info["load"], sgemm, info["steal_pct"], v["znet"], v["torch"],
                     v["torch_passive"], ratio))
        med = "%.2f" % statistics.median(counted) if counted else "none (no round counted)"
        print("%-18s median ratio over %d counted round(s): %s" % ("", len(counted), med))
        emit(a, {"summary": row, "counted_rounds": len(counted), "median_ratio": statistics.median(counted) if counted else None})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="rows: " + ", ".join(ROWS))
    p.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--quick", action="store_true", help="one timed step per run: proves the script, measures nothing")
    p.add_argument("--json", default=None, help="JSON lines to this file (default: stdout, before the table)")
    p.add_argument("--znet", default=os.path.join(ROOT, "build", "znet"), help="the znet binary (default build/znet)")
    p.add_argument("--shared", default=SHARED, help="folder of the peer scripts (default %s)" % SHARED)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-load", type=float, default=2.5, help="rounds started above this load do not count")
    a = p.parse_args()
    rows = [r for r in a.rows.split(",") if r]
    bad = [r for r in rows if r not in ROWS]
    if bad: die(f"unknown row(s) {', '.join(bad)}; rows are {', '.join(ROWS)}")
    if a.rounds < 1 or a.batch < 1 or a.threads < 1: die("--rounds, --batch and --threads must be at least 1")
    if not os.access(a.znet, os.X_OK): die(f"no znet binary at {a.znet} (build it, or give --znet)")
    a.json_out = open(a.json, "w") if a.json else sys.stdout
    if "OPENBLAS_CORETYPE" not in os.environ:  # before the sgemm reading loads OpenBLAS; inherited by all
        version = subprocess.run([a.znet, "--version"], capture_output=True, text=True).stdout
        core = re.search(r"OpenBLAS kernels (\w+)", version)
        if core: os.environ["OPENBLAS_CORETYPE"] = core.group(1)
    emit(a, {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
             "openblas_core": os.environ.get("OPENBLAS_CORETYPE", "OpenBLAS's own choice"),
             "batch": a.batch, "threads": a.threads, "rounds": a.rounds, "quick": a.quick, "rows": rows})
    for row in rows:  # the same model on both sides
        mine, theirs = param_counts(a, row)
        emit(a, {"row": row, "params_znet": mine, "params_torch": theirs})
        print(f"{row:18s} parameters: znet {mine:,}  PyTorch {theirs:,}", file=sys.stderr)
        if mine != theirs: die(f"{row}: znet and PyTorch models differ ({mine:,} against {theirs:,} parameters)")
    sgemm, results, rounds_info = Sgemm(), {r: [] for r in rows}, []
    for r in range(a.rounds):
        load, start = load_average(), cpu_times()
        info = {"round": r + 1, "load": load, "counts": load <= a.max_load,
                "sgemm_gflops_1t": round(sgemm.gflops(1), 1), "sgemm_gflops_2t": round(sgemm.gflops(2), 1)}
        rounds_info.append(info)
        emit(a, info)
        for row in rows:
            got = {}
            for runner in RUNNERS if r % 2 == 0 else RUNNERS[::-1]:  # A B C, then C B A
                before = load_average()
                got[runner] = measure(a, row, runner, 1 if a.quick else ROWS[row][3])
                emit(a, {"round": r + 1, "row": row, "runner": runner, "img_s": got[runner], "load_before": before})
            results[row].append(got)
        info["steal_pct"] = round(steal_pct(start), 2)
        emit(a, {"round": r + 1, "steal_pct": info["steal_pct"]})
    table(a, rows, results, rounds_info)


if __name__ == "__main__":
    main()
