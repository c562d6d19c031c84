#!/usr/bin/env python3
"""Writes an evaluation suite for tools/bench-eval.sh: N perplexity items of about WORDS
words and N choice items (a prompt of about PWORDS words and 4 choices of 2-3 words), made
of words drawn (seeded) from a text file.  Not a test.

    tools/make-eval-suite.py OUT.csv [N] [WORDS] [PWORDS] [SOURCE]
"""
import csv
import os
import random
import re
import sys


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    words = int(sys.argv[3]) if len(sys.argv) > 3 else 90
    pwords = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    src = sys.argv[5] if len(sys.argv) > 5 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "examples", "demo", "heldout.txt")
    with open(src, encoding="utf-8") as f:
        vocab = sorted(set(re.findall(r"[A-Za-z]{2,}", f.read())))
    rng = random.Random(23)

    def text(k):
        return " ".join(rng.choice(vocab) for _ in range(k)) + "."

    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "slice", "kind", "prompt", "target", "choices", "metric"])
        for i in range(n):
            w.writerow([f"ppl-{i:03d}", "ppl", "perplexity", text(words), "", "", ""])
        for i in range(n):
            opts = []
            while len(opts) < 4:
                o = " " + " ".join(rng.choice(vocab) for _ in range(rng.choice((2, 3))))
                if o not in opts:
                    opts.append(o)
            w.writerow([f"choice-{i:03d}", "choice", "choice", text(pwords),
                        str(rng.randrange(4)), "|".join(opts), "accuracy"])


if __name__ == "__main__":
    main()
