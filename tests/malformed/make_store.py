#!/usr/bin/env python3
"""Writes tests/malformed/store/: files named .db that qb_store_open must refuse with
QB_EFORMAT and a message quoting the path (tests/collector/store/test_store.c, test_corpus).
Run from the repository root: python3 tests/malformed/make_store.py"""
import os
import sqlite3

OUT = "tests/malformed/store"
APP_ID = 0x51425246  # "QBRF", PRAGMA application_id of a qbrief store (collector/store/store.c)


def qbrief_like(path, n_rows):
    """An SQLite file that claims to be a qbrief store (application_id, user_version 1),
    large enough to span many pages."""
    if os.path.exists(path):
        os.remove(path)
    c = sqlite3.connect(path)
    c.execute(f"PRAGMA application_id = {APP_ID}")
    c.execute("PRAGMA user_version = 1")
    c.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, item_key TEXT UNIQUE, prompt TEXT)")
    c.executemany("INSERT INTO items(item_key, prompt) VALUES (?, ?)",
                  ((f"q{i}", "prompt text " * 20) for i in range(n_rows)))
    c.commit()
    c.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    # a CSV suite someone named results.db
    with open(f"{OUT}/csv-named-db.db", "w") as f:
        f.write("id,prompt,answer\nq1,What is 2+2?,4\n")
    # a valid SQLite database of another program
    path = f"{OUT}/other-app.db"
    if os.path.exists(path):
        os.remove(path)
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE t (x)")
    c.execute("INSERT INTO t VALUES ('not qbrief')")
    c.commit()
    c.close()
    # a qbrief-looking store cut short: the header promises pages that are not there
    tmp = f"{OUT}/.full.tmp"
    qbrief_like(tmp, 400)
    with open(tmp, "rb") as f:
        data = f.read()
    os.remove(tmp)
    with open(f"{OUT}/truncated.db", "wb") as f:
        f.write(data[: len(data) // 4])
    # only the 100-byte header
    with open(f"{OUT}/header-only.db", "wb") as f:
        f.write(data[:100])


if __name__ == "__main__":
    main()
