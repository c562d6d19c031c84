#!/usr/bin/env bash
# Two `qbrief run`s on one store (issue 19, item 6): different run names started together
# on a new store both finish with all their units; the same run name started while another
# process holds it is refused at once with a message naming that process, and resumes to
# nothing new once the first has finished. Started together, the same name never dies on a
# UNIQUE constraint: one holds the run, the other is refused or finds every unit done.
. "$(dirname "$0")/lib.sh"

G=$SHARED/models/stories260K-gguf/stories260K.gguf
S=examples/suites/tiny.csv
if [ ! -r "$G" ]; then
    skip "concurrent runs" "../shared/models not found"
    finish
    exit 0
fi
run() { # run DB NAME CONFIGS: one quiet run without the probes
    "$QBRIEF" run --model "$G" --suite "$S" --configs "$3" --db "$1" --name "$2" \
        --no-latency --no-memory --threads 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# different names, started together on a file that does not exist yet
for i in 1 2 3; do
    db=$TMP/two$i.db
    run "$db" A f32,w4g32 >"$TMP/a.out" 2>"$TMP/a.err" &
    a=$!
    run "$db" B f32,w4g32 >"$TMP/b.out" 2>"$TMP/b.err" &
    b=$!
    wait $a; ra=$?
    wait $b; rb=$?
    if [ $ra -eq 0 ] && [ $rb -eq 0 ] && grep -q "22 evaluated" "$TMP/a.err" && grep -q "22 evaluated" "$TMP/b.err"; then
        ok "two run names together on a new store, round $i"
    else
        fail "two run names together on a new store, round $i" "A: $ra $(tail -1 "$TMP/a.err") B: $rb $(tail -1 "$TMP/b.err")"
    fi
done

# the same name while a process holds it: that process is stopped (SIGSTOP) while it holds
# the run, so the second start meets it however fast the machine is
C=f32,w8,w8a8,w4g32,w4g64,w4g128,w4g32-sym,w4g128-sym,w3g32,w3g64,w3g128,w2g32,w2g64,w2g128
n_units=$((14 * 11))
locks() { # the number of run_locks rows of DB (empty when unreadable)
    if command -v sqlite3 >/dev/null; then
        sqlite3 -readonly "$1" "SELECT count(*) FROM run_locks" 2>/dev/null
    else
        python3 -c "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print(c.execute('SELECT count(*) FROM run_locks').fetchone()[0])" "$1" 2>/dev/null
    fi
}
held=
for try in 1 2 3; do
    db=$TMP/same$try.db
    (exec "$QBRIEF" run --model "$G" --suite "$S" --configs $C --db "$db" --name S \
        --no-latency --no-memory --threads 1 >"$TMP/h.out" 2>"$TMP/h.err") &
    h=$! # qbrief itself: the subshell execs it
    while kill -0 $h 2>/dev/null; do
        if [ "$(locks "$db")" = 1 ]; then
            kill -STOP $h && held=$db
            break
        fi
        sleep 0.01
    done
    [ -n "$held" ] && break
    wait $h
done
if [ -z "$held" ]; then
    fail "a held run is refused" "the first run finished before its lock was seen, 3 times"
else
    t0=$(now_ms)
    run "$held" S $C >"$TMP/s.out" 2>"$TMP/s.err"
    rs=$?
    t1=$(now_ms)
    kill -CONT $h
    [ $rs -eq 1 ] && grep -q "run 'S' is being written by process $h on" "$TMP/s.err" &&
        ok "the same run name is refused while process $h holds it (in $((t1 - t0)) ms)" ||
        fail "the same run name is refused while another process holds it" "exit $rs: $(tail -1 "$TMP/s.err")"
    wait $h && ok "the holder finishes" || fail "the holder finishes" "$(tail -1 "$TMP/h.err")"
    run "$held" S $C >"$TMP/s.out" 2>"$TMP/s.err" && grep -q "0 evaluated, $n_units already done" "$TMP/s.err" &&
        ok "then the same name resumes to nothing new" || fail "then the same name resumes to nothing new" "$(tail -1 "$TMP/s.err")"
fi

# the same name started together: never a UNIQUE failure, every unit once
for i in 1 2 3; do
    db=$TMP/both$i.db
    run "$db" S f32,w4g32 >"$TMP/a.out" 2>"$TMP/a.err" &
    a=$!
    run "$db" S f32,w4g32 >"$TMP/b.out" 2>"$TMP/b.err" &
    b=$!
    wait $a; ra=$?
    wait $b; rb=$?
    good=1
    for x in a b; do
        r=$ra
        [ $x = b ] && r=$rb
        if [ $r -ne 0 ] && ! grep -q "is being written by process" "$TMP/$x.err"; then good=0; fi
    done
    grep -q UNIQUE "$TMP/a.err" "$TMP/b.err" && good=0
    [ $ra -ne 0 ] && [ $rb -ne 0 ] && good=0
    run "$db" S f32,w4g32 >"$TMP/c.out" 2>"$TMP/c.err" && grep -q "0 evaluated, 22 already done" "$TMP/c.err" || good=0
    [ $good = 1 ] && ok "the same run name started twice together, round $i (exits $ra, $rb)" ||
        fail "the same run name started twice together, round $i" "A: $ra $(tail -1 "$TMP/a.err") B: $rb $(tail -1 "$TMP/b.err") then: $(tail -1 "$TMP/c.err")"
done
finish
