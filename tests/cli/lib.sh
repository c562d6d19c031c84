# Helpers for the CLI tests (sourced). Each check prints "ok NAME" or "FAIL NAME";
# finish prints the summary line tests/run.sh adds up.
QBRIEF=${QBRIEF:-bin/qbrief}
SHARED=${QB_SHARED:-../shared}
_pass=0 _fail=0 _skip=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qbcli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
ok() { echo "ok   $1"; _pass=$((_pass + 1)); }
fail() { echo "FAIL $1${2:+: $2}"; _fail=$((_fail + 1)); }
skip() { echo "skip $1: $2"; _skip=$((_skip + 1)); }
# expect_exit NAME CODE CMD...: runs CMD, checks its exit status; output in $TMP/out, $TMP/err
expect_exit() {
    local name=$1 code=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -eq "$code" ]; then ok "$name"; else fail "$name" "exit $rc, wanted $code: $(head -c 300 "$TMP/err")"; fi
}
finish() { echo "# passed $_pass failed $_fail skipped $_skip"; }
