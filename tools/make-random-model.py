#!/usr/bin/env python3
"""Writes a Llama-architecture GGUF with random weights at realistic shapes, for latency and
memory measurements (weights' values do not change speed; accuracy on it means nothing).

    tools/make-random-model.py OUT.gguf [--preset 1b|7b|tiny] [--seed N]

Presets (dims as published for the models they imitate):
  1b   TinyLlama-1.1B: dim 2048, ffn 5632, 22 layers, 32 heads, 4 kv heads, vocab 32000
  7b   Llama-2-7B: dim 4096, ffn 11008, 32 layers, 32 heads, 32 kv heads, vocab 32000
  tiny dim 256, ffn 688, 4 layers, 8 heads, 4 kv heads, vocab 32000 (for quick checks)
Weights are F16 normal(0, 0.02) (a block of random values repeated, so writing stays fast),
norms 1.0. No tokenizer is embedded: pass the Llama 2 tokenizer with --tokenizer (32000
tokens), e.g. ../shared/models/llama2-tokenizer/tokenizer.bin. Standard library only."""
import argparse
import random
import struct

PRESETS = {
    "1b": dict(dim=2048, ffn=5632, layers=22, heads=32, kv=4, vocab=32000, ctx=2048),
    "7b": dict(dim=4096, ffn=11008, layers=32, heads=32, kv=32, vocab=32000, ctx=4096),
    "tiny": dict(dim=256, ffn=688, layers=4, heads=8, kv=4, vocab=32000, ctx=2048),
}
U32, F32, STR = 4, 6, 8
T_F32, T_F16 = 0, 1
ALIGN = 32


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, t, v):
    fmt = {U32: "<I", F32: "<f"}
    body = gstr(v) if t == STR else struct.pack(fmt[t], v)
    return gstr(key) + struct.pack("<I", t) + body


def f16_block(rng, n):
    """n random normal(0, 0.02) values as little-endian f16 bytes."""
    return b"".join(struct.pack("<e", rng.gauss(0.0, 0.02)) for _ in range(n))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="1b")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    p = PRESETS[a.preset]
    d, f, hd = p["dim"], p["ffn"], p["dim"] // p["heads"]
    tensors = [("token_embd.weight", (d, p["vocab"]), T_F16), ("output_norm.weight", (d,), T_F32),
               ("output.weight", (d, p["vocab"]), T_F16)]
    for i in range(p["layers"]):
        b = "blk.%d." % i
        tensors += [(b + "attn_norm.weight", (d,), T_F32),
                    (b + "attn_q.weight", (d, p["heads"] * hd), T_F16),
                    (b + "attn_k.weight", (d, p["kv"] * hd), T_F16),
                    (b + "attn_v.weight", (d, p["kv"] * hd), T_F16),
                    (b + "attn_output.weight", (p["heads"] * hd, d), T_F16),
                    (b + "ffn_norm.weight", (d,), T_F32),
                    (b + "ffn_gate.weight", (d, f), T_F16),
                    (b + "ffn_up.weight", (d, f), T_F16),
                    (b + "ffn_down.weight", (f, d), T_F16)]
    kvs = [kv("general.architecture", STR, "llama"),
           kv("general.name", STR, "random-%s" % a.preset),
           kv("llama.context_length", U32, p["ctx"]),
           kv("llama.embedding_length", U32, d),
           kv("llama.feed_forward_length", U32, f),
           kv("llama.block_count", U32, p["layers"]),
           kv("llama.attention.head_count", U32, p["heads"]),
           kv("llama.attention.head_count_kv", U32, p["kv"]),
           kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
           kv("llama.rope.freq_base", F32, 10000.0)]
    infos, offsets, off = [], [], 0
    for name, ne, t in tensors:
        n = 1
        for x in ne:
            n *= x
        size = n * (2 if t == T_F16 else 4)
        offsets.append(off)
        infos.append(gstr(name) + struct.pack("<I", len(ne)) +
                     b"".join(struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", t, off))
        off += (size + ALIGN - 1) // ALIGN * ALIGN
    rng = random.Random(a.seed)
    block = f16_block(rng, 1 << 16)
    n_params = 0
    with open(a.out, "wb") as out:
        out.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
        out.write(b"".join(kvs) + b"".join(infos))
        out.write(b"\0" * ((-out.tell()) % ALIGN))
        base = out.tell()
        for (name, ne, t), o in zip(tensors, offsets):
            n = 1
            for x in ne:
                n *= x
            n_params += n
            out.write(b"\0" * (base + o - out.tell()))
            if t == T_F32:
                out.write(struct.pack("<f", 1.0) * n)
                continue
            left = 2 * n
            while left:
                chunk = block[: min(left, len(block))]
                out.write(chunk)
                left -= len(chunk)
    print("wrote %s: %s preset, %.2fB parameters" % (a.out, a.preset, n_params / 1e9))


if __name__ == "__main__":
    main()
