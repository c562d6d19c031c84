#!/usr/bin/env python3
"""Writes the malformed tokenizers in tests/malformed/tokenizer/ (tiny files) and the two
controls tests/malformed/valid/tokenizer-control.json and tokenizer-control.bin (6
tokens; not named tokenizer.bin, which the llama2.c loader would pick up beside llama2c.bin).

Each *.json must make qb_tok_load_hf fail, and each *.bin must make qb_tok_load_llama2c
fail when loaded with a vocabulary of 4 tokens, with a message naming the file, never a
crash. The JSON cases are the valid control with one thing broken, so that they also seed
the fuzzer (tests/fuzz/fuzz_tokenizer_json) with every component of the pipeline."""
import copy
import json
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
HERE = os.path.join(ROOT, "tokenizer")
VALID = os.path.join(ROOT, "valid")


def added(i, content, special=True, **kw):
    d = {"id": i, "content": content, "single_word": False, "lstrip": False,
         "rstrip": False, "normalized": not special, "special": special}
    d.update(kw)
    return d


# A Llama-2-like BPE with byte fallback, every normalizer/pre-tokenizer/decoder kind the
# loader knows somewhere in it, and a TemplateProcessing BOS.
BASE = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                     added(12, "<tool>", special=False, lstrip=True, rstrip=True)],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "NFC"},
        {"type": "Strip", "strip_left": False, "strip_right": True},
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        {"type": "Replace", "pattern": {"Regex": "\u2581{3,}"}, "content": "\u2581\u2581"},
    ]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\p{N}+"}, "behavior": "Isolated", "invert": False},
        {"type": "Digits", "individual_digits": True},
        {"type": "Punctuation", "behavior": "Contiguous"},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
    ]},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0},
    ]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
              "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "\u2581": 4, "a": 5,
                        "b": 6, "ab": 7, "\u2581ab": 8, "1": 9, "2": 10, "!": 11},
              "merges": ["a b", ["\u2581", "ab"]]},
}


def case(edit):
    d = copy.deepcopy(BASE)
    edit(d)
    return json.dumps(d, ensure_ascii=False).encode()


def setp(path, value):
    def edit(d):
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


def deep_sequence(d):
    n = {"type": "NFC"}
    for _ in range(20):
        n = {"type": "Sequence", "normalizers": [n]}
    d["normalizer"] = n


