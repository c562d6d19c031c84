#!/usr/bin/env python3
"""Writes the malformed GGUF files in tests/malformed/gguf/ (each under 4 KB) and the valid
control tests/malformed/valid/gguf.gguf.

Each malformed file must make `qbrief` fail with a message naming the file, never crash
(tests/collector/model/test_malformed_gguf.c checks the message of each). The valid base is a llama
model with dim 8, hidden 16, 1 layer, 2 heads, 1 kv head (head_dim 4), vocab 8, context 16,
tied embeddings, F32 weights and no tokenizer. Layout as in the GGUF specification:
"GGUF", u32 version, u64 n_tensors, u64 n_kv, key/values, tensor infos, padding to the
alignment, data."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gguf")

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
T_F32, T_Q8_0, T_I8 = 0, 8, 24
SCALAR = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
          U64: "Q", I64: "q", F64: "d"}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(value(et, x) for x in items)
    return struct.pack("<" + SCALAR[t], v)


def kv(key, t, v):
    return gstr(key) + struct.pack("<I", t) + value(t, v)


DIM, HID, HEADS, KV_HEADS, VOCAB, CTX = 8, 16, 2, 1, 8, 16
HEAD = DIM // HEADS


def base_kvs(arch="llama"):
    return [
        kv("general.architecture", STR, arch),
        kv(arch + ".context_length", U32, CTX),
        kv(arch + ".embedding_length", U32, DIM),
        kv(arch + ".feed_forward_length", U32, HID),
        kv(arch + ".block_count", U32, 1),
        kv(arch + ".attention.head_count", U32, HEADS),
        kv(arch + ".attention.head_count_kv", U32, KV_HEADS),
        kv(arch + ".attention.layer_norm_rms_epsilon", F32, 1e-5),
    ]


def base_tensors():
    """(name, ne innermost first) of the valid model; tied, so no output.weight."""
    q, k = HEADS * HEAD, KV_HEADS * HEAD
    return [
        ("token_embd.weight", [DIM, VOCAB]),
        ("output_norm.weight", [DIM]),
        ("blk.0.attn_norm.weight", [DIM]),
        ("blk.0.attn_q.weight", [DIM, q]),
        ("blk.0.attn_k.weight", [DIM, k]),
        ("blk.0.attn_v.weight", [DIM, k]),
        ("blk.0.attn_output.weight", [q, DIM]),
        ("blk.0.ffn_norm.weight", [DIM]),
        ("blk.0.ffn_gate.weight", [DIM, HID]),
        ("blk.0.ffn_down.weight", [HID, DIM]),
        ("blk.0.ffn_up.weight", [DIM, HID]),
    ]


def f32_data(ne):
    n = 1
    for d in ne:
        n *= d
    return struct.pack("<%df" % n, *[0.25 * ((i % 7) - 3) for i in range(n)])


def tensor(name, ne, ttype=T_F32, data=None):
    return {"name": name, "ne": ne, "type": ttype,
            "data": f32_data(ne) if data is None else data, "offset": None}


def gguf(kvs=None, tensors=None, version=3, magic=b"GGUF", align=32, n_tensors=None, n_kv=None,
         cut=None):
    kvs = base_kvs() if kvs is None else kvs
    tensors = [tensor(n, ne) for n, ne in base_tensors()] if tensors is None else tensors
    infos, data = b"", b""
    for t in tensors:
        data += b"\0" * (-len(data) % align)
        off = len(data) if t["offset"] is None else t["offset"]
        name = t["name"].encode() if isinstance(t["name"], str) else t["name"]
        infos += gstr(name) + struct.pack("<I", len(t["ne"]))
        infos += b"".join(struct.pack("<Q", d) for d in t["ne"])
        infos += struct.pack("<IQ", t["type"], off)
        data += t["data"]
    head = magic + struct.pack("<IQQ", version,
                               len(tensors) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + infos
    out = body + b"\0" * (-len(body) % align) + data
    return out[:cut] if cut is not None else out


def with_tensor(which, **changes):
    ts = [tensor(n, ne) for n, ne in base_tensors()]
    for t in ts:
        if t["name"] == which:
            t.update(changes)
    return ts


def without_tensor(name):
    return [tensor(n, ne) for n, ne in base_tensors() if n != name]


def replace_kv(key, new):
    return [new if k.startswith(gstr(key)) else k for k in base_kvs()]


VALID = gguf()
# the same with a SentencePiece-style tokenizer of 8 pieces (a seed for the fuzzer)
PIECES = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", "\u2581"]
VALID_TOK = gguf(kvs=base_kvs() + [
    kv("tokenizer.ggml.model", STR, "llama"),
    kv("tokenizer.ggml.tokens", ARR, (STR, PIECES)),
    kv("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])),
    kv("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1, 1, 1, 1, 1])),
    kv("tokenizer.ggml.bos_token_id", U32, 1),
    kv("tokenizer.ggml.eos_token_id", U32, 2),
    kv("tokenizer.ggml.unknown_token_id", U32, 0),
    kv("tokenizer.ggml.add_bos_token", BOOL, True),
])
N_KV_HEADER = 4 + 4 + 8 + 8
KV0_END = N_KV_HEADER + len(base_kvs()[0])

CASES = {
    "empty.gguf": b"",
    "wrong-magic.gguf": gguf(magic=b"GGUX"),
    "version-1.gguf": gguf(version=1),
    "version-4.gguf": gguf(version=4),
    "big-endian.gguf": gguf(version=3 << 24),
    "truncated-header.gguf": VALID[:12],
    # two entries claimed, the file ends inside the second one's type
    "truncated-metadata.gguf": gguf(tensors=[], n_kv=2, cut=KV0_END + 8 + 20 + 2),
    "string-past-end.gguf": b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 40) + b"general",
    "huge-array-count.gguf": gguf(kvs=base_kvs() + [
        gstr("tokenizer.ggml.scores") + struct.pack("<IIQ", ARR, F32, 1 << 62)]),
    "huge-string-array.gguf": gguf(kvs=base_kvs() + [
        gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARR, STR, 1 << 61) + gstr("a")]),
    "nested-array.gguf": gguf(kvs=base_kvs() + [
        gstr("x") + struct.pack("<IIQ", ARR, ARR, 1) + struct.pack("<IQ", U8, 0)]),
    "unknown-value-type.gguf": gguf(kvs=base_kvs() + [gstr("x") + struct.pack("<I", 13) + b"\0"]),
    "absurd-n-kv.gguf": gguf(n_kv=1 << 58),
    "absurd-n-tensors.gguf": gguf(n_tensors=(1 << 64) - 1),
    "duplicate-key.gguf": gguf(kvs=base_kvs() + [kv("llama.block_count", U32, 1)]),
    "n-dims-5.gguf": gguf(tensors=with_tensor("output_norm.weight", ne=[DIM, 1, 1, 1, 1])),
    "ne-product-overflow.gguf": gguf(tensors=with_tensor("output_norm.weight",
                                                         ne=[1 << 32, 1 << 32, 1 << 32])),
    "ne-negative.gguf": gguf(tensors=with_tensor("output_norm.weight", ne=[1 << 63])),
    "tensor-offset-past-end.gguf": gguf(tensors=with_tensor("blk.0.ffn_up.weight",
                                                            offset=1 << 40)),
    "tensor-ends-past-end.gguf": gguf(cut=len(VALID) - 4),
    "tensor-offset-unaligned.gguf": gguf(tensors=with_tensor("output_norm.weight", offset=36)),
    "data-section-missing.gguf": gguf(tensors=[tensor(n, ne, data=b"") for n, ne in
                                               base_tensors()]),
    "bad-alignment.gguf": gguf(kvs=base_kvs() + [kv("general.alignment", U32, 3)]),
    "zero-alignment.gguf": gguf(kvs=base_kvs() + [kv("general.alignment", U32, 0)]),
    "duplicate-tensor.gguf": gguf(tensors=[tensor(n, ne) for n, ne in base_tensors()] +
                                  [tensor("blk.0.attn_q.weight", [DIM, DIM])]),
    "tensor-name-nul.gguf": gguf(tensors=with_tensor("output_norm.weight",
                                                     name=b"output_norm\0weight")),
    "tensor-name-long.gguf": gguf(tensors=with_tensor("output_norm.weight", name="n" * 300)),
    "partial-q8-block.gguf": gguf(tensors=with_tensor("blk.0.attn_q.weight", type=T_Q8_0,
                                                      data=b"\0" * 68)),
    "unsupported-tensor-type.gguf": gguf(tensors=with_tensor("token_embd.weight", type=T_I8,
                                                             data=b"\1" * (DIM * VOCAB))),
    "unknown-tensor-type.gguf": gguf(tensors=with_tensor("blk.0.attn_q.weight", type=200)),
    "missing-token-embd.gguf": gguf(tensors=without_tensor("token_embd.weight")),
    "missing-attn-v.gguf": gguf(tensors=without_tensor("blk.0.attn_v.weight")),
    "wrong-tensor-shape.gguf": gguf(tensors=with_tensor("blk.0.attn_k.weight",
                                                        ne=[KV_HEADS * HEAD, DIM])),
    "missing-architecture.gguf": gguf(kvs=base_kvs()[1:]),
    "unsupported-architecture.gguf": gguf(kvs=[kv("general.architecture", STR, "gpt2")] +
                                      base_kvs()[1:]),
    "missing-context-length.gguf": gguf(kvs=[k for k in base_kvs()
                                             if not k.startswith(gstr("llama.context_length"))]),
    "metadata-wrong-type.gguf": gguf(kvs=replace_kv("llama.embedding_length",
                                                    kv("llama.embedding_length", STR, "8"))),
    "kv-heads-not-dividing.gguf": gguf(kvs=replace_kv("llama.attention.head_count_kv",
                                                      kv("llama.attention.head_count_kv", U32, 3))),
    "eps-nan.gguf": gguf(kvs=replace_kv("llama.attention.layer_norm_rms_epsilon",
                                        kv("llama.attention.layer_norm_rms_epsilon", F32,
                                           float("nan")))),
    "tokenizer-size-mismatch.gguf": gguf(kvs=base_kvs() + [
        kv("tokenizer.ggml.model", STR, "llama"),
        kv("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>"]))]),
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in CASES.items():
        assert len(data) < 4096, name
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(HERE, "valid"), exist_ok=True)
    with open(os.path.join(HERE, "valid", "gguf.gguf"), "wb") as f:
        f.write(VALID)
    with open(os.path.join(HERE, "valid", "gguf-tokenizer.gguf"), "wb") as f:
        f.write(VALID_TOK)
    print("wrote %d files to %s (control: %d bytes)" % (len(CASES), OUT, len(VALID)))
