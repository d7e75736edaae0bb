#!/usr/bin/env python3
"""Writes one small valid input per fuzz target into CORPUS/<target>/, so that libFuzzer starts
from the real formats instead of random bytes. Usage: make_seeds.py CORPUS"""
import os
import struct
import sys

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
