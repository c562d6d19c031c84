#!/usr/bin/env python3
"""Writes a Llama-architecture GGUF with random weights at realistic shapes, for latency and
memory measurements (weights' values do not change speed; accuracy on it means nothing).

    tools/make-random-model.py OUT.gguf [--preset 1b|7b|tiny] [--seed N] [--type f16|q8_0|q4_0]
                               [--vocab tokenizer.model]

Presets (dims as published for the models they imitate):
  1b   TinyLlama-1.1B: dim 2048, ffn 5632, 22 layers, 32 heads, 4 kv heads, vocab 32000
  7b   Llama-2-7B: dim 4096, ffn 11008, 32 layers, 32 heads, 32 kv heads, vocab 32000
  tiny dim 256, ffn 704, 4 layers, 8 heads, 4 kv heads, vocab 32000 (for quick checks)
Weights are normal(0, 0.02) (a block of random values repeated, so writing stays fast), in
F16, or quantized as ggml's Q8_0 / Q4_0 (--type; every matrix, embedding and head included),
norms 1.0. Without --vocab no tokenizer is embedded: pass the Llama 2 tokenizer to qbrief with
--tokenizer (32000 tokens), e.g. ../shared/models/llama2-tokenizer/tokenizer.bin. With --vocab
SentencePiece's tokenizer.model (e.g. ../shared/models/llama2-tokenizer/tokenizer.model) its
pieces, scores and types go into tokenizer.ggml.* (model "llama"), so llama.cpp loads the file
too. Standard library only."""
import argparse
import random
import struct

PRESETS = {
    "1b": dict(dim=2048, ffn=5632, layers=22, heads=32, kv=4, vocab=32000, ctx=2048),
    "7b": dict(dim=4096, ffn=11008, layers=32, heads=32, kv=32, vocab=32000, ctx=4096),
    "tiny": dict(dim=256, ffn=704, layers=4, heads=8, kv=4, vocab=32000, ctx=2048),
}
U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9
T_F32, T_F16, T_Q4_0, T_Q8_0 = 0, 1, 2, 8
TYPES = {"f16": T_F16, "q8_0": T_Q8_0, "q4_0": T_Q4_0}
BLOCK = {T_F16: (1, 2), T_Q8_0: (32, 34), T_Q4_0: (32, 18)}  # elements, bytes per block
ALIGN = 32


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, t, v):
    fmt = {U32: "<I", F32: "<f", BOOL: "<?"}
    body = gstr(v) if t == STR else struct.pack(fmt[t], v)
    return gstr(key) + struct.pack("<I", t) + body


