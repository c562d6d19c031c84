#!/usr/bin/env python3
"""check-layers: every #include in the library points down the layers, no two modules include
each other (directly or through others), and the code stays in pieces a reader takes in: no
function over MAX_FUNC_LINES lines in collector/, analysis/ or output/, no folder over
MAX_FOLDER_SOURCES .c files. `make check-layers` runs it (and `make test` runs that);
docs/architecture.md explains the layers. Usage: tools/check-layers.py [ROOT] (default: the
repository root).

A folder's layer is its rank in LAYERS: a file may include a header of its own folder or of a
folder with a lower rank. Folders of equal rank are peers and may not include each other. A
module is a .c file with its .h (and its name_int.h); a cycle of modules is refused even
inside one folder. Exit 0 when clean, 1 with one line per problem ("file:line: ...")."""
import os
import re
import sys

# (rank, folder): lowest first. A folder missing here is an error, so a new one gets a place.
LAYERS = [
    (0, "kernels/base"),        # errors, file reading: needs nothing
    (1, "kernels"),             # formats, quantizers, matmul reference kernels, dispatch
    (2, "kernels/x86"),         # AVX2 / AVX-512 twins of the reference kernels
    (2, "kernels/cpu"),         # the CPU backend of the engine
    (2, "kernels/vulkan"),      # the Vulkan backend of the engine
    (3, "collector/tokenizer"), # SentencePiece, BPE, tokenizer.json
    (4, "collector/model"),     # loaders, the config grammar, a model in one config
    (5, "collector/engine"),    # the one forward pass, sampling, generation
    (6, "collector/quant"),     # calibration: GPTQ, AWQ, SmoothQuant
    (7, "collector/store"),     # the SQLite results store
    (7, "collector/eval"),      # suites, metrics, probes
    (8, "collector/run"),       # plans and runs
    (9, "analysis"),            # statistics, cliffs, recommendations
    (10, "output/chart"),       # the charts (Cairo), drawn from an analysis
    (11, "output"),             # the brief: templates, Markdown, CSV, PDF, the runs it compares
    (12, "collector/cli"),      # the qbrief command
]
RANK = dict((f, r) for r, f in LAYERS)
TOPS = ("collector", "kernels", "analysis", "output")
MAX_FUNC_LINES = 150
MAX_FOLDER_SOURCES = 20
SHORT_FUNCS = ("collector", "analysis", "output")  # kernels may unroll: their length is theirs
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path):
    base = os.path.splitext(path)[0]
    return base[:-4] if base.endswith("_int") else base


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    problems = []
    edges = {}  # module -> {module: "file:line" of the first include}
    for top in TOPS:
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                folder = os.path.dirname(path)
                if folder not in RANK:
                    problems.append(f"{path}: folder '{folder}' has no layer in tools/check-layers.py")
                    continue
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        inc = m.group(1)
                        to = os.path.dirname(inc)
                        where = f"{path}:{n}"
                        if not inc.startswith(TOPS):
                            problems.append(f"{where}: '{inc}' is not a path from the repository root")
                            continue
                        if to not in RANK:
                            problems.append(f"{where}: '{inc}' is in '{to}', which has no layer")
                            continue
                        if to != folder and RANK[to] >= RANK[folder]:
                            how = "across to a peer" if RANK[to] == RANK[folder] else "up"
                            problems.append(f"{where}: includes '{inc}': {folder} (layer {RANK[folder]}) "
                                            f"points {how} to {to} (layer {RANK[to]})")
                        a, b = module_of(path), module_of(inc)
                        if a != b:
                            edges.setdefault(a, {}).setdefault(b, where)
    problems += cycles(edges)
    problems += sizes(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check-layers: {len(problems)} problem(s)")
        return 1
    print("check-layers: every include points down, no module cycles")
    return 0


def sizes(root):
    """Functions over MAX_FUNC_LINES (from the line of the name to the closing brace; the house
    style puts a function's braces alone at column 0) and folders over MAX_FOLDER_SOURCES."""
    out = []
    for top in TOPS:
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            sources = sorted(n for n in names if n.endswith(".c"))
            folder = os.path.relpath(dirpath, root)
            if len(sources) > MAX_FOLDER_SOURCES:
                out.append(f"{folder}: {len(sources)} source files (at most {MAX_FOLDER_SOURCES}): "
                           "a subsystem wants its own folder")
            if not folder.startswith(SHORT_FUNCS):
                continue
            for name in sources:
                path = os.path.join(folder, name)
                with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                    lines = f.read().split("\n")
                start = None
                for n, line in enumerate(lines):
                    if line == "{" and n > 0:
                        start = n - 1
                        while start > 0 and lines[start - 1][:1] not in ("", "}", "#", "/", " ", "*") \
                                and not lines[start - 1].rstrip().endswith((";", "*/")):
                            start -= 1  # a signature over several lines
                    elif line.startswith("}") and start is not None:
                        length = n - start + 1
                        if length > MAX_FUNC_LINES:
                            sig = lines[start].split("(")[0].split()[-1].lstrip("*")
                            out.append(f"{path}:{start + 1}: function '{sig}' is {length} lines "
                                       f"(at most {MAX_FUNC_LINES}): split it by its phases")
                        start = None
    return out


def cycles(edges):
    """One line per cycle of modules found by a depth-first search (each cycle once)."""
    out, state, stack, seen = [], {}, [], set()

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges.get(u, {})):
            if state.get(v) == 1:
                cyc = stack[stack.index(v):] + [v]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    hops = ", ".join(f"{edges[x][y]} -> {y}" for x, y in zip(cyc, cyc[1:]))
                    out.append(f"{cyc[0]}: module cycle: {' -> '.join(cyc)} ({hops})")
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    sys.setrecursionlimit(10000)
    for u in sorted(edges):
        if u not in state:
            visit(u)
    return out


if __name__ == "__main__":
    sys.exit(main())
