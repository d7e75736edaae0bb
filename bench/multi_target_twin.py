#!/usr/bin/python3
"""Python/PyTorch twin of `privaudit_bench multi-target`: Inverting Gradients on K batch-1 problems
one after another, the way breaching and invertinggradients run them (one reconstruction per
optimiser), on the same weights, targets and seeds as the C++ side (raw float32 files it writes).

The attack is gradients_twin.py's Inverting Gradients (privaudit's algorithm and
hyper-parameters, no patience stop, one trial, the lowest-cost image kept).

usage: multi_target_twin.py DIR ARCH(lenet|cnn|mlp) K ITERATIONS
prints one JSON object: seconds, images per second, median PSNR over the K targets.
"""
import json
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

from gradients_twin import lenet, load_weights, parameter_gradients, psnr, run_ig


def model_for(arch):
    if arch == "lenet":
        return lenet()
    if arch == "cnn":  # privaudit's built-in CNN (models/builtin.cpp, default_config("cnn"))
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    if arch == "mlp":  # default_config("mlp"): widths 512, 256
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
            nn.Linear(256, 10))
    raise SystemExit(f"multi_target_twin.py: unknown architecture {arch}")


def load(directory, arch, k):
    model = load_weights(model_for(arch).eval(), f"{directory}/weights.f32", arch)
    images = torch.from_numpy(np.fromfile(f"{directory}/targets.f32", dtype=np.float32)).view(k, 1, 28, 28)
    labels = torch.tensor([int(v) for v in open(f"{directory}/labels.txt").read().split()])
    return model, images, labels


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    directory, arch, k, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    model, images, labels = load(directory, arch, k)
    shared = [[g.detach() for g in parameter_gradients(model, images[i:i + 1], labels[i:i + 1], False)]
              for i in range(k)]
    start = time.perf_counter()
    results = [run_ig(model, shared[i], labels[i:i + 1], i, iterations, lambda *_: False)[2]
               for i in range(k)]
    seconds = time.perf_counter() - start
    median = statistics.median(psnr(results[i], images[i:i + 1]) for i in range(k))
    print(json.dumps({"arch": arch, "k": k, "iterations": iterations, "seconds": seconds,
                      "images_per_second": k / seconds, "median_psnr": median}))


if __name__ == "__main__":
    main()
