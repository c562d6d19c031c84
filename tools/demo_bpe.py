"""demo_bpe: a byte-level BPE tokenizer for the demo model, trained from scratch, and its
export as a Hugging Face tokenizer.json (model BPE, ByteLevel pre-tokenizer and decoder).

Must agree with the `tokenizers` library (and so with qbrief's collector/tokenizer/hf.c) on
  - the GPT-2 byte-to-unicode table: printable Latin-1 bytes map to themselves, the other 68
    bytes to U+0100.. in byte order;
  - the GPT-2 pre-tokenization regex of ByteLevel(use_regex=true, add_prefix_space=false):
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
    (written below with ASCII classes: the demo corpus is ASCII, checked in encode());
  - merge-rank BPE inside each pre-token: the lowest-ranked adjacent pair is merged first.
Digits are never merged (a piece holding a digit is never formed), so numbers stay one token
per digit, which is what the arithmetic and retrieval skills need.

Ids: 0 = <s> (BOS), 1 = </s> (EOS), 2..257 the 256 bytes in byte order, then one id per merge.
"""
import json
import re

BOS, EOS = "<s>", "</s>"
N_SPECIAL = 2

# ASCII form of the GPT-2 pattern; \s here is [ \t\n\r\f\v], as in the Unicode form for ASCII.
PRETOK = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character table."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) +
            list(range(ord("\xae"), ord("\xff") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


B2U = bytes_to_unicode()


def pretokenize(text):
    """Pre-tokens of text, each mapped to its byte-level unicode string."""
    return ["".join(B2U[b] for b in p.encode("utf-8")) for p in PRETOK.findall(text)]


def _has_digit(piece):
    return any(c.isdigit() for c in piece)


def train(texts, vocab_size):
    """Learns vocab_size - 258 merges from texts (a list of str). Deterministic: ties between
    equally frequent pairs go to the lexicographically smallest pair."""
    words = {}
    for t in texts:
        for p in pretokenize(t):
            words[p] = words.get(p, 0) + 1
    # each word as a list of pieces, with its count
    seqs = [(list(w), c) for w, c in sorted(words.items())]
    merges = []
    n_merges = vocab_size - N_SPECIAL - 256
    while len(merges) < n_merges:
        counts = {}
        for pieces, c in seqs:
            for a, b in zip(pieces, pieces[1:]):
                if _has_digit(a) or _has_digit(b):
                    continue
                counts[(a, b)] = counts.get((a, b), 0) + c
        if not counts:
            break
        best = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        a, b = best
        for pieces, _ in seqs:
            i = 0
            while i < len(pieces) - 1:
                if pieces[i] == a and pieces[i + 1] == b:
                    pieces[i:i + 2] = [a + b]
                i += 1
    return Tokenizer(merges)


class Tokenizer:
    def __init__(self, merges):
        self.merges = list(merges)
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.vocab = {BOS: 0, EOS: 1}
        for b in range(256):
            self.vocab[B2U[b]] = N_SPECIAL + b
        for a, b in self.merges:
            self.vocab[a + b] = len(self.vocab)
        self.inv = {i: s for s, i in self.vocab.items()}
        self.u2b = {u: b for b, u in B2U.items()}
        self.bos, self.eos = 0, 1
        self.cache = {}

    def __len__(self):
        return len(self.vocab)

    def _bpe(self, word):
        hit = self.cache.get(word)
        if hit is not None:
            return hit
        pieces = list(word)
        while len(pieces) > 1:
            best, best_rank = None, None
            for i in range(len(pieces) - 1):
                r = self.rank.get((pieces[i], pieces[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            a, b = pieces[best], pieces[best + 1]
            out, i = [], 0
            while i < len(pieces):  # merge every occurrence, left to right
                if i < len(pieces) - 1 and pieces[i] == a and pieces[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(pieces[i])
                    i += 1
            pieces = out
        ids = [self.vocab[p] for p in pieces]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        """Token ids of text, without BOS/EOS."""
        if not text.isascii() or "\r" in text or "\t" in text:
            raise ValueError("demo text must be ASCII without CR/TAB: %r" % text[:40])
        ids = []
        for p in pretokenize(text):
            ids.extend(self._bpe(p))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            if i < N_SPECIAL:
                continue
            out.extend(self.u2b[c] for c in self.inv[i])
        return out.decode("utf-8", errors="replace")

    def to_hf_json(self):
        """tokenizer.json text in the `tokenizers` serialization."""
        special = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                    "normalized": False, "special": True} for s, i in ((BOS, 0), (EOS, 1))]
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                      "use_regex": True}
        doc = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": special,
            "normalizer": None,
            "pre_tokenizer": byte_level,
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": BOS, "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {BOS: {"id": BOS, "ids": [0], "tokens": [BOS]}},
            },
            "decoder": byte_level,
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "ignore_merges": False,
                "vocab": dict(sorted(self.vocab.items(), key=lambda kv: kv[1])),
                "merges": ["%s %s" % m for m in self.merges],
            },
        }
        return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
