#!/usr/bin/env python3
"""Writes the malformed Hugging Face inputs (tiny files, Python standard library only):

  tests/malformed/safetensors/*.safetensors   broken safetensors files, for the parser alone
  tests/malformed/hf/<case>/                  model directories (config.json, model.safetensors,
                                              sometimes an index) with one thing wrong each
  tests/malformed/valid/hf/, valid/tiny.safetensors   the unbroken controls, which must load

Each malformed input must make qbrief fail with a message naming the file, never crash. The
valid base is a Llama model with hidden 4, intermediate 8, 1 layer, 2 heads, 1 kv head,
vocab 8, in F32. Run from anywhere; rewrites the folders from scratch."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DIM, HID, HEADS, KV, VOCAB = 4, 8, 2, 1, 8
HD = DIM // HEADS

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": DIM,
    "intermediate_size": HID,
    "num_hidden_layers": 1,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV,
    "vocab_size": VOCAB,
    "max_position_embeddings": 16,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "torch_dtype": "float32",
}


def tensors(qwen=False, drop=(), reshape=None):
    """(name, shape) of the base model in file order."""
    out = [("model.embed_tokens.weight", [VOCAB, DIM])]
    p = "model.layers.0."
    out += [(p + "input_layernorm.weight", [DIM]),
            (p + "self_attn.q_proj.weight", [HEADS * HD, DIM]),
            (p + "self_attn.k_proj.weight", [KV * HD, DIM]),
            (p + "self_attn.v_proj.weight", [KV * HD, DIM])]
    if qwen:
        out += [(p + "self_attn.q_proj.bias", [HEADS * HD]),
                (p + "self_attn.k_proj.bias", [KV * HD]),
                (p + "self_attn.v_proj.bias", [KV * HD])]
    out += [(p + "self_attn.o_proj.weight", [DIM, HEADS * HD]),
            (p + "post_attention_layernorm.weight", [DIM]),
            (p + "mlp.gate_proj.weight", [HID, DIM]),
            (p + "mlp.up_proj.weight", [HID, DIM]),
            (p + "mlp.down_proj.weight", [DIM, HID]),
            ("model.norm.weight", [DIM]),
            ("lm_head.weight", [VOCAB, DIM])]
    out = [(n, s) for n, s in out if n not in drop]
    if reshape:
        out = [(n, reshape[n] if n in reshape else s) for n, s in out]
    return out


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def st_file(header, data=b"", hlen=None):
    """A safetensors image: header is a dict (dumped, padded to 8) or raw bytes."""
    if isinstance(header, dict):
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
    else:
        h = header
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def model_st(ts, dtype="F32", dtypes=None):
    """A safetensors file holding tensors ts = [(name, shape)], values 0.25, 0.5, ..."""
    header, data, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for i, (name, shape) in enumerate(ts):
        dt = (dtypes or {}).get(name, dtype)
        size = {"F32": 4, "I32": 4, "F16": 2}[dt]
        n = numel(shape)
        if dt == "F32":
            blob = struct.pack("<%df" % n, *[0.25 * ((i + k) % 7 - 3) for k in range(n)])
        elif dt == "F16":
            blob = struct.pack("<%de" % n, *[0.25 * ((i + k) % 7 - 3) for k in range(n)])
        else:
            blob = struct.pack("<%di" % n, *[k for k in range(n)])
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n * size]}
        assert len(blob) == n * size
        data += blob
        off += len(blob)
    return st_file(header, data)


def one(dtype="F32", shape=(2,), offsets=(0, 8), data=8):
    """A file with one tensor "a" whose entry says what the arguments say."""
    return st_file({"a": {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}},
                   b"\0" * data)


def cfg(**kw):
    c = dict(CONFIG)
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, indent=2).encode()


# safetensors files on their own: the parser must refuse each
ST_CASES = {
    "empty": b"",
    "short": b"\x10\0\0\0",
    "header-past-end": st_file(b'{"a":1}', hlen=1000),
    "header-huge": st_file(b"{}      ", hlen=(1 << 64) - 1),
    "bad-json": st_file(b'{"a": {"dtype": "F32", '),
    "nul-in-header": st_file(b'{"a"\0:{}}   '),
    "not-object": st_file(b"[1, 2, 3]       "),
    "entry-not-object": st_file({"a": [1, 2]}),
    "duplicate-name": st_file(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                              b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8),
    "dtype-missing": st_file({"a": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "dtype-not-string": one(dtype=32),
    "dtype-unknown": one(dtype="F31"),
    "shape-not-array": st_file({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}},
                               b"\0" * 8),
    "shape-negative": one(shape=(-2,)),
    "shape-float": one(shape=(2.0,)),
    "shape-overflow": one(shape=(1 << 32, 1 << 32, 16), offsets=(0, 0), data=0),
    "shape-bytes-overflow": one(shape=(1 << 62,), offsets=(0, 0), data=0),
    "shape-too-many-dims": one(shape=(1,) * 9 + (2,)),
    "offsets-past-end": one(offsets=(0, 8), data=4),
    "offsets-huge": one(offsets=(1 << 62, (1 << 62) + 8)),
    "offsets-too-big-for-json-int": st_file(
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}', b"\0" * 8),
    "offsets-mismatch": one(offsets=(0, 6)),
    "offsets-negative": one(offsets=(-8, 0)),
    "offsets-reversed": one(shape=(0,), offsets=(8, 0)),
    "offsets-three": one(offsets=(0, 8, 16), data=16),
    "offsets-overlap": st_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}},
                               b"\0" * 24),
    "offsets-inside": st_file({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                               "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
                              b"\0" * 16),
    "metadata-not-object": st_file({"__metadata__": "pt"}),
    "metadata-not-strings": st_file({"__metadata__": {"format": 1}}),
}

BASE_ST = model_st(tensors())
QWEN_CONFIG = cfg(architectures=["Qwen2ForCausalLM"], model_type="qwen2")

# model directories: {file name: bytes}; model.safetensors is the valid base unless given
HF_CASES = {
    "no-config": {"config.json": None},
    "config-empty": {"config.json": b""},
    "config-bad-json": {"config.json": cfg()[:-20]},
    "config-not-object": {"config.json": b'["LlamaForCausalLM"]'},
    "config-no-architecture": {"config.json": cfg(architectures=None, model_type=None)},
    "config-unknown-architecture": {"config.json": cfg(architectures=["GPT2LMHeadModel"],
                                                       model_type="gpt2")},
    "config-architectures-not-list": {"config.json": cfg(architectures="LlamaForCausalLM")},
    "config-wrong-type": {"config.json": cfg(hidden_size="4")},
    "config-float-size": {"config.json": cfg(hidden_size=4.0)},
    "config-bool-layers": {"config.json": cfg(num_hidden_layers=True)},
    "config-missing-layers": {"config.json": cfg(num_hidden_layers=None)},
    "config-missing-vocab": {"config.json": cfg(vocab_size=None)},
    "config-zero-heads": {"config.json": cfg(num_attention_heads=0)},
    "config-kv-not-dividing": {"config.json": cfg(num_attention_heads=4, num_key_value_heads=3)},
    "config-dim-not-multiple": {"config.json": cfg(num_attention_heads=3, num_key_value_heads=1)},
    "config-odd-head-dim": {"config.json": cfg(head_dim=3)},
    "config-huge-vocab": {"config.json": cfg(vocab_size=1 << 40)},
    "config-huge-layers": {"config.json": cfg(num_hidden_layers=1 << 31)},
    "config-huge-context": {"config.json": cfg(max_position_embeddings=1 << 40)},
    "config-negative-eps": {"config.json": cfg(rms_norm_eps=-1e-5)},
    "config-zero-theta": {"config.json": cfg(rope_theta=0)},
    "config-theta-string": {"config.json": cfg(rope_theta="1e4")},
    "config-tie-not-bool": {"config.json": cfg(tie_word_embeddings=1)},
    # a RoPE type qbrief does not compute (llama3, linear, dynamic and yarn it does)
    "config-rope-scaling": {"config.json": cfg(rope_scaling={
        "rope_type": "longrope", "factor": 8.0, "short_factor": [1.0], "long_factor": [1.0],
        "original_max_position_embeddings": 8192})},
    "config-llama3-no-original": {"config.json": cfg(rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0})},
    "config-yarn-factor-below-one": {"config.json": cfg(rope_scaling={
        "rope_type": "yarn", "factor": 0.5, "original_max_position_embeddings": 8})},
    "config-layer-types-alternating": {"config.json": cfg(
        model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=4,
        layer_types=["sliding_attention", "full_attention"], num_hidden_layers=2)},
    "config-rope-scaling-not-object": {"config.json": cfg(rope_scaling="linear")},
    "config-gelu": {"config.json": cfg(hidden_act="gelu")},
    "config-attention-bias": {"config.json": cfg(attention_bias=True)},
    "config-duplicate-key": {"config.json": cfg()[:-2] + b',\n  "hidden_size": 8\n}'},
    "no-weights": {"model.safetensors": None},
    "weights-empty": {"model.safetensors": b""},
    "weights-header-past-end": {"model.safetensors": BASE_ST[:8] + BASE_ST[8:40]},
    "weights-truncated": {"model.safetensors": BASE_ST[:-4]},
    "weights-bad-json": {"model.safetensors": st_file(b'{"model.norm.weight": ')},
    "weights-missing-tensor": {"model.safetensors": model_st(tensors(drop=("model.norm.weight",)))},
    "weights-missing-layer-tensor": {"model.safetensors": model_st(
        tensors(drop=("model.layers.0.mlp.up_proj.weight",)))},
    "weights-wrong-shape": {"model.safetensors": model_st(
        tensors(reshape={"model.layers.0.self_attn.k_proj.weight": [DIM, KV * HD]}))},
    "weights-wrong-rank": {"model.safetensors": model_st(
        tensors(reshape={"model.norm.weight": [1, DIM]}))},
    "weights-extra-layer": {"model.safetensors": model_st(
        tensors() + [("model.layers.1.input_layernorm.weight", [DIM])])},
    "weights-unsupported-dtype": {"model.safetensors": model_st(
        tensors(), dtypes={"model.layers.0.mlp.gate_proj.weight": "I32"})},
    "weights-embed-vocab-mismatch": {"config.json": cfg(vocab_size=9)},
    "qwen2-missing-bias": {"config.json": QWEN_CONFIG},
    "index-escape": {"model.safetensors": None, "model.safetensors.index.json": json.dumps(
        {"weight_map": {n: "../model.safetensors" for n, _ in tensors()}}).encode()},
    "index-absolute": {"model.safetensors": None, "model.safetensors.index.json": json.dumps(
        {"weight_map": {n: "/etc/passwd" for n, _ in tensors()}}).encode()},
    "index-missing-shard": {"model.safetensors": None, "model.safetensors.index.json": json.dumps(
        {"weight_map": {n: "model-00001-of-00001.safetensors" for n, _ in tensors()}}).encode()},
    "index-not-in-shard": {
        "model.safetensors": None,
        "a.safetensors": model_st(tensors()[:5]),
        "b.safetensors": model_st(tensors()[6:]),
        "model.safetensors.index.json": json.dumps({"weight_map": dict(
            [(n, "a.safetensors") for n, _ in tensors()[:6]]
            + [(n, "b.safetensors") for n, _ in tensors()[6:]])}).encode()},
    "index-bad-json": {"model.safetensors": None, "model.safetensors.index.json": b'{"weight_map'},
    "index-no-weight-map": {"model.safetensors": None,
                            "model.safetensors.index.json": b'{"metadata": {}}'},
    "index-shard-not-string": {"model.safetensors": None, "model.safetensors.index.json":
                               b'{"weight_map": {"lm_head.weight": 1}}'},
}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    st_dir = os.path.join(HERE, "safetensors")
    hf_dir = os.path.join(HERE, "hf")
    for d in (st_dir, hf_dir, os.path.join(HERE, "valid", "hf")):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for name, data in ST_CASES.items():
        write(os.path.join(st_dir, name + ".safetensors"), data)
    for case, files in HF_CASES.items():
        d = os.path.join(hf_dir, case)
        os.makedirs(d)
        full = {"config.json": cfg(), "model.safetensors": BASE_ST}
        full.update(files)
        for name, data in full.items():
            if data is not None:
                write(os.path.join(d, name), data)
    # the controls: the same generator, unbroken, must load
    write(os.path.join(HERE, "valid", "hf", "config.json"), cfg())
    write(os.path.join(HERE, "valid", "hf", "model.safetensors"), BASE_ST)
    write(os.path.join(HERE, "valid", "tiny.safetensors"),
          model_st(tensors()[:3], dtype="F16"))
    print("wrote %d safetensors files and %d model directories" % (len(ST_CASES), len(HF_CASES)))


if __name__ == "__main__":
    main()
