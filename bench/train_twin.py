"""Python twin of bench/train_bench.cpp: the same model, batch size, optimiser and data in PyTorch.

Usage: /usr/bin/python3 train_twin.py CONFIG_JSON BATCHES BATCH_SIZE THREADS
CONFIG_JSON is the C++ ModelConfig::to_json() of the model (mlp, cnn or vit); the network built
here mirrors src/privaudit/models/builtin.cpp layer for layer. Prints one JSON line:
{"arch": ..., "samples_per_second": ..., "parameters": ...}.
"""
import json
import math
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
               "leaky_relu": lambda: nn.LeakyReLU(0.2)}


class PatchEmbed(nn.Module):
    def __init__(self, channels, height, width, patch, dim):
        super().__init__()
        self.projection = nn.Conv2d(channels, dim, patch, stride=patch)
        tokens = (height // patch) * (width // patch) + 1
        self.class_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)

    def forward(self, x):
        patches = self.projection(x).flatten(2).transpose(1, 2)
        cls = self.class_token.expand(x.shape[0], 1, -1)
        return torch.cat([cls, patches], 1) + self.positions


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        qkv = self.qkv(self.norm1(x)).view(batch, tokens, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(head_dim), -1)
        mixed = (attention @ v).transpose(1, 2).reshape(batch, tokens, dim)
        h = x + self.projection(mixed)
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class ClassToken(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x[:, 0])


def build(config):
    channels, height, width = config["input_shape"]
    classes = config["classes"]
    act = ACTIVATIONS[config["activation"]]
    layers = []
    if config["arch"] == "mlp":
        layers.append(nn.Flatten())
        size = channels * height * width
        for w in config["widths"]:
            layers += [nn.Linear(size, w), act()]
            size = w
        layers.append(nn.Linear(size, classes))
    elif config["arch"] == "cnn":
        k = config["kernel"]
        for w in config["widths"]:
            layers += [nn.Conv2d(channels, w, k, padding=k // 2), act(), nn.MaxPool2d(2)]
            channels, height, width = w, height // 2, width // 2
        layers.append(nn.Flatten())
        size = channels * height * width
        if config["fc_width"] > 0:
            layers += [nn.Linear(size, config["fc_width"]), act()]
            size = config["fc_width"]
        layers.append(nn.Linear(size, classes))
    elif config["arch"] == "vit":
        dim = config["dim"]
        layers.append(PatchEmbed(channels, height, width, config["patch"], dim))
        layers += [TransformerBlock(dim, config["heads"], config["mlp_ratio"]) for _ in range(config["depth"])]
        layers += [ClassToken(dim), nn.Linear(dim, classes)]
    else:
        raise SystemExit("train_twin.py: no twin for arch " + config["arch"])
    return nn.Sequential(*layers)


def main():
    config = json.loads(sys.argv[1])
    batches, batch_size, threads = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if threads > 0:  # 0: PyTorch's default, like the C++ side
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(config)
    mean = torch.tensor(config["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(config["normalization"]["std"]).view(1, -1, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(batch_size, *config["input_shape"])
    labels = torch.randint(0, config["classes"], (batch_size,))

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model((images - mean) / std), labels)
        loss.backward()
        optimizer.step()

    for _ in range(max(1, batches // 20)):  # warm-up: allocator, thread pool
        step()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    seconds = time.perf_counter() - start
    print(json.dumps({"arch": config["arch"], "samples_per_second": batches * batch_size / seconds,
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
