#!/usr/bin/env python3
"""Prints per-slice accuracy (%) per config of one run in a qbrief results store, as a
Markdown table, with each config's drop from the baseline in points.

    python3 tools/demo_accuracy.py [out/demo/qbrief.db] [--run NAME]

Reads the tables item_results, items, configs and runs (collector/store/store.c); items whose
status is not 'ok' are left out. Standard library only."""
import argparse
import sqlite3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db", nargs="?", default="out/demo/qbrief.db")
    ap.add_argument("--run", help="run name (default: the latest run)")
    a = ap.parse_args()
    con = sqlite3.connect(a.db)
    if a.run:
        run_id, base = con.execute("SELECT id, baseline_config FROM runs WHERE name = ?",
                                   (a.run,)).fetchone()
    else:
        run_id, base = con.execute(
            "SELECT id, baseline_config FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    rows = con.execute(
        "SELECT c.spec, i.slice, avg(r.correct) * 100, count(*) FROM item_results r "
        "JOIN items i ON i.id = r.item_id JOIN configs c ON c.id = r.config_id "
        "WHERE r.run_id = ? AND r.status = 'ok' GROUP BY c.id, i.slice ORDER BY c.id",
        (run_id,)).fetchall()
    configs, slices, acc, n = [], [], {}, {}
    for spec, sl, p, k in rows:
        if spec not in configs:
            configs.append(spec)
        if sl not in slices:
            slices.append(sl)
        acc[spec, sl], n[sl] = p, k
    print("| slice (items) | " + " | ".join(configs) + " |")
    print("|---|" + "---:|" * len(configs))
    for sl in slices:
        cells = []
        for c in configs:
            v = acc.get((c, sl))
            if v is None:
                cells.append("-")
            elif c == base or (base, sl) not in acc:
                cells.append("%.1f" % v)
            else:
                cells.append("%.1f (%+.1f)" % (v, v - acc[base, sl]))
        print("| %s (%d) | %s |" % (sl, n[sl], " | ".join(cells)))


if __name__ == "__main__":
    main()
