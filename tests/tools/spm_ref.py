#!/usr/bin/env python3
"""spm_ref: an independent, deliberately literal reference for llama2.c run.c `encode`
(bos=1, eos=0), used to derive the expected ids in tests/collector/tokenizer/test_tokenizer.c.
Python standard library only; the C tests never run it.

    tests/tools/spm_ref.py ../shared/models/llama2-tokenizer/tokenizer.bin "Hello world"
    tests/tools/spm_ref.py --trace tok512.bin "Once upon a time"   # shows every merge

It follows run.c line by line: the dummy-prefix " " token, UTF-8 characters gathered as
a byte plus at most three continuation bytes, byte fallback to id byte+3, then the O(n^2)
loop that merges the adjacent pair whose concatenation is a vocabulary piece with the
highest score (strictly greater, so the leftmost pair wins ties; best_score starts at
-1e10). Pieces are compared as llama2.c stores them (' ' where SentencePiece has U+2581).
"""
import struct
import sys


def load(path):
    data = open(path, "rb").read()
    off = 4  # int32 max_token_length
    vocab, scores = [], []
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        vocab.append(data[off:off + n])
        scores.append(score)
        off += n
    return vocab, scores


def encode(vocab, scores, text, bos=True, trace=None):
    lookup = {}
    for i, piece in enumerate(vocab):
        lookup.setdefault(piece, i)
    tokens = [1] if bos else []
    if text:
        tokens.append(lookup.get(b" ", -1))
    buf = b""
    for i, c in enumerate(text):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = text[i + 1] if i + 1 < len(text) else 0
        if nxt & 0xC0 == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens.extend(b + 3 for b in buf)
        buf = b""
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            merged = vocab[tokens[i]] + vocab[tokens[i + 1]]
            j = lookup.get(merged, -1)
            if j != -1 and scores[j] > best_score:
                best_score, best_id, best_idx = scores[j], j, i
        if best_idx == -1:
            break
        if trace:
            trace("merge %r + %r -> %r id %d score %g" % (
                vocab[tokens[best_idx]], vocab[tokens[best_idx + 1]], vocab[best_id], best_id,
                best_score))
        tokens[best_idx:best_idx + 2] = [best_id]
    return tokens


def main(argv):
    trace = "--trace" in argv
    argv = [a for a in argv if a != "--trace"]
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    vocab, scores = load(argv[1])
    for text in argv[2:]:
        ids = encode(vocab, scores, text.encode("utf-8"),
                     trace=(lambda m: print("  " + m)) if trace else None)
        print(ids)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