def kv_arr(key, t, vals):
    fmt = {I32: "<i", F32: "<f"}
    body = b"".join(gstr(v) if t == STR else struct.pack(fmt[t], v) for v in vals)
    return gstr(key) + struct.pack("<IIQ", ARR, t, len(vals)) + body


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def sp_fields(b):
    """(field, wire type, value) of one protobuf message, values raw (bytes or ints)."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("protobuf wire type %d" % w)
        yield f, w, v


def sp_vocab(path):
    """Pieces, scores and ggml token types of SentencePiece's ModelProto (field 1: pieces,
    each {1: piece, 2: score, 3: type}; SentencePiece's types 1..6 are ggml's 1..6)."""
    pieces, scores, types = [], [], []
    with open(path, "rb") as f:
        data = f.read()
    for f, _, v in sp_fields(data):
        if f != 1:
            continue
        piece, score, typ = "", 0.0, 1
        for g, _, u in sp_fields(v):
            if g == 1:
                piece = u.decode("utf-8")
            elif g == 2:
                score = struct.unpack("<f", u)[0]
            elif g == 3:
                typ = u
        pieces.append(piece)
        scores.append(score)
        types.append(typ)
    return pieces, scores, types


def vocab_kvs(path, n_vocab):
    pieces, scores, types = sp_vocab(path)
    if len(pieces) != n_vocab:
        raise SystemExit("%s has %d pieces; the preset wants %d" % (path, len(pieces), n_vocab))
    return [kv("tokenizer.ggml.model", STR, "llama"),
            kv_arr("tokenizer.ggml.tokens", STR, pieces),
            kv_arr("tokenizer.ggml.scores", F32, scores),
            kv_arr("tokenizer.ggml.token_type", I32, types),
            kv("tokenizer.ggml.bos_token_id", U32, 1),
            kv("tokenizer.ggml.eos_token_id", U32, 2),
            kv("tokenizer.ggml.unknown_token_id", U32, 0),
            kv("tokenizer.ggml.add_bos_token", BOOL, True),
            kv("tokenizer.ggml.add_eos_token", BOOL, False)]


def f16r(x):
    return struct.unpack("<e", struct.pack("<e", x))[0]


def quant_block(vals, t):
    """One ggml block of 32 values, as quantize_row_q8_0_ref / quantize_row_q4_0_ref write it."""
    if t == T_Q8_0:
        amax = max(abs(v) for v in vals)
        d = amax / 127.0
        inv = 1.0 / d if d else 0.0
        q = [max(-128, min(127, int(round(v * inv)))) for v in vals]
        return struct.pack("<e", d) + struct.pack("<32b", *q)
    vmax = max(vals, key=abs)
    d = vmax / -8.0
    inv = 1.0 / d if d else 0.0
    q = [min(15, int(v * inv + 8.5)) for v in vals]
    return struct.pack("<e", d) + bytes(q[j] | (q[j + 16] << 4) for j in range(16))


def weight_block(rng, n, t):
    """n random normal(0, 0.02) values (n a multiple of 32) in type t, little-endian."""
    vals = [rng.gauss(0.0, 0.02) for _ in range(n)]
    if t == T_F16:
        return b"".join(struct.pack("<e", v) for v in vals)
    return b"".join(quant_block(vals[i:i + 32], t) for i in range(0, n, 32))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="1b")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--type", choices=sorted(TYPES), default="f16")
    ap.add_argument("--vocab", help="SentencePiece tokenizer.model to embed")
    a = ap.parse_args()
    p = PRESETS[a.preset]
    d, f, hd = p["dim"], p["ffn"], p["dim"] // p["heads"]
    T_W = TYPES[a.type]
    tensors = [("token_embd.weight", (d, p["vocab"]), T_W), ("output_norm.weight", (d,), T_F32),
               ("output.weight", (d, p["vocab"]), T_W)]
    for i in range(p["layers"]):
        b = "blk.%d." % i
        tensors += [(b + "attn_norm.weight", (d,), T_F32),
                    (b + "attn_q.weight", (d, p["heads"] * hd), T_W),
                    (b + "attn_k.weight", (d, p["kv"] * hd), T_W),
                    (b + "attn_v.weight", (d, p["kv"] * hd), T_W),
                    (b + "attn_output.weight", (p["heads"] * hd, d), T_W),
                    (b + "ffn_norm.weight", (d,), T_F32),
                    (b + "ffn_gate.weight", (d, f), T_W),
                    (b + "ffn_up.weight", (d, f), T_W),
                    (b + "ffn_down.weight", (f, d), T_W)]
    kvs = [kv("general.architecture", STR, "llama"),
           kv("general.name", STR, "random-%s" % a.preset),
           kv("llama.context_length", U32, p["ctx"]),
           kv("llama.embedding_length", U32, d),
           kv("llama.feed_forward_length", U32, f),
           kv("llama.block_count", U32, p["layers"]),
           kv("llama.attention.head_count", U32, p["heads"]),
           kv("llama.attention.head_count_kv", U32, p["kv"]),
           kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
           kv("llama.rope.freq_base", F32, 10000.0),
           kv("llama.rope.dimension_count", U32, hd),
           kv("general.file_type", U32, {T_F16: 1, T_Q4_0: 2, T_Q8_0: 7}[T_W])]
    if a.vocab:
        kvs += vocab_kvs(a.vocab, p["vocab"])
    if T_W != T_F16 and any(ne[0] % 32 for _, ne, t in tensors if t == T_W):
        raise SystemExit("--type %s wants rows of whole blocks of 32" % a.type)
    infos, offsets, off = [], [], 0
    for name, ne, t in tensors:
        n = 1
        for x in ne:
            n *= x
        per, nbytes = BLOCK.get(t, (1, 4))
        size = n // per * nbytes
        offsets.append(off)
        infos.append(gstr(name) + struct.pack("<I", len(ne)) +
                     b"".join(struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", t, off))
        off += (size + ALIGN - 1) // ALIGN * ALIGN
    rng = random.Random(a.seed)
    block = weight_block(rng, 1 << 16, T_W)
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
            left = n // BLOCK[t][0] * BLOCK[t][1]
            while left:
                chunk = block[: min(left, len(block))]
                out.write(chunk)
                left -= len(chunk)
    print("wrote %s: %s preset, %s, %.2fB parameters" % (a.out, a.preset, a.type,
                                                        n_params / 1e9))


if __name__ == "__main__":
    main()
