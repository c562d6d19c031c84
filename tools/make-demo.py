#!/usr/bin/env python3
"""Makes qbrief's bundled demo: a small Llama-architecture model trained here, on one CPU
thread, on a synthetic six-skill corpus, with its evaluation suite, calibration text and the
golden logits the C engine is tested against (tests/collector/run/test_demo.c).

    /usr/bin/python3 tools/make-demo.py [--out examples/demo] [--steps N] [--seed N]

Needs PyTorch (Debian: apt-get install python3-torch); a development-time tool only, not a
dependency of building or testing qbrief. Writes, under --out:
  model/config.json, model/model.safetensors, model/tokenizer.json   the Hugging Face directory
  skills.csv   held-out evaluation items, --per-slice per skill (docs/suite-format.md)
  calib.txt    calibration text drawn apart from the suite (no suite prompt occurs in it)
  heldout.txt  held-out text drawn apart from both, for scoring quantization (docs/quality.md)
  golden.json  prompts, their token ids and the f32 logits of their last 2 positions
  train-log.txt  the loss curve and the final per-skill losses
Everything is a function of --seed and the flags: same flags, same bytes (one thread). The
defaults make the committed model: retrieval over single-token words, 2,000 steps of repeated
random runs first (the copying circuit retrieval needs), then 7,200 steps of the skills with
4 such rows in each (64 min on one thread). The first recipe, whose model never learned
retrieval: --no-retrieval-words --vocab 512 --induction-steps 0 --induction-rows 0 --steps 3600.
The skills are described in tools/demo_tasks.py, the tokenizer in tools/demo_bpe.py and the
model in tools/demo_model.py.
"""
import argparse
import json
import math
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in tools/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import demo_bpe  # noqa: E402
import demo_model  # noqa: E402
import demo_tasks as T  # noqa: E402

# Share of training tokens per skill (documents are drawn with probability share / mean length).
# Arithmetic is learned last and least (0.62 nats/answer token after 7,200 steps with 18%), so it
# gets the largest share after retrieval; chat and json are learned early and need less.
MIX = {"facts": 0.11, "arithmetic": 0.24, "retrieval": 0.30, "code": 0.18, "json": 0.09,
       "chat": 0.08}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="examples/demo", help="output directory")
    ap.add_argument("--steps", type=int, default=10000, help="optimizer steps")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=5, help="rows per step")
    ap.add_argument("--seq", type=int, default=512, help="tokens per row (documents packed)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=384)
    ap.add_argument("--facts", type=int, default=240, help="rows of the facts table")
    ap.add_argument("--per-slice", type=int, default=200, help="suite items per slice")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--texts-only", action="store_true",
                    help="write only skills.csv, calib.txt and heldout.txt (no training: they "
                         "do not depend on the model)")
    ap.add_argument("--retrieval-words", action=argparse.BooleanOptionalAction, default=True,
                    help="retrieval over single-token word keys and values (demo_tasks.World) "
                         "instead of made-up keys and 3-digit values")
    ap.add_argument("--retrieval-keys", type=int, default=144,
                    help="with --retrieval-words: the key pool (each must become one token)")
    ap.add_argument("--retrieval-pairs", type=int, nargs=2, default=(90, 110), metavar=("LO", "HI"),
                    help="with --retrieval-words: pairs in a suite item's context (at most "
                         "--retrieval-keys; 3 tokens a pair)")
    ap.add_argument("--retrieval-train-max", type=int, default=120,
                    help="with --retrieval-words: most pairs in a training context (--seq must "
                         "hold 3 tokens a pair)")
    ap.add_argument("--induction-steps", type=int, default=2000,
                    help="first steps on repeated random runs only (induction_batch), lr 1e-3")
    ap.add_argument("--induction-rows", type=int, default=4,
                    help="rows of repeated runs added to every later step, keeping the circuit")
    ap.add_argument("--induction-weight", type=float, default=0.2,
                    help="weight of those rows' loss against the skills' loss (at 1.0 the "
                         "other skills lost most of what they learn without it)")
    a = ap.parse_args()
    if a.retrieval_words and max(a.retrieval_pairs[1], a.retrieval_train_max) > a.retrieval_keys:
        ap.error("--retrieval-pairs and --retrieval-train-max cannot exceed --retrieval-keys "
                 "(a context names each key once)")
    if a.facts < a.per_slice:
        ap.error("--facts must be at least --per-slice (the facts slice asks every fact once)")
    return a


