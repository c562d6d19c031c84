#!/usr/bin/env python3
"""make-variant: writes a second candidate model derived from an HF-format model directory
(config.json, tokenizer.json, model.safetensors with F32 tensors), for tests and demos of the
candidates brief (`qbrief brief --runs`): the last --drop-layers decoder layers removed (a
smaller model), and every weight scaled by (1 + noise * u), u uniform in [-1, 1) from a fixed
seed (a perturbed one). Standard library only; nothing is written into the source directory.

    tools/make-variant.py examples/demo/qbrief-demo /tmp/variant --drop-layers 1 --noise 0.01
"""
import argparse
import array
import json
import os
import re
import shutil
import struct
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--drop-layers", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()

    cfg = json.load(open(os.path.join(a.src, "config.json")))
    n_layers = cfg["num_hidden_layers"]
    if not 0 <= a.drop_layers < n_layers:
        sys.exit("make-variant: --drop-layers must be in [0, %d)" % n_layers)
    keep = n_layers - a.drop_layers
    with open(os.path.join(a.src, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()

    out_header, chunks, off = {}, [], 0
    state = a.seed & 0xFFFFFFFF
    for name, t in header.items():
        if name == "__metadata__":
            out_header[name] = t
            continue
        m = re.match(r"model\.layers\.(\d+)\.", name)
        if m and int(m.group(1)) >= keep:
            continue
        if t["dtype"] != "F32":
            sys.exit("make-variant: %s is %s; only F32 tensors are supported" % (name, t["dtype"]))
        b, e = t["data_offsets"]
        v = array.array("f")
        v.frombytes(data[b:e])
        if a.noise:
            for i in range(len(v)):
                state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
                v[i] *= 1.0 + a.noise * (state / 2147483648.0 - 1.0)
        raw = v.tobytes()
        out_header[name] = {"dtype": "F32", "shape": t["shape"], "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)

    os.makedirs(a.dst, exist_ok=True)
    cfg["num_hidden_layers"] = keep
    json.dump(cfg, open(os.path.join(a.dst, "config.json"), "w"), indent=2)
    shutil.copy(os.path.join(a.src, "tokenizer.json"), os.path.join(a.dst, "tokenizer.json"))
    hb = json.dumps(out_header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(os.path.join(a.dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


if __name__ == "__main__":
    main()
