#!/usr/bin/env python3
"""Writes the malformed llama2.c checkpoints in tests/malformed/llama2c/ (tiny files).

Each must make `qbrief` fail with a message naming the file, never crash. The valid base is
a model with dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 4, seq_len 4."""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llama2c")


def legacy(dim=8, hidden=16, layers=1, heads=2, kv=1, vocab=4, seq=4, extra=0, cut=0, hdr=None):
    head = dim // heads if heads > 0 else 1
    kvd = kv * head if kv > 0 else 0
    n = (vocab * dim + layers * dim + layers * dim * dim * 2 + layers * kvd * dim * 2
         + layers * dim + layers * hidden * dim * 3 + dim + seq * head)
    h = struct.pack("<7i", *(hdr or (dim, hidden, layers, heads, kv, vocab, seq)))
    body = struct.pack("<%df" % max(n, 0), *([0.5] * max(n, 0))) + b"\0" * extra
    data = h + body
    return data[: len(data) - cut] if cut else data


def v1(version=1, pad_to=256, params=(8, 16, 1, 2, 1, 4, 4)):
    h = struct.pack("<Ii7iB", 0x616B3432, version, *params, 1)
    return h + b"\0" * (pad_to - len(h))


CASES = {
    "empty.bin": b"",
    "short-header.bin": b"\x08\0\0\0\x10\0\0",
    "truncated-weights.bin": legacy(cut=40),
    "trailing-bytes.bin": legacy(extra=12),
    "zero-dim.bin": legacy(hdr=(0, 16, 1, 2, 1, 4, 4)),
    "negative-layers.bin": legacy(hdr=(8, 16, -1, 2, 1, 4, 4)),
    "absurd-dim.bin": legacy(hdr=(0x7FFFFFFF, 16, 1, 2, 1, 4, 4))[:200],
    "absurd-vocab.bin": legacy(hdr=(8, 16, 1, 2, 1, 0x7FFFFFF0, 4))[:200],
    "vocab-int-min.bin": legacy(hdr=(8, 16, 1, 2, 1, -0x80000000, 4))[:200],
    "kv-heads-not-dividing.bin": legacy(hdr=(8, 16, 1, 2, 3, 4, 4)),
    "dim-not-multiple-of-heads.bin": legacy(hdr=(8, 16, 1, 3, 1, 4, 4)),
    "odd-head-dim.bin": legacy(hdr=(6, 16, 1, 2, 1, 4, 4)),
    "huge-seq-len.bin": legacy(hdr=(8, 16, 1, 2, 1, 4, 0x7FFFFFFF))[:300],
    "v1-version-2.bin": v1(version=2),
    "v1-short-header.bin": v1()[:100],
    "v1-no-weights.bin": v1(),
}

if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    for name, data in CASES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    # the control: the same generator, unbroken, must load
    os.makedirs(os.path.join(HERE, "..", "valid"), exist_ok=True)
    with open(os.path.join(HERE, "..", "valid", "llama2c.bin"), "wb") as f:
        f.write(legacy())
    print("wrote %d files to %s" % (len(CASES), HERE))