JSON_CASES = {
    "empty.json": b"",
    "not-json.json": json.dumps(BASE).encode()[:150],
    "top-level-array.json": b"[" + json.dumps(BASE).encode() + b"]",
    "model-missing.json": case(lambda d: d.pop("model")),
    "model-unigram.json": case(setp(["model", "type"], "Unigram")),
    "model-type-number.json": case(setp(["model", "type"], 3)),
    "vocab-not-object.json": case(setp(["model", "vocab"], ["<unk>", "<s>"])),
    "vocab-empty.json": case(setp(["model", "vocab"], {})),
    "vocab-id-string.json": case(setp(["model", "vocab", "a"], "5")),
    "vocab-id-negative.json": case(setp(["model", "vocab", "a"], -5)),
    "vocab-id-past-size.json": case(setp(["model", "vocab", "a"], 16)),  # 12 pieces + 4 added
    "vocab-id-huge.json": case(setp(["model", "vocab", "a"], 1 << 40)),
    "vocab-duplicate-id.json": case(setp(["model", "vocab", "a"], 6)),
    "vocab-duplicate-key.json": json.dumps(BASE).replace('"b": 6', '"a": 6').encode(),
    "merges-missing.json": case(lambda d: d["model"].pop("merges")),
    "merges-not-array.json": case(setp(["model", "merges"], "a b")),
    "merge-unknown-piece.json": case(setp(["model", "merges"], ["a b", "a q"])),
    "merge-makes-unknown.json": case(setp(["model", "merges"], ["a b", "b a"])),
    "merge-three-parts.json": case(setp(["model", "merges"], ["a b c"])),
    "merge-one-part.json": case(setp(["model", "merges"], [["a"]])),
    "merge-number.json": case(setp(["model", "merges"], [7])),
    "unk-token-unknown.json": case(setp(["model", "unk_token"], "<oov>")),
    "byte-fallback-not-bool.json": case(setp(["model", "byte_fallback"], "yes")),
    "subword-prefix.json": case(setp(["model", "continuing_subword_prefix"], "##")),
    "added-not-array.json": case(setp(["added_tokens"], {"id": 0})),
    "added-not-object.json": case(setp(["added_tokens"], ["<s>"])),
    "added-id-past-vocab.json": case(setp(["added_tokens", 3, "id"], 100)),
    "added-id-missing.json": case(lambda d: d["added_tokens"][3].pop("id")),
    "added-duplicate-id.json": case(setp(["added_tokens", 3, "id"], 2)),
    "added-content-empty.json": case(setp(["added_tokens", 3, "content"], "")),
    "added-special-not-bool.json": case(setp(["added_tokens", 3, "special"], 1)),
    "normalizer-unsupported.json": case(setp(["normalizer", "normalizers", 0], {"type": "Precompiled"})),
    "normalizer-not-object.json": case(setp(["normalizer"], "NFC")),
    "normalizers-not-array.json": case(setp(["normalizer", "normalizers"], {"type": "NFC"})),
    "normalizer-no-type.json": case(setp(["normalizer", "normalizers", 0], {"kind": "NFC"})),
    "normalizer-too-deep.json": case(deep_sequence),
    "replace-bad-regex.json": case(setp(["normalizer", "normalizers", 4, "pattern"], {"Regex": "(\u2581"})),
    "replace-pattern-neither.json": case(setp(["normalizer", "normalizers", 4, "pattern"], {"Glob": "*"})),
    "replace-content-missing.json": case(lambda d: d["normalizer"]["normalizers"][4].pop("content")),
    "split-behavior-unknown.json": case(setp(["pre_tokenizer", "pretokenizers", 0, "behavior"], "Sideways")),
    "split-invert-not-bool.json": case(setp(["pre_tokenizer", "pretokenizers", 0, "invert"], 0)),
    "pre-tokenizer-unsupported.json": case(setp(["pre_tokenizer", "pretokenizers", 1], {"type": "UnicodeScripts"})),
    "metaspace-replacement-long.json": case(setp(["pre_tokenizer", "pretokenizers", 3, "replacement"], "__")),
    "metaspace-prepend-unknown.json": case(setp(["pre_tokenizer", "pretokenizers", 3, "prepend_scheme"], "sometimes")),
    "decoder-unsupported.json": case(setp(["decoder", "decoders", 1], {"type": "CTC"})),
    "strip-start-negative.json": case(setp(["decoder", "decoders", 3, "start"], -1)),
    "strip-stop-string.json": case(setp(["decoder", "decoders", 3, "stop"], "1")),
    "template-unknown-special.json": case(setp(["post_processor", "single", 0, "SpecialToken", "id"], "<bos>")),
    "template-id-out-of-range.json": case(setp(["post_processor", "special_tokens", "<s>", "ids"], [4096])),
    "template-single-not-array.json": case(setp(["post_processor", "single"], "<s> $A")),
}


def tbin(tokens, max_len=8):
    out = struct.pack("<i", max_len)
    for score, length, raw in tokens:
        out += struct.pack("<fi", score, length) + raw
    return out


OK4 = [(0.0, 5, b"<unk>"), (0.0, 5, b"\n<s>\n"), (0.0, 6, b"\n</s>\n"), (-1.0, 2, b" a")]
# the control: 6 tokens, so that " a" can be made from " " and "a"
OK6 = OK4[:3] + [(-2.0, 1, b" "), (-3.0, 1, b"a"), (-1.0, 2, b" a")]

BIN_CASES = {
    "empty.bin": b"",
    "short.bin": b"\x08\0",
    "negative-max-len.bin": tbin(OK4, max_len=-1),
    "truncated-header.bin": tbin(OK4)[:-5],
    "truncated-bytes.bin": tbin(OK4)[:-1],
    "three-of-four.bin": tbin(OK4[:3]),
    "negative-len.bin": tbin(OK4[:3] + [(0.0, -2, b"")]),
    "len-past-end.bin": tbin(OK4[:3] + [(0.0, 100, b" a")]),
    "len-int-max.bin": tbin(OK4[:3] + [(0.0, 0x7FFFFFFF, b" a")]),
    "nan-score.bin": tbin(OK4[:3] + [(float("nan"), 2, b" a")]),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, data in list(JSON_CASES.items()) + list(BIN_CASES.items()):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(VALID, "tokenizer-control.json"), "wb") as f:
        f.write(json.dumps(BASE, ensure_ascii=False, indent=1).encode())
    with open(os.path.join(VALID, "tokenizer-control.bin"), "wb") as f:
        f.write(tbin(OK6))


if __name__ == "__main__":
    main()