def encode_doc(tok, prompt, answer):
    """ids and a 0/1 mask of the answer tokens (answer + EOS): BOS prompt answer EOS."""
    p, a = tok.encode(prompt), tok.encode(answer)
    ids = [tok.bos] + p + a + [tok.eos]
    return ids, [0] * (1 + len(p)) + [1] * (len(a) + 1)


class Stream:
    """Training documents, packed into rows with per-document positions and ids."""

    def __init__(self, seed, world, tok, held_out, probs, seq):
        self.rng, self.world, self.tok = random.Random(seed), world, tok
        self.held_out, self.seq = held_out, seq
        self.skills = list(probs)
        self.weights = [probs[s] for s in self.skills]
        self.pending = None
        self.skipped = 0

    def doc(self):
        while True:
            skill = self.rng.choices(self.skills, self.weights)[0]
            prompt, answer = T.train_example(self.rng, self.world, skill)[:2]
            if skill != "facts" and prompt in self.held_out:
                self.skipped += 1
                continue
            ids, _ = encode_doc(self.tok, prompt, answer)
            if len(ids) <= self.seq:
                return ids

    def row(self):
        ids, pos, doc = [], [], []
        d = 0
        while True:
            nxt = self.pending if self.pending is not None else self.doc()
            if len(ids) + len(nxt) > self.seq:
                self.pending = nxt
                break
            self.pending = None
            ids += nxt
            pos += list(range(len(nxt)))
            doc += [d] * len(nxt)
            d += 1
        tgt = [ids[i + 1] if i + 1 < len(ids) and doc[i + 1] == doc[i] else -100
               for i in range(len(ids))]
        pad = self.seq - len(ids)
        return (ids + [self.tok.eos] * pad, pos + list(range(pad)), doc + [d] * pad,
                tgt + [-100] * pad)

    def batch(self, b):
        rows = [self.row() for _ in range(b)]
        return [torch.tensor([r[k] for r in rows]) for k in range(4)]


def induction_batch(rng, n_vocab, rows=16, width=100):
    """Rows of random tokens (ids 2..n_vocab-1) in which a random run of 8..40 tokens, after a
    random prefix, is repeated; only the repeat is a target. The cheapest way to teach the
    copying circuit (an induction head) that retrieval needs: in the mixed corpus the few
    copyable answer tokens are too weak a signal for it to form within the training budget."""
    ids, tgt = [], []
    for _ in range(rows):
        n = rng.randint(8, 40)
        run = [rng.randrange(2, n_vocab) for _ in range(n)]
        pre = [rng.randrange(2, n_vocab) for _ in range(rng.randint(0, 20))]
        row = (pre + run + run + [1] * width)[:width]
        t = ([-100] * (len(pre) + n) + run[1:] + [-100] * width)[:width]
        ids.append(row)
        tgt.append(t[:width - 1] + [-100])
    return torch.tensor(ids), torch.tensor(tgt)


def answer_losses(model, tok, docs):
    """Mean cross-entropy (nats/token) over the answer tokens (answer + EOS) of docs."""
    tot, n = 0.0, 0
    with torch.no_grad():
        for prompt, answer in docs:
            ids, m = encode_doc(tok, prompt, answer)
            x = torch.tensor([ids])
            lg = model(x)[0, :-1]
            ce = F.cross_entropy(lg, x[0, 1:], reduction="none")
            mm = torch.tensor(m[1:], dtype=torch.float32)
            tot += float((ce * mm).sum())
            n += int(mm.sum())
    return tot / max(n, 1)


def documents(rng, world, size, exclude, dedupe):
    """Fresh documents of every skill, prompt + answer, about size characters in all, none
    of whose prompts is in exclude; with dedupe, each prompt once (exclude grows by them).
    Returns the text and the prompts."""
    parts, prompts, n = [], [], 0
    while n < size:
        p, ans = T.train_example(rng, world, rng.choice(T.SKILLS))[:2]
        if p in exclude:
            continue
        if dedupe:
            exclude.add(p)
        parts.append(p + ans)
        prompts.append(p)
        n += len(parts[-1]) + 2
    return "\n\n".join(parts) + "\n", prompts


