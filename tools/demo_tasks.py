"""demo_tasks: the synthetic multi-skill corpus of the demo model, and its evaluation items.

Six skills, one slice each. Every example is a (prompt, answer) pair; a training document is
BOS + prompt + answer + EOS, and an evaluation item gives the model the prompt and scores
what it generates (or, for choice items, which answer it prefers). The prompt/answer split is
the same in training and evaluation, so a model answers the suite in the form it learned.

  facts       "The capital of Vorelia is" -> " Tumaros."  (a fixed table, memorised)
  arithmetic  "347+158=" -> "505", "702-96=" -> "606"       (1..3-digit operands)
  retrieval   "Data: tak=381 mol=925 ...\\nQuery: mol=" -> "925"  (training: 2..28 pairs and
              1..6 queries, the earlier ones answered; suite: 20..26 pairs, one query, ~155 tokens)
              With World(..., retrieval_words=True): "Data: tak owl, mol fox, ...\\nQuery: mol"
              -> " fox", keys and values from fixed pools of single-token words (training:
              2..64 pairs; suite: 48..60 pairs, ~170 tokens; both configurable, with more
              keys, for contexts of several hundred tokens)
  code        a program prefix cut inside an expression -> the minimal completion: closing
              brackets, ';', then each open block closed on its own line at its indentation
  json        "Request: new user Mara, 31, from Oslo.\\nJSON:" -> ' {"type": "user", ...}'
  chat        a templated dialogue; the last reply recalls what the user said earlier

All generators take a random.Random, so the corpus is a function of the seed. ASCII only.
"""
import random

CONS = "bdfgklmnprstvz"
VOWELS = "aeiou"


def syllable(rng):
    return rng.choice(CONS) + rng.choice(VOWELS)


def made_up_word(rng, n_syl):
    return "".join(syllable(rng) for _ in range(n_syl))


class World:
    """The fixed facts table (country -> capital), and the word lists the skills draw on."""

    def __init__(self, seed, n_facts, retrieval_words=False, n_keys=72, suite_pairs=(48, 60),
                 train_max_pairs=64):
        rng = random.Random(seed * 7919 + 1)
        used = set()
        self.facts = []
        suffixes = ["ia", "or", "land", "istan", "ea", "mark", "ovia", "ene"]
        while len(self.facts) < n_facts:
            country = (made_up_word(rng, rng.randint(1, 2)) + rng.choice(suffixes)).capitalize()
            city = (made_up_word(rng, rng.randint(2, 3)) + rng.choice(["", "os", "ar", "en"]))
            city = city.capitalize()
            if country in used or city in used:
                continue
            used.add(country)
            used.add(city)
            self.facts.append((country, city))
        # retrieval_words: n_keys made-up keys (consonant-vowel-consonant) and 48 values (real
        # words); the tokenizer is trained until each is one token (make-demo.py checks).
        # Contexts have 2..train_max_pairs pairs in training and suite_pairs in the suite.
        self.keys = self.values = None
        self.suite_pairs, self.train_max_pairs = suite_pairs, train_max_pairs
        if not retrieval_words:
            return
        keys = set()
        while len(keys) < n_keys:
            k = rng.choice(CONS) + rng.choice(VOWELS) + rng.choice(CONS)
            if k not in VALUES:
                keys.add(k)
        self.keys = sorted(keys)
        self.values = sorted(VALUES)


NAMES = ["Mara", "Tomas", "Lena", "Omar", "Iris", "Pavel", "Nina", "Hugo", "Sara", "Ken",
         "Alba", "Ravi", "Jonas", "Mei", "Leo", "Ada", "Felix", "Zoe", "Ivan", "Lucia",
         "Sam", "Noor", "Eva", "Bruno", "Kai", "Rosa", "Tariq", "Elena", "Yuki", "Otto"]
