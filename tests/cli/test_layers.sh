#!/usr/bin/env bash
# make check-layers: passes on the tree as it is, and fails -- naming the file and line -- when
# an include points up a layer, across to a peer, or closes a cycle of modules, and when a
# function grows past 150 lines. Runs tools/check-layers.py on a copy of the sources.
. "$(dirname "$0")/lib.sh"

CHECK=tools/check-layers.py
copy() { # a fresh copy of the library sources in $TMP/t
    rm -rf "$TMP/t" && mkdir -p "$TMP/t"
    cp -r collector kernels analysis output "$TMP/t/"
}

copy
expect_exit "the tree passes check-layers" 0 "$CHECK" "$TMP/t"

copy
sed -i '0,/#include "kernels\/qtensor.h"/s//#include "kernels\/qtensor.h"\n#include "collector\/engine\/engine.h"/' "$TMP/t/kernels/qtensor.c"
expect_exit "an upward include fails check-layers" 1 "$CHECK" "$TMP/t"
grep -q "^kernels/qtensor.c:[0-9]*: includes 'collector/engine/engine.h'.* points up" "$TMP/out" \
    && ok "the upward include is named with its file and line" || fail "the upward include is named" "$(cat "$TMP/out")"

copy
echo '#include "collector/store/store.h"' >>"$TMP/t/collector/eval/probe.c"
expect_exit "an include across to a peer layer fails" 1 "$CHECK" "$TMP/t"
grep -q "points across to a peer" "$TMP/out" && ok "the peer include is named" || fail "the peer include is named" "$(cat "$TMP/out")"

copy
echo '#include "collector/eval/suite.h"' >>"$TMP/t/collector/eval/item.c"
expect_exit "a module cycle inside one folder fails" 1 "$CHECK" "$TMP/t"
grep -q "module cycle: collector/eval/item -> collector/eval/suite -> collector/eval/item" "$TMP/out" \
    && ok "the cycle is named" || fail "the cycle is named" "$(cat "$TMP/out")"

copy
mkdir -p "$TMP/t/collector/misc" && echo 'int x;' >"$TMP/t/collector/misc/x.c"
expect_exit "a folder without a layer fails" 1 "$CHECK" "$TMP/t"

copy
{ echo 'int long_one(void);'; echo 'int long_one(void)'; echo '{'; echo '    int x = 0;'
  for i in $(seq 150); do echo '    x++;'; done; echo '    return x;'; echo '}'; } >>"$TMP/t/analysis/stats.c"
expect_exit "a function over 150 lines fails" 1 "$CHECK" "$TMP/t"
grep -q "function 'long_one' is 155 lines" "$TMP/out" && ok "the long function is named with its length" \
    || fail "the long function is named" "$(cat "$TMP/out")"
finish