def write_texts(out, seed, world, rows):
    """calib.txt (for calibration) and heldout.txt (for scoring quantization on text like the
    tasks, docs/quality.md): no suite prompt occurs in either, nor a calibration prompt in
    heldout.txt."""
    seen = {r["prompt"] for r in rows}
    calib, calib_prompts = documents(random.Random(seed + 5), world, 120_000, set(seen), False)
    with open(os.path.join(out, "calib.txt"), "w") as f:
        f.write(calib)
    seen |= set(calib_prompts)
    held, _ = documents(random.Random(seed + 8), world, 40_000, seen, True)
    with open(os.path.join(out, "heldout.txt"), "w") as f:
        f.write(held)


def csv_field(s):
    s = "" if s is None else str(s)
    if any(c in s for c in ',"\n') or s != s.strip(" \t"):
        return '"' + s.replace('"', '""') + '"'
    return s


def write_suite(path, rows):
    cols = ["id", "slice", "kind", "prompt", "target", "choices", "metric", "max_tokens", "stop"]
    counts = {}
    with open(path, "w", newline="") as f:
        f.write(",".join(cols) + "\n")
        for r in rows:
            counts[r["slice"]] = counts.get(r["slice"], 0) + 1
            r = dict(r)
            r["id"] = "%s-%03d" % (r["slice"], counts[r["slice"]])
            if "choices" in r:
                r["choices"] = "|".join(c.replace("\\", "\\\\").replace("|", "\\|")
                                        for c in r["choices"])
            f.write(",".join(csv_field(r.get(c)) for c in cols) + "\n")


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t_start = time.time()
    os.makedirs(os.path.join(a.out, "qbrief-demo"), exist_ok=True)
    log = open(os.devnull if a.texts_only else os.path.join(a.out, "train-log.txt"), "w")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")

    say("command: tools/make-demo.py " + " ".join(sys.argv[1:]))
    world = T.World(a.seed, a.facts, a.retrieval_words, a.retrieval_keys,
                    tuple(a.retrieval_pairs), a.retrieval_train_max)

    # the suite first, so that training can avoid its prompts
    rows = T.eval_items(random.Random(a.seed + 1), world, a.per_slice)
    held_out = {r["prompt"] for r in rows if r["slice"] != "facts"}
    if a.texts_only:
        write_suite(os.path.join(a.out, "skills.csv"), rows)
        write_texts(a.out, a.seed, world, rows)
        return

    # tokenizer, from a sample of every skill
    rng = random.Random(a.seed + 2)
    sample, lens = [], {s: [] for s in T.SKILLS}
    for s in T.SKILLS:
        for _ in range(600):
            p, ans = T.train_example(rng, world, s)[:2]
            sample.append(p + ans)
    for c, x in world.facts:  # every fact once, so names tokenize well
        sample.append(T.FACT_TEMPLATES[0][0].format(c=c) + T.FACT_TEMPLATES[0][1].format(x=x))
    words = world.keys + world.values if world.keys else []
    if words:  # the retrieval pools, often enough that every key and value becomes one token
        sample += [" ".join(" " + w for w in words)] * 200
    tok = demo_bpe.train(sample, a.vocab)
    say("tokenizer: %d tokens, %d merges" % (len(tok), len(tok.merges)))
    split = [w for w in words if len(tok.encode(" " + w)) != 1]
    if split:
        sys.exit("retrieval words that are not one token (raise --vocab): " + " ".join(split))
    for s in T.SKILLS:
        for _ in range(200):
            p, ans = T.train_example(rng, world, s)[:2]
            lens[s].append(len(encode_doc(tok, p, ans)[0]))
    mean_len = {s: sum(v) / len(v) for s, v in lens.items()}
    probs = {s: MIX[s] / mean_len[s] for s in T.SKILLS}
    say("mean document tokens: " + ", ".join("%s %.1f" % kv for kv in mean_len.items()))

    cfg = dict(hidden_size=a.dim, intermediate_size=a.ffn, num_attention_heads=a.heads,
               num_key_value_heads=a.kv_heads, num_hidden_layers=a.layers, rms_norm_eps=1e-5,
               rope_theta=10000.0, vocab_size=len(tok), max_position_embeddings=512)
    model = demo_model.Llama(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    say("model: %s, %d parameters (%.2f MB f32)" % (json.dumps(cfg), n_params, n_params * 4e-6))

    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    stream = Stream(a.seed + 3, world, tok, held_out, probs, a.seq)
    prng = random.Random(a.seed + 6)
    lo, hi = world.suite_pairs if world.keys else (20, 26)  # the suite's context lengths
    probe = [T.retrieval_example(prng, world, lo, hi, 1) for _ in range(40)]
    probe_short = [T.retrieval_example(prng, world, 2, 12, 1) for _ in range(40)]
    # phase 1: the copying circuit, on repeated random runs (loss on the repeats only)
    irng = random.Random(a.seed + 7)
    t0, c0 = time.time(), time.process_time()
    for step in range(a.induction_steps):
        for g in opt.param_groups:
            g["lr"] = 1e-3 * min(1.0, (step + 1) / 50)
        ids, tgt = induction_batch(irng, len(tok))
        loss = F.cross_entropy(model(ids).reshape(-1, len(tok)), tgt.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 99:
            say("induction step %5d  loss on the repeats %.4f  %.0fs elapsed" %
                (step + 1, float(loss), time.time() - t0))
    # phase 2: the six skills, with a few repeated runs in every step
    warm = max(1, a.steps // 30)
    ema, t1 = None, time.time()
    for step in range(a.steps):
        lr = a.lr * (step + 1) / warm if step < warm else \
            a.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / max(1, a.steps - warm))))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, pos, doc, tgt = stream.batch(a.batch)
        logits = model(ids, pos, doc)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), tgt.view(-1), ignore_index=-100)
        total = loss
        if a.induction_rows > 0:
            iids, itgt = induction_batch(irng, len(tok), a.induction_rows)
            total = total + a.induction_weight * F.cross_entropy(model(iids).reshape(-1, len(tok)), itgt.reshape(-1),
                                            ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = float(loss) if ema is None else 0.98 * ema + 0.02 * float(loss)
        if step % 100 == 0 or step == a.steps - 1:
            el = time.time() - t1
            say("step %5d  loss %.4f (ema %.4f)  lr %.2e  %.0fs elapsed, %.0fs left" %
                (step, float(loss), ema, lr, time.time() - t0,
                 el / (step + 1) * (a.steps - step - 1)))
        if step % 300 == 299:  # the slowest skill to appear, on fixed fresh documents
            model.eval()
            say("          retrieval answer loss: 2..12 pairs %.4f, %d..%d pairs %.4f" %
                (answer_losses(model, tok, probe_short), lo, hi, answer_losses(model, tok, probe)))
            model.train()
    train_s, cpu_s = time.time() - t0, time.process_time() - c0
    say("training: %d induction steps, then %d steps x %d x %d tokens, in %.1f s wall (%.1f min), "
        "%.1f s CPU (%.1f min), %d suite prompts skipped" %
        (a.induction_steps, a.steps, a.batch, a.seq, train_s, train_s / 60, cpu_s, cpu_s / 60,
         stream.skipped))

    model.eval()
    vrng = random.Random(a.seed + 4)
    say("final answer-token loss per skill (nats/token, 100 fresh documents each):")
    for s in T.SKILLS:
        docs = []
        while len(docs) < 100:
            p, ans = T.train_example(vrng, world, s)[:2]
            if s == "facts" or p not in held_out:
                docs.append((p, ans))
        say("  %-10s %.4f" % (s, answer_losses(model, tok, docs)))

    # export
    md = os.path.join(a.out, "qbrief-demo")
    with open(os.path.join(md, "config.json"), "w") as f:
        json.dump(demo_model.hf_config(cfg), f, indent=2)
        f.write("\n")
    demo_model.write_safetensors(os.path.join(md, "model.safetensors"),
                                 demo_model.hf_tensors(model))
    with open(os.path.join(md, "tokenizer.json"), "w") as f:
        f.write(tok.to_hf_json())
    write_suite(os.path.join(a.out, "skills.csv"), rows)

    write_texts(a.out, a.seed, world, rows)

    # golden logits: the suite's first item of four slices (long retrieval context included)
    golden = {"model": "qbrief-demo", "positions": 2, "prompts": []}
    with torch.no_grad():
        for s in ("facts", "arithmetic", "retrieval", "code"):
            r = next(r for r in rows if r["slice"] == s)
            ids = [tok.bos] + tok.encode(r["prompt"])
            lg = model(torch.tensor([ids]))[0, -2:]
            golden["prompts"].append({"text": r["prompt"], "ids": ids,
                                      "logits": [[float(v) for v in row] for row in lg]})
    with open(os.path.join(a.out, "golden.json"), "w") as f:
        json.dump(golden, f)
        f.write("\n")
    say("wrote %s in %.1f s total" % (a.out, time.time() - t_start))
    log.close()


if __name__ == "__main__":
    main()