CITIES = ["Oslo", "Lima", "Paris", "Cairo", "Quito", "Rome", "Dublin", "Hanoi", "Riga",
          "Accra", "Lisbon", "Seoul", "Vienna", "Dakar", "Lagos", "Minsk", "Perth", "Tokyo"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
PETS = ["cat", "dog", "fish", "bird", "horse", "rabbit", "turtle", "snake"]
ITEMS = ["lamp", "chair", "book", "kettle", "desk", "mug", "pillow", "clock", "radio", "bike"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
VALUES = ["owl", "fox", "cow", "pig", "hen", "elk", "ant", "bee", "cod", "eel", "yak", "ram",
          "oak", "elm", "ash", "fig", "pea", "yam", "gem", "ore", "tin", "ink", "wax", "tar",
          "cup", "pan", "jar", "pot", "box", "bag", "hat", "cap", "map", "pen", "key", "net",
          "car", "bus", "van", "cab", "jet", "ship", "boat", "sled", "kite", "drum", "bell", "harp"]
EVENTS = ["meeting", "dinner", "party", "lecture", "concert", "trip", "interview", "game"]


# ---- facts ----

FACT_TEMPLATES = [
    ("The capital of {c} is", " {x}."),
    ("Q: Which city is the capital of {c}?\nA:", " {x}."),
]


def facts_example(rng, world, template=None):
    c, x = rng.choice(world.facts)
    t = FACT_TEMPLATES[template if template is not None else rng.randrange(len(FACT_TEMPLATES))]
    return t[0].format(c=c), t[1].format(x=x)


# ---- arithmetic ----

def arith_operands(rng, max_digits):
    da, db = rng.randint(1, max_digits), rng.randint(1, max_digits)
    a = rng.randint(10 ** (da - 1) if da > 1 else 0, 10 ** da - 1)
    b = rng.randint(10 ** (db - 1) if db > 1 else 0, 10 ** db - 1)
    op = rng.choice("+-")
    if op == "-" and b > a:
        a, b = b, a
    return a, op, b


def arith_example(rng, max_digits=3):
    a, op, b = arith_operands(rng, max_digits)
    r = a + b if op == "+" else a - b
    return "%d%s%d=" % (a, op, b), "%d" % r


def arith_eval_example(rng):
    """Held-out test: both operands 2..3 digits (where the carries are)."""
    while True:
        a, op, b = arith_operands(rng, 3)
        if a >= 10 and b >= 10:
            r = a + b if op == "+" else a - b
            return "%d%s%d=" % (a, op, b), "%d" % r


# ---- retrieval ----

def retrieval_example(rng, world, lo=None, hi=None, queries=0):
    """A key's value from a list of key-value pairs. queries: how many keys are asked, each on
    its own line, all answered but the last; 0 draws 1..6 (training: several answered queries
    per document give the copying skill several examples per context, as in multi-query
    associative recall). With world.keys (retrieval_words), every key and value is one token,
    so the skill is pure in-context lookup (an induction head: find the key, copy what
    follows); without, keys are made up and values are 3-digit numbers."""
    if world.keys is None:
        n = rng.randint(lo or 2, hi or 28)
        queries = min(n, queries or rng.randint(1, 6))
        keys = set()
        while len(keys) < n:
            keys.add(rng.choice(CONS) + rng.choice(VOWELS) + rng.choice(CONS))
        keys = sorted(keys)
        rng.shuffle(keys)
        vals = [rng.randint(100, 999) for _ in keys]
        asked = rng.sample(range(n), queries)
        ctx = " ".join("%s=%d" % kv for kv in zip(keys, vals))
        # " key" as in the context, so the query's tokens are the context's tokens
        done = "".join("\nQuery: %s=%d" % (keys[q], vals[q]) for q in asked[:-1])
        return "Data: %s%s\nQuery: %s=" % (ctx, done, keys[asked[-1]]), "%d" % vals[asked[-1]]
    n = rng.randint(lo or 2, hi or world.train_max_pairs)
    queries = min(n, queries or rng.randint(1, 6))
    keys = rng.sample(world.keys, n)
    vals = [rng.choice(world.values) for _ in keys]
    asked = rng.sample(range(n), queries)
    ctx = ", ".join("%s %s" % kv for kv in zip(keys, vals))
    done = "".join("\nQuery: %s %s" % (keys[q], vals[q]) for q in asked[:-1])
    return "Data: %s%s\nQuery: %s" % (ctx, done, keys[asked[-1]]), " " + vals[asked[-1]]


# ---- code ----

FUNCS = ["f", "g", "h", "sum", "max", "load", "push", "map", "get", "put"]
VARS = ["a", "b", "c", "x", "y", "n", "k", "v", "acc", "val"]


def code_expr(rng, depth):
    r = rng.random()
    if depth <= 0 or r < 0.25:
        return rng.choice(VARS) if rng.random() < 0.75 else str(rng.randint(0, 99))
    if r < 0.5:
        n = rng.randint(1, 3)
        return "%s(%s)" % (rng.choice(FUNCS), ", ".join(code_expr(rng, depth - 1) for _ in range(n)))
    if r < 0.7:
        n = rng.randint(1, 3)
        return "[%s]" % ", ".join(code_expr(rng, depth - 1) for _ in range(n))
    if r < 0.85:
        return "(%s %s %s)" % (code_expr(rng, depth - 1), rng.choice("+-*<>"),
                               code_expr(rng, depth - 1))
    return "{%s: %s}" % (rng.choice(VARS), code_expr(rng, depth - 1))


CLOSE = {"(": ")", "[": "]", "{": "}"}


def cut_expression(rng, expr):
    """A prefix of expr ending just after an atom inside at least one bracket (or the whole
    expr when there is none), and the brackets that close it."""
    cuts = []
    stack = []
    for i, ch in enumerate(expr):
        if ch in CLOSE:
            stack.append(ch)
        elif ch in ")]}":
            stack.pop()
        elif ch.isalnum() and (i + 1 == len(expr) or not expr[i + 1].isalnum()) and stack:
            cuts.append((expr[:i + 1], "".join(CLOSE[c] for c in reversed(stack))))
    if not cuts:
        return expr, ""
    return rng.choice(cuts)


def code_statement(rng, indent, depth_left):
    """Complete lines at this indentation (a simple statement or a whole block)."""
    pad = "  " * indent
    if depth_left > 0 and rng.random() < 0.3:
        kw = rng.choice(["if", "while"])
        lines = ["%s%s (%s) {" % (pad, kw, code_expr(rng, 1))]
        for _ in range(rng.randint(1, 2)):
            lines += code_statement(rng, indent + 1, depth_left - 1)
        return lines + [pad + "}"]
    return ["%s%s = %s;" % (pad, rng.choice(VARS), code_expr(rng, 2))]


def code_example(rng):
    lines = ["fn %s(%s) {" % (rng.choice(FUNCS) + str(rng.randint(1, 9)),
                              ", ".join(rng.sample(VARS, rng.randint(1, 3))))]
    depth = 1
    for _ in range(rng.randint(0, 2)):
        lines += code_statement(rng, depth, 1)
    for _ in range(rng.randint(0, 2)):  # blocks left open
        lines.append("%s%s (%s) {" % ("  " * depth, rng.choice(["if", "while"]),
                                      code_expr(rng, 1)))
        depth += 1
        for _ in range(rng.randint(0, 1)):
            lines += code_statement(rng, depth, 0)
    expr = code_expr(rng, 2)
    while not any(c in expr for c in "([{"):
        expr = code_expr(rng, 2)
    head, closers = cut_expression(rng, expr)
    lines.append("%sreturn %s" % ("  " * depth, head))
    answer = closers + ";" + "".join("\n" + "  " * d + "}" for d in range(depth - 1, -1, -1))
    return "Code:\n" + "\n".join(lines), answer


# ---- json ----

def json_example(rng):
    kind = rng.randrange(3)
    if kind == 0:
        name, age, city = rng.choice(NAMES), rng.randint(18, 90), rng.choice(CITIES)
        req = rng.choice([
            "new user %s, %d, from %s." % (name, age, city),
            "add a user named %s who is %d and lives in %s." % (name, age, city),
            "register %s from %s, age %d." % (name, city, age),
        ])
        obj = '{"type": "user", "name": "%s", "age": %d, "city": "%s"}' % (name, age, city)
    elif kind == 1:
        item, qty, colour = rng.choice(ITEMS), rng.randint(1, 20), rng.choice(COLOURS)
        req = rng.choice([
            "order %d %s %s." % (qty, colour, item + ("s" if qty > 1 else "")),
            "I want to buy %d %s, colour %s." % (qty, item + ("s" if qty > 1 else ""), colour),
        ])
        obj = '{"type": "order", "item": "%s", "qty": %d, "colour": "%s"}' % (item, qty, colour)
    else:
        ev, day, hour = rng.choice(EVENTS), rng.choice(DAYS), rng.randint(0, 23)
        req = rng.choice([
            "schedule a %s on %s at %d." % (ev, day, hour),
            "put the %s on %s, hour %d." % (ev, day, hour),
        ])
        obj = '{"type": "event", "title": "%s", "day": "%s", "hour": %d}' % (ev, day, hour)
    return "Request: %s\nJSON:" % req, " " + obj


# ---- chat ----

SLOTS = {
    "name": (NAMES, "my name is {v}", "What is my name?", "Your name is {v}."),
    "colour": (COLOURS, "my favourite colour is {v}", "What colour do I like?",
               "Your favourite colour is {v}."),
    "pet": (PETS, "I have a {v}", "What pet do I have?", "You have a {v}."),
    "city": (CITIES, "I live in {v}", "Where do I live?", "You live in {v}."),
}
GREET = ["Hi", "Hello", "Hey", "Good morning"]
ACK = ["Nice to meet you.", "Got it.", "Thanks for telling me.", "Noted.", "I will remember."]


def chat_example(rng, want_choices=0):
    """A dialogue prompt ending with 'Bot:', its answer, and (when want_choices > 0) that many
    answers in all, the right one among them, for a choice item."""
    keys = rng.sample(sorted(SLOTS), rng.randint(1, 3))
    vals = {k: rng.choice(SLOTS[k][0]) for k in keys}
    turns = []
    for i, k in enumerate(keys):
        said = SLOTS[k][1].format(v=vals[k])
        user = ("%s, %s." % (rng.choice(GREET), said)) if i == 0 else said.capitalize() + "."
        turns.append("User: %s\nBot: %s" % (user, rng.choice(ACK)))
    q = rng.choice(keys)
    turns.append("User: %s\nBot:" % SLOTS[q][2])
    prompt = "\n".join(turns)
    answer = " " + SLOTS[q][3].format(v=vals[q])
    if not want_choices:
        return prompt, answer
    others = [v for v in SLOTS[q][0] if v != vals[q]]
    opts = [vals[q]] + rng.sample(others, want_choices - 1)
    rng.shuffle(opts)
    return prompt, answer, [" " + SLOTS[q][3].format(v=v) for v in opts]


SKILLS = ["facts", "arithmetic", "retrieval", "code", "json", "chat"]


def train_example(rng, world, skill):
    if skill == "facts":
        return facts_example(rng, world)
    if skill == "arithmetic":
        return arith_example(rng)
    if skill == "retrieval":
        return retrieval_example(rng, world)
    if skill == "code":
        return code_example(rng)
    if skill == "json":
        return json_example(rng)
    return chat_example(rng)


def eval_items(rng, world, per_slice):
    """Rows of the suite: dicts with the CSV columns. Facts ask every fact of the table (the
    skill is recall of what was memorised); every other item is drawn fresh, and the trainer
    never trains on a prompt that is here."""
    rows = []
    order = list(range(len(world.facts)))
    rng.shuffle(order)
    for i in order[:per_slice]:
        c, x = world.facts[i]
        rows.append(dict(slice="facts", kind="generate",
                         prompt=FACT_TEMPLATES[0][0].format(c=c), target=x, metric="exact",
                         max_tokens=8, stop="."))
    seen = set()

    def fresh(gen):
        while True:
            ex = gen()
            if ex[0] not in seen:
                seen.add(ex[0])
                return ex

    for _ in range(per_slice):
        p, a = fresh(lambda: arith_eval_example(rng))
        rows.append(dict(slice="arithmetic", kind="generate", prompt=p, target=a,
                         metric="number", max_tokens=6))
    for _ in range(per_slice):
        if world.keys is None:
            p, a = fresh(lambda: retrieval_example(rng, world, 20, 26, 1))
            rows.append(dict(slice="retrieval", kind="generate", prompt=p, target=a,
                             metric="exact", max_tokens=5, stop="\n"))
        else:
            p, a = fresh(lambda: retrieval_example(rng, world, *world.suite_pairs, 1))
            rows.append(dict(slice="retrieval", kind="generate", prompt=p, target=a.strip(),
                             metric="exact", max_tokens=4, stop="\n"))
    for _ in range(per_slice):
        p, a = fresh(lambda: code_example(rng))
        rows.append(dict(slice="code", kind="generate", prompt=p, target=a, metric="exact",
                         max_tokens=20))
    for _ in range(per_slice):
        p, a = fresh(lambda: json_example(rng))
        rows.append(dict(slice="json", kind="generate", prompt=p, target=a.strip(),
                         metric="json", max_tokens=40))
    for _ in range(per_slice):
        p, a, opts = fresh(lambda: chat_example(rng, 4))
        rows.append(dict(slice="chat", kind="choice", prompt=p, target=a, choices=opts,
                         metric="accuracy"))
    return rows
