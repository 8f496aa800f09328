"""Time densekit and onnxruntime on the same full-size DenseNet-121, in one run, and print the ratios.

usage: bench.py DENSEKIT_BINARY FULL_FIXTURES_FOLDER [--repeat N]

Both run as separate processes on the same model file and input, batch 1, with 1 and then 2 threads;
each reports the median of N timed runs after one warm-up. Peak memory is each process's maximum
resident set (onnxruntime's includes the Python interpreter, which is measured alone and subtracted).
"""

import json
import os
import subprocess
import sys
import tempfile

ORT_SCRIPT = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort
model, inp, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.load(inp)
t0 = time.perf_counter()
o = ort.SessionOptions()
o.intra_op_num_threads = threads
o.inter_op_num_threads = 1
s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
load = (time.perf_counter() - t0) * 1000
name = s.get_inputs()[0].name
s.run(None, {name: x})
times = []
for _ in range(repeat):
    t = time.perf_counter()
    s.run(None, {name: x})
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"median": times[len(times) // 2], "min": times[0], "loadMs": load}))
"""

BASELINE_SCRIPT = "import numpy, onnxruntime"


def peak_mb(cmd, cpus=None):
    """Runs cmd (on `cpus` only, if given); returns its stdout and its peak resident set in MB."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=pin)
    _, status, usage = os.wait4(p.pid, 0)
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    if status != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), err))
    return out, usage.ru_maxrss / 1024.0


def check_inlining(binary):
    """Warns when the GEMM's SIMD loads and stores were left as calls (the optimizer's size limit; see GEMM.tile)."""
    try:
        listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return
    calls = sum(1 for line in listing.splitlines() if "call" in line and ("loadUnaligned" in line or "storeBytes" in line))
    if calls:
        print("WARNING: %d calls to generic SIMD loads/stores in %s: a kernel was not fully inlined, timings will be off" % (calls, binary))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, folder = sys.argv[1], sys.argv[2]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 20
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 15
    model = os.path.join(folder, "densenet121-legacy-opset17.onnx")
    inp = os.path.join(folder, "input-224.npy")
    out = os.path.join(tempfile.mkdtemp(), "y.npy")
    _, python_mb = peak_mb([sys.executable, "-c", BASELINE_SCRIPT])
    print("DenseNet-121, batch 1, 224x224, model %s" % os.path.basename(model))
    check_inlining(binary)
    print("%d rounds, each one densekit process and one onnxruntime process of %d timed runs after a warm-up" % (rounds, repeat))
    print("(which goes first alternates; with 1 thread both on the same core, the rounds taking the cores in turn);")
    print("each column is the median over the rounds of the per-process medians, the ratio the median of the")
    print("rounds' ratios (alternating the two keeps a shared, drifting machine fair to both)")
    print("%-8s %14s %14s %8s   %12s %12s" % ("threads", "densekit ms", "onnxrt ms", "ratio", "densekit MB", "onnxrt MB"))

    def median(values):
        v = sorted(values)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    for threads in (1, 2):
        dks, orts, ratios, dk_mbs, ort_mbs, dk_mins, ort_mins = [], [], [], [], [], [], []
        for r in range(rounds):
            # With 1 thread, both processes of a round run on the same core (the rounds take the cores
            # in turn): a VM's cores can differ in speed for minutes.
            cpus = {sorted(os.sched_getaffinity(0))[r % len(os.sched_getaffinity(0))]} if threads == 1 else None
            def run_densekit():
                return peak_mb([binary, "run", model, "--input", inp, "--output", out,
                                "--threads", str(threads), "--repeat", str(repeat), "--json"], cpus)

            def run_ort():
                return peak_mb([sys.executable, "-c", ORT_SCRIPT, model, inp, str(threads), str(repeat)], cpus)

            # The order alternates, so a machine that drifts within a round favours neither.
            if r % 2 == 0:
                (dk_out, dk_mb), (ort_out, ort_mb) = run_densekit(), run_ort()
            else:
                (ort_out, ort_mb), (dk_out, dk_mb) = run_ort(), run_densekit()
            dk, ort = json.loads(dk_out), json.loads(ort_out)
            dk_mins.append(dk["runMs"]["min"])
            ort_mins.append(ort["min"])
            dks.append(dk["runMs"]["median"])
            orts.append(ort["median"])
            ratios.append(dk["runMs"]["median"] / ort["median"])
            dk_mbs.append(dk_mb)
            ort_mbs.append(ort_mb - python_mb)
            if threads == 1:
                onnx_load, ort_load = dk["loadMs"], ort["loadMs"]
        print("%-8d %14.2f %14.2f %8.3f   %12.1f %12.1f" % (threads, median(dks), median(orts), median(ratios),
                                                          max(dk_mbs), median(ort_mbs)))
        print("%-8s %s" % ("", "ratios per round: " + " ".join("%.3f" % r for r in ratios)))
        print("%-8s best run of all: densekit %.2f ms, onnxruntime %.2f ms, ratio %.3f"
              % ("", min(dk_mins), min(ort_mins), min(dk_mins) / min(ort_mins)))
    # Loading the native format: open, map, validate every checksum (median of 5 processes).
    dnk = os.path.join(os.path.dirname(out), "densenet121.dnk")
    subprocess.run([binary, "convert", model, "-o", dnk], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loads = []
    for _ in range(5):
        r, _ = peak_mb([binary, "run", dnk, "--input", inp, "--output", out, "--threads", "1", "--json"])
        loads.append(json.loads(r))
    loads.sort(key=lambda r: r["loadMs"])
    dnk_load = loads[2]["loadMs"]
    print("load: .dnk %.1f ms (open, map, validate checksums) vs onnxruntime session creation %.1f ms: %.1fx faster"
          % (dnk_load, ort_load, ort_load / dnk_load))
    print("      (densekit's executor preparation, packing weights, adds %.1f ms; importing the .onnx takes %.1f ms)"
          % (loads[2]["prepareMs"], onnx_load))
    # diff keeps only the current layer of each model: its peak memory should be about two runs'.
    other = os.path.join(folder, "densenet121-dynamo-opset18.onnx")
    _, diff_mb = peak_mb([binary, "diff", model, other, "--input", inp, "--json"])
    _, run_mb = peak_mb([binary, "run", model, "--input", inp, "--output", out, "--json"])
    print("memory: densekit diff of two DenseNet-121 files peaks at %.1f MB; one run peaks at %.1f MB" % (diff_mb, run_mb))
    print("(onnxruntime's MB exclude the %.1f MB of the Python interpreter with numpy and onnxruntime imported)" % python_mb)


if __name__ == "__main__":
    main()
