#!/usr/bin/env python3
"""Checks that qbrief's Hugging Face tokenizer (collector/tokenizer/hf.c) gives the same ids as the
demo's Python BPE (tools/demo_bpe.py) on every prompt and target of a suite.

    python3 tools/demo_tokcheck.py [--qbrief bin/qbrief] [--demo examples/demo]

The Python side is rebuilt from the exported tokenizer.json's merges, so the export is checked
too. Prints the first mismatches and exits 1 when there is any. Standard library only."""
import argparse
import csv
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_bpe  # noqa: E402


def qbrief_ids(qbrief, model, text):
    out = subprocess.run([qbrief, "tokenize", model, text], check=True, capture_output=True).stdout
    ids = []
    for line in out.decode("utf-8", "replace").split("\n"):
        f = line.split()
        if f and f[0].isdigit() and not line.startswith(f[0] + " tokens"):
            ids.append(int(f[0]))
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qbrief", default="bin/qbrief")
    ap.add_argument("--demo", default="examples/demo")
    a = ap.parse_args()
    model = os.path.join(a.demo, "qbrief-demo")
    with open(os.path.join(model, "tokenizer.json")) as f:
        merges = [tuple(m.split(" ")) for m in json.load(f)["model"]["merges"]]
    tok = demo_bpe.Tokenizer(merges)
    texts = []
    with open(os.path.join(a.demo, "skills.csv"), newline="") as f:
        for r in csv.DictReader(f):
            texts.append(r["prompt"])
            if r["target"] and not r["target"].isdigit():
                texts.append(r["target"])
    bad = 0
    for t in texts:
        want = [tok.bos] + tok.encode(t)
        got = qbrief_ids(a.qbrief, model, t)
        if got != want:
            bad += 1
            if bad <= 5:
                print("mismatch on %r\n  python %s\n  qbrief %s" % (t[:80], want[:40], got[:40]))
    print("%d texts, %d mismatches" % (len(texts), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
