#!/usr/bin/python3
"""The cost of calling privaudit from Python against running the command line on the same work.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [--cli build/privaudit]

Two pieces of work on a scripted two-layer MLP and Fashion-MNIST's test split, each run the same
way by `privaudit gradients --model FILE.pt` and by privaudit.attack_gradients (same options, seed
and threads; the audit's probes off): `tiny`, the closed-form linear-layer attack on one image (so
nearly all of the time is fixed cost), and `ig`, Inverting Gradients for 200 iterations on 4
images. Prints the median wall time of each over --repeats runs, and the Python call's own parts
(scripting and saving the model). Wall times follow the machine's load; CPU times (user + system,
all threads) much less.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

import privaudit

WORK = {
    "tiny": {"attack": "linear-layer", "indices": [0], "iterations": 0},
    "ig": {"attack": "ig", "indices": [0, 1, 2, 3], "iterations": 200},
}


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 10))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cli", default="build/privaudit")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    net = model()
    _, (images, labels), _ = privaudit.load_data("fashion-mnist")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.pt")
        torch.jit.script(net).save(path)
        for name, work in WORK.items():
            cli, python, scripting, cli_cpu, python_cpu = [], [], [], [], []
            for r in range(args.repeats):
                out = os.path.join(folder, f"{name}-{r}")
                start = time.perf_counter()
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([args.cli, "gradients", "--model", path, "--input-shape", "1,28,28",
                                "--attack", work["attack"], "--batch", "1", "--indices",
                                ",".join(map(str, work["indices"])), "--iterations",
                                str(work["iterations"]), "--audit-probes", "0", "--threads",
                                str(args.threads), "--out", out, "--quiet"], check=True)
                cli.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cli_cpu.append(after.ru_utime + after.ru_stime - children.ru_utime -
                               children.ru_stime)
                start = time.perf_counter()
                with tempfile.TemporaryDirectory() as scratch:
                    torch.jit.save(privaudit.script(net), os.path.join(scratch, "m.pt"))
                scripting.append(time.perf_counter() - start)
                start, cpu = time.perf_counter(), time.process_time()
                privaudit.attack_gradients(net, images, labels, attack=work["attack"], batch=1,
                                           indices=work["indices"], iterations=work["iterations"],
                                           audit_probes=0, threads=args.threads, progress=False)
                python.append(time.perf_counter() - start)
                python_cpu.append(time.process_time() - cpu)
            print(f"{name}: CLI {statistics.median(cli):.2f} s wall, "
                  f"{statistics.median(cli_cpu):.2f} s CPU; Python call "
                  f"{statistics.median(python):.2f} s wall, {statistics.median(python_cpu):.2f} s "
                  f"CPU (scripting + saving the model {statistics.median(scripting):.3f} s); "
                  f"medians of {args.repeats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
