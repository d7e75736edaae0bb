"""Python twin of bench/membership_bench.cpp's training: K reference models, each on a random half
of a pool of random images, trained as `privaudit membership` trains them (the train command's
recipe: Adam, lr 1e-3 on a cosine schedule, batch 128, shuffled every epoch, each epoch's
held-out evaluation included), with the network of bench/train_twin.py.

Usage: /usr/bin/python3 membership_twin.py CONFIG_JSON MODELS POOL EPOCHS THREADS
Prints one JSON line: {"arch": ..., "images_per_second": ..., "training_seconds": ...}, where
images per second = images x epochs over the seconds spent training (model construction and the
final accuracies are outside it, as on the C++ side).
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_twin import build  # noqa: E402  (the same network, layer for layer)

BATCH = 128
LR = 1e-3


def accuracy(model, images, labels, mean, std):
    model.eval()
    with torch.no_grad():
        correct = 0
        for start in range(0, images.shape[0], 256):
            logits = model((images[start:start + 256] - mean) / std)
            correct += int((logits.argmax(1) == labels[start:start + 256]).sum())
    model.train()
    return correct / images.shape[0]


def train_one(config, images, labels, held_images, held_labels, epochs, seed):
    torch.manual_seed(seed)
    model = build(config)
    mean = torch.tensor(config["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(config["normalization"]["std"]).view(1, -1, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    n = images.shape[0]
    start = time.perf_counter()
    for epoch in range(epochs):
        lr = 0.5 * LR * (1 + math.cos(math.pi * epoch / epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n)
        loss_sum, correct = 0.0, 0
        for b in range(0, n, BATCH):
            index = order[b:b + BATCH]
            x, y = images[index], labels[index]
            optimizer.zero_grad()
            logits = model((x - mean) / std)
            loss = F.cross_entropy(logits, y)
            loss_sum += loss.item() * y.shape[0]
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == y).sum())
        accuracy(model, held_images, held_labels, mean, std)
    return time.perf_counter() - start


def main():
    config = json.loads(sys.argv[1])
    models, pool, epochs, threads = (int(a) for a in sys.argv[2:6])
    if threads > 0:
        torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(pool, *config["input_shape"], generator=generator)
    labels = torch.randint(0, config["classes"], (pool,), generator=generator)
    seconds, trained = 0.0, 0
    for k in range(models):
        half = torch.randperm(pool, generator=generator)
        inside, outside = half[: pool // 2], half[pool // 2:]
        seconds += train_one(config, images[inside], labels[inside], images[outside],
                             labels[outside], epochs, k)
        trained += inside.numel() * epochs
    print(json.dumps({"arch": config["arch"], "images_per_second": trained / seconds,
                      "training_seconds": seconds, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
