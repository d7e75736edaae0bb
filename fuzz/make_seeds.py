#!/usr/bin/env python3
"""Writes small valid inputs per fuzz target into CORPUS/<target>/, so that libFuzzer starts
from the real formats instead of random bytes. Usage: make_seeds.py CORPUS [CHECKPOINT]

The model loader's seeds need torch (/usr/bin/python3 on Debian has it): TorchScript archives
written here, and CHECKPOINT, a privaudit checkpoint written by the C++ side (model_fuzz with
PRIVAUDIT_WRITE_SEED_CHECKPOINT set), each with damaged copies: truncated, bit-flipped, and zip
archives whose entries are renamed, dropped or replaced (with valid zip checksums, so that the
loader gets past the zip layer, which byte mutations rarely do).
"""
import io
import os
import random
import struct
import sys
import zipfile
from typing import List

root = sys.argv[1]


def write(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)


# IDX: two 3x3 images and a label file.
write("idx_fuzz", "images", b"\0\0\x08\x03" + struct.pack(">III", 2, 3, 3) + bytes(range(18)))
write("idx_fuzz", "labels", b"\0\0\x08\x01" + struct.pack(">I", 2) + b"\x03\x07")

# CIFAR-10: one record (label byte + 3072 pixel bytes).
write("cifar10_fuzz", "record", b"\x06" + bytes(i % 256 for i in range(3072)))


# MAT v5 (the SVHN layout): X uint8 32x32x3x1, y double 1x1.
def element(data_type, payload):
    padded = payload + b"\0" * (-len(payload) % 8)
    return struct.pack("<II", data_type, len(payload)) + padded


def matrix(name, class_id, dims, real_type, real):
    body = element(6, struct.pack("<II", class_id, 0))          # miUINT32 array flags
    body += element(5, struct.pack("<%di" % len(dims), *dims))  # miINT32 dimensions
    body += element(1, name)                                    # miINT8 name
    body += element(real_type, real)                            # real part
    return struct.pack("<II", 14, len(body)) + body             # miMATRIX


header = b"MATLAB 5.0 MAT-file, written by privaudit fuzz/make_seeds.py".ljust(116, b" ")
header += b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
x = matrix(b"X", 9, [32, 32, 3, 1], 2, bytes(i % 256 for i in range(3072)))  # mxUINT8, miUINT8
y = matrix(b"y", 6, [1, 1], 9, struct.pack("<d", 10.0))                      # mxDOUBLE, miDOUBLE
write("svhn_mat_fuzz", "svhn.mat", header + x + y)
write("mat_layout_fuzz", "svhn.mat", header + x + y)


# Models: TorchScript archives and a privaudit checkpoint, plus damaged copies of each.
def model_seeds():
    try:
        import torch
        from torch import nn
    except ImportError:
        print("make_seeds.py: no torch in this Python; model_fuzz starts without seeds "
              "(run it with /usr/bin/python3)", file=sys.stderr)
        return {}

    class Attributed(nn.Module):
        input_shape: List[int]
        num_classes: int

        def __init__(self, body):
            super().__init__()
            self.input_shape = [1, 4, 4]
            self.num_classes = 3
            self.body = body

        def forward(self, x):
            return self.body(x)

    class Raises(nn.Module):
        input_shape: List[int]

        def __init__(self):
            super().__init__()
            self.input_shape = [1, 4, 4]

        def forward(self, x):
            raise RuntimeError("deliberately broken model")
            return x

    class ReturnsTuple(nn.Module):
        input_shape: List[int]

        def __init__(self):
            super().__init__()
            self.input_shape = [1, 4, 4]

        def forward(self, x):
            return x, x

    class ReturnsNan(nn.Module):
        input_shape: List[int]

        def __init__(self):
            super().__init__()
            self.input_shape = [1, 4, 4]
            self.linear = nn.Linear(16, 3)

        def forward(self, x):
            return self.linear(torch.flatten(x, 1)) * float("nan")

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    modules = {
        "scripted_mlp": torch.jit.script(Attributed(mlp)),
        "traced_mlp": torch.jit.trace(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)),
                                      torch.rand(2, 1, 4, 4)),
        "raises": torch.jit.script(Raises()),
        "returns_tuple": torch.jit.script(ReturnsTuple()),
        "returns_nan": torch.jit.script(ReturnsNan()),
    }
    archives = {}
    for name, module in modules.items():
        buffer = io.BytesIO()
        torch.jit.save(module, buffer)
        archives[name] = buffer.getvalue()
    return archives


def rezip(data, change):
    """The zip archive `data` with each (name, bytes) entry passed through change(name, bytes),
    which returns the new (name, bytes) or None to drop the entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            changed = change(info.filename, source.read(info))
            if changed is not None:
                target.writestr(zipfile.ZipInfo(changed[0]), changed[1])
    return out.getvalue()


def damaged(name, data, rng):
    yield name + "-truncated-half", data[: len(data) // 2]
    yield name + "-truncated-tail", data[: len(data) - 22]  # no end of central directory
    for i in range(3):
        flipped = bytearray(data)
        for _ in range(4):
            position = rng.randrange(len(flipped))
            flipped[position] ^= 1 << rng.randrange(8)
        yield name + "-flipped-%d" % i, bytes(flipped)

    def renamed(old, new):
        return lambda entry, content: (entry.replace(old, new), content)

    def replaced(suffix, content):
        return lambda entry, old: (entry, content if entry.endswith(suffix) else old)

    changes = {
        "renamed-data-pkl": renamed("data.pkl", "dat.pkl"),
        "renamed-version": renamed("/version", "/versions"),
        "renamed-folder": lambda entry, content: ("other/" + entry.split("/", 1)[1], content),
        "renamed-tensor": renamed("/data/0", "/data/9"),
        "dropped-code": lambda entry, content: None if "/code/" in entry else (entry, content),
        "dropped-constants": lambda entry, content: (
            None if entry.endswith("constants.pkl") else (entry, content)),
        "version-99": replaced("/version", b"99\n"),
        "garbage-data-pkl": replaced("data.pkl", b"\x80\x02garbage\x00\xff."),
        "empty-data-pkl": replaced("data.pkl", b""),
        "bad-code": lambda entry, content: (
            entry, b"def forward(self x):\n  return (\n" if entry.endswith(".py") else content),
        "short-tensor": lambda entry, content: (
            entry, content[:4] if "/data/" in entry and not entry.endswith(".pkl") else content),
    }
    for change_name, change in changes.items():
        yield name + "-" + change_name, rezip(data, change)


def write_model_seeds(checkpoint):
    archives = model_seeds()
    if checkpoint:
        with open(checkpoint, "rb") as f:
            archives["checkpoint"] = f.read()
    rng = random.Random(0)
    for name, data in archives.items():
        write("model_fuzz", name + ".pt", data)
        # pickle_fuzz starts from every pickle inside the valid archives (data.pkl, constants.pkl).
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for entry in archive.namelist():
                if entry.endswith(".pkl"):
                    write("pickle_fuzz", name + "-" + entry.replace("/", "-"), archive.read(entry))
        for damaged_name, damaged_data in damaged(name, data, rng):
            write("model_fuzz", damaged_name + ".pt", damaged_data)


write_model_seeds(sys.argv[2] if len(sys.argv) > 2 else None)
