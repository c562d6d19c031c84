"""demo_model: a small Llama decoder in PyTorch, written to match the Hugging Face
LlamaForCausalLM forward (and so qbrief's collector/engine/engine.c), and its export as a Hugging Face
directory: config.json, model.safetensors (F32, written by hand), tokenizer.json.

  RMSNorm   x * rsqrt(mean(x^2) + eps) * w
  RoPE      rotate-half convention: q*cos + rotate_half(q)*sin, rotate_half(x) = [-x2, x1],
            inv_freq[i] = theta^(-2i/head_dim), cos/sin repeated over both halves
  attention grouped-query: query head h reads key/value head h // (n_heads / n_kv_heads)
  MLP       down(silu(gate(x)) * up(x))
Training adds one thing the HF forward does not have: documents packed into one row attend
only within themselves and count positions from 0 (a block-diagonal causal mask), so training
sees every document exactly as inference does, alone from position 0.
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
        self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], hd
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.q_proj = nn.Linear(d, self.nh * hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nh * hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])
        f = c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape  # (B,T,d)
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.hd).transpose(1, 2)  # (B,nh,T,hd)
        k = self.k_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)  # (B,nkv,T,hd)
        v = self.v_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin  # cos, sin: (B,1,T,hd)
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)  # (B,nh,T,hd)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)  # (B,nh,T,T)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, self.nh * self.hd)
        x = x + self.o_proj(o)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, v = c["hidden_size"], c["vocab_size"]
        self.embed_tokens = nn.Embedding(v, d)
        self.layers = nn.ModuleList([Block(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(d, c["rms_norm_eps"])
        self.lm_head = nn.Linear(d, v, bias=False)
        hd = d // c["num_attention_heads"]
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        self.register_buffer("inv_freq", inv.float(), persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02
                if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                    std /= math.sqrt(2 * c["num_hidden_layers"])
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids, pos=None, doc=None):
        """ids (B,T) -> logits (B,T,V). pos (B,T): positions (default 0..T-1); doc (B,T): the
        document each token belongs to (default one document per row)."""
        B, T = ids.shape
        if pos is None:
            pos = torch.arange(T).unsqueeze(0).expand(B, T)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        mask = causal.unsqueeze(0)
        if doc is not None:
            mask = mask & (doc.unsqueeze(2) == doc.unsqueeze(1))
        mask = mask.unsqueeze(1)  # (B,1,T,T)
        fr = pos.unsqueeze(-1).float() * self.inv_freq  # (B,T,hd/2)
        emb = torch.cat((fr, fr), dim=-1)
        cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)  # (B,1,T,hd)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def hf_tensors(model):
    """(HF name, f32 tensor) in the order transformers writes them."""
    sd = model.state_dict()
    out = [("model.embed_tokens.weight", sd["embed_tokens.weight"])]
    for i in range(model.c["num_hidden_layers"]):
        p = "layers.%d." % i
        for hf, ours in (("input_layernorm.weight", "input_layernorm.weight"),
                         ("self_attn.q_proj.weight", "q_proj.weight"),
                         ("self_attn.k_proj.weight", "k_proj.weight"),
                         ("self_attn.v_proj.weight", "v_proj.weight"),
                         ("self_attn.o_proj.weight", "o_proj.weight"),
                         ("post_attention_layernorm.weight", "post_attention_layernorm.weight"),
                         ("mlp.gate_proj.weight", "gate_proj.weight"),
                         ("mlp.up_proj.weight", "up_proj.weight"),
                         ("mlp.down_proj.weight", "down_proj.weight")):
            out.append(("model." + p + hf, sd[p + ours]))
    out.append(("model.norm.weight", sd["norm.weight"]))
    out.append(("lm_head.weight", sd["lm_head.weight"]))
    return out


def write_safetensors(path, tensors):
    """safetensors: u64 little-endian header length, JSON header (padded with spaces to a
    multiple of 8), then the raw little-endian data at the header's offsets."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors:
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def hf_config(c):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "num_hidden_layers": c["num_hidden_layers"],
        "head_dim": c["hidden_size"] // c["num_attention_heads"],
        "hidden_act": "silu",
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "vocab_size": c["vocab_size"],
        "max_position_embeddings": c["max_position_embeddings"],
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "torch_dtype": "float32",
    }
