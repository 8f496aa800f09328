"""Time densekit and onnxruntime on the same full-size DenseNet-121, in one run, and print the ratios.

usage: bench.py DENSEKIT_BINARY FULL_FIXTURES_FOLDER [--repeat N] [--rounds N] [--int8]

Both run as separate processes on the same model file and input: batch 1 with 1 and 2 threads and
batch 8 with 2 threads, densekit with --fast (Winograd, the default) and --exact; each process reports
the median of N timed runs after one warm-up. Then onnxruntime's int8 quantisations of the same export at batch 1,
1 thread (--int8: only these). Then the .dnk's load to ready against onnxruntime's
session creation. Peak memory is each process's maximum
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
if sys.argv[5:] == ["exact"]:  # exact integer products on CPUs without VNNI (docs/formats.md)
    o.add_session_config_entry("session.x64quantprecision", "1")
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


def cpu_model():
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def check_inlining(binary):
    """Warns when the GEMM's SIMD loads and stores were left as calls (the optimizer's size limit; see GEMM.tile)."""
    try:
        listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return
    calls = sum(1 for line in listing.splitlines() if "call" in line and ("loadUnaligned" in line or "storeBytes" in line))
    if calls:
        print("WARNING: %d calls to generic SIMD loads/stores in %s: a kernel was not fully inlined, timings will be off" % (calls, binary))


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def int8(binary, folder, inp, out, rounds, repeat):
    """onnxruntime's static quantisations of the same export (make fixtures-full), batch 1, 1 thread, each round one
    densekit process and two onnxruntime processes on the same core: with its defaults, and with its exact integer
    products (`session.x64quantprecision`, the arithmetic DenseKit reproduces; the same kernels on CPUs with VNNI)."""
    for name in ("densenet121-qoperator-u8.onnx", "densenet121-qdq-u8.onnx"):
        quantised = os.path.join(folder, name)
        int8_times = {"dk": [], "ort": [], "exact": []}
        int8_ratios = {"ort": [], "exact": []}
        for r in range(max(3, rounds // 3)):
            cpus = {sorted(os.sched_getaffinity(0))[r % len(os.sched_getaffinity(0))]}
            dk = json.loads(peak_mb([binary, "run", quantised, "--input", inp, "--output", out, "--threads", "1",
                                     "--repeat", str(max(3, repeat // 4)), "--json"], cpus)[0])
            int8_times["dk"].append(dk["runMs"]["median"])
            for peer, extra in (("ort", []), ("exact", ["exact"])):
                ort = json.loads(peak_mb([sys.executable, "-c", ORT_SCRIPT, quantised, inp, "1", str(repeat)] + extra,
                                         cpus)[0])
                int8_times[peer].append(ort["median"])
                int8_ratios[peer].append(dk["runMs"]["median"] / ort["median"])
        print("int8 %-30s 1 / 1: densekit %.2f ms, onnxruntime %.2f ms: %.3fx (target issue 41: <= 0.8); "
              "onnxruntime's exact integer products %.2f ms: %.3fx" % (
                  name, median(int8_times["dk"]), median(int8_times["ort"]), median(int8_ratios["ort"]),
                  median(int8_times["exact"]), median(int8_ratios["exact"])))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, folder = sys.argv[1], sys.argv[2]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 20
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 15
    model = os.path.join(folder, "densenet121-legacy-opset17.onnx")
    inp = os.path.join(folder, "input-224.npy")
    out = os.path.join(tempfile.mkdtemp(), "y.npy")
    if "--int8" in sys.argv:  # the int8 ratios alone
        print("DenseNet-121 int8, 224x224, CPU %s" % cpu_model())
        int8(binary, folder, inp, out, rounds, repeat)
        return
    _, python_mb = peak_mb([sys.executable, "-c", BASELINE_SCRIPT])
    print("DenseNet-121, 224x224, model %s, CPU %s" % (os.path.basename(model), cpu_model()))
    check_inlining(binary)
    # Batch 8: the input image and seven others made from it (flipped, shifted, scaled), so the images differ.
    import numpy as np
    x = np.load(inp)
    batch8 = np.concatenate([x, x[..., ::-1], x[..., ::-1, :], x * 0.9, x + 0.1, np.roll(x, 7, axis=3), np.roll(x, -5, axis=2), -x]).astype(np.float32)
    inp8 = os.path.join(os.path.dirname(out), "input-224-batch8.npy")
    np.save(inp8, np.ascontiguousarray(batch8))
    print("%d rounds, each one onnxruntime process and one densekit process per mode (--fast, the default, and --exact),"
          " each timing %d runs after a warm-up (batch 8: %d)" % (rounds, repeat, max(3, repeat // 4)))
    print("(the order rotates; with 1 thread all on the same core, the rounds taking the cores in turn);")
    print("each column is the median over the rounds of the per-process medians, each ratio the median of the")
    print("rounds' ratios (interleaving keeps a shared, drifting machine fair to both)")
    print("%-14s %12s %12s %12s %9s %9s   %11s %10s" % ("batch/threads", "fast ms", "exact ms", "onnxrt ms", "fast", "exact",
                                                    "densekit MB", "onnxrt MB"))

    ort_loads = []
    for batch, threads in ((1, 1), (1, 2), (8, 2)):
        data, runs = (inp, repeat) if batch == 1 else (inp8, max(3, repeat // 4))
        times = {"fast": [], "exact": [], "ort": []}
        ratios = {"fast": [], "exact": []}
        dk_mbs, ort_mbs = [], []
        for r in range(rounds):
            # With 1 thread, the processes of a round run on the same core (the rounds take the cores
            # in turn): a VM's cores can differ in speed for minutes.
            cpus = {sorted(os.sched_getaffinity(0))[r % len(os.sched_getaffinity(0))]} if threads == 1 else None

            def run(which):
                if which == "ort":
                    return peak_mb([sys.executable, "-c", ORT_SCRIPT, model, data, str(threads), str(runs)], cpus)
                return peak_mb([binary, "run", model, "--input", data, "--output", out, "--" + which,
                                "--threads", str(threads), "--repeat", str(runs), "--json"], cpus)

            order = ["ort", "fast", "exact"]
            order = order[r % 3:] + order[:r % 3]
            results = {which: run(which) for which in order}
            ort = json.loads(results["ort"][0])
            times["ort"].append(ort["median"])
            ort_mbs.append(results["ort"][1] - python_mb)
            if batch == 1 and threads == 1:
                ort_loads.append(ort["loadMs"])
            for mode in ("fast", "exact"):
                dk = json.loads(results[mode][0])
                times[mode].append(dk["runMs"]["median"])
                ratios[mode].append(dk["runMs"]["median"] / ort["median"])
                dk_mbs.append(results[mode][1])
                if batch == 1 and threads == 1 and mode == "fast":
                    onnx_load = dk["loadMs"]
        print("%-14s %12.2f %12.2f %12.2f %9.3f %9.3f   %11.1f %10.1f" % (
            "%d / %d" % (batch, threads), median(times["fast"]), median(times["exact"]), median(times["ort"]),
            median(ratios["fast"]), median(ratios["exact"]), max(dk_mbs), median(ort_mbs)))
        print("%-14s fast ratios per round: %s" % ("", " ".join("%.3f" % x for x in ratios["fast"])))
        print("%-14s exact ratios per round: %s" % ("", " ".join("%.3f" % x for x in ratios["exact"])))
    print("targets (issue 19): every --fast ratio <= 0.8, every --exact ratio <= 0.95")
    int8(binary, folder, inp, out, rounds, repeat)
    # Loading the native format: open, map, check every checksum, executor ready (median of 5 processes).
    dnk = os.path.join(os.path.dirname(out), "densenet121.dnk")
    subprocess.run([binary, "convert", model, "-o", dnk], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loads = []
    for _ in range(5):
        r, _ = peak_mb([binary, "run", dnk, "--input", inp, "--output", out, "--threads", "1", "--json"])
        loads.append(json.loads(r))
    ort_load = median(ort_loads)
    loads.sort(key=lambda r: r["loadMs"] + r["prepareMs"])
    ready = loads[2]["loadMs"] + loads[2]["prepareMs"]
    print("load to ready: .dnk %.1f ms (open, map, checksums over every byte, rebuild the graph: %.1f ms; the"
          " executor's plan, weights folded, packed and transformed on all cores: %.1f ms)"
          % (ready, loads[2]["loadMs"], loads[2]["prepareMs"]))
    print("      vs onnxruntime session creation %.1f ms: %.3fx (target <= 0.15x); importing the .onnx takes %.1f ms"
          % (ort_load, ready / ort_load, onnx_load))
    # diff keeps only the current layer of each model: its peak memory should be about two runs'.
    other = os.path.join(folder, "densenet121-dynamo-opset18.onnx")
    _, diff_mb = peak_mb([binary, "diff", model, other, "--input", inp, "--json"])
    _, run_mb = peak_mb([binary, "run", model, "--input", inp, "--output", out, "--json"])
    print("memory: densekit diff of two DenseNet-121 files peaks at %.1f MB; one run peaks at %.1f MB" % (diff_mb, run_mb))
    print("(onnxruntime's MB exclude the %.1f MB of the Python interpreter with numpy and onnxruntime imported)" % python_mb)


if __name__ == "__main__":
    main()
