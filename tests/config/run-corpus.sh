#!/bin/sh
# The config corpus: what `meshlet check` says about every file of tests/config and config/.
#
#   sh tests/config/run-corpus.sh MESHLET          (ctest: config/corpus)
#
#   invalid/NAME.ini     exit 1, stdout empty, stderr byte-equal to invalid/NAME.expect, run from
#                        inside invalid/ as `meshlet check NAME.ini`. An .expect may name a Kconfig
#                        limit as @CONFIG_ML_...@: it is replaced by the build's value, read from
#                        $ML_DOTCONFIG (default: the .config next to MESHLET). A case whose
#                        .ini has a line "; corpus-needs: CONFIG_ML_X>=N" is skipped on a build
#                        whose CONFIG_ML_X is smaller (a board with smaller limits).
#   unreadable/          the files generate.sh makes: exit 2, stdout empty, one line on stderr
#                        "NAME: ..." containing the text cases.txt gives.
#   config/meshlet.ini,  exit 0, stderr empty, one line on stdout
#   config/examples/*    "PATH: ok, version local-<12 hex>: ...".
#   config/examples/planned/*.ini  exit 1, "PATH:LINE: ... not implemented in this version".
#   check --defaults     exit 0, stderr empty.
#
# $ML_EMULATOR runs the binary when it is for another machine (e.g. "qemu-aarch64-static -cpu
# cortex-a53"); empty on the host. Prints one line per case, then "N passed, N failed"; exits 1
# when any case failed, 2 when it cannot run at all.
set -u

if [ $# -ne 1 ]; then
    echo "usage: run-corpus.sh MESHLET" >&2
    exit 2
fi
case $1 in
/*) meshlet=$1 ;;
*) meshlet=$(pwd)/$1 ;;
esac
if [ ! -f "$meshlet" ]; then
    echo "run-corpus.sh: $meshlet: no such file" >&2
    exit 2
fi
emu=${ML_EMULATOR:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dotconfig=${ML_DOTCONFIG:-$(dirname "$meshlet")/.config}

tmp=$(mktemp -d 2>/dev/null) || {
    tmp=${TMPDIR:-/tmp}/meshlet-corpus.$$
    mkdir -m 700 "$tmp" || exit 2
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

passed=0
failed=0

pass() {
    passed=$((passed + 1))
    echo "ok   $1"
}

fail() {
    failed=$((failed + 1))
    echo "FAIL $1: $2"
}

# Runs `$emu meshlet ARGS...` in DIR: stdout in $tmp/out, stderr in $tmp/err, exit status in
# $rc. $emu is split on blanks on purpose.
run() {
    dir=$1
    shift
    # shellcheck disable=SC2086
    (cd "$dir" && exec $emu "$meshlet" "$@") > "$tmp/out" 2> "$tmp/err" < /dev/null
    rc=$?
}

lines() {
    wc -l < "$1" | tr -d ' '
}

# @CONFIG_ML_X@ → the build's value, for the .expect files that name a Kconfig limit.
if [ -f "$dotconfig" ]; then
    sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=\(.*\)$/s|@\1@|\2|g/p' "$dotconfig" > "$tmp/subst.sed"
else
    : > "$tmp/subst.sed"
fi

# ---- invalid configs -------------------------------------------------------------------------
n_invalid=0
for ini in "$here"/invalid/*.ini; do
    [ -e "$ini" ] || continue
    name=$(basename "$ini" .ini)
    case=invalid/$name
    n_invalid=$((n_invalid + 1))
    expect=$here/invalid/$name.expect
    if [ ! -f "$expect" ]; then
        fail "$case" "no $name.expect"
        continue
    fi
    if grep -q '@CONFIG_' "$expect" && [ ! -s "$tmp/subst.sed" ]; then
        fail "$case" "$name.expect names a Kconfig limit and there is no $dotconfig (set ML_DOTCONFIG)"
        continue
    fi
    need=$(sed -n 's/^; corpus-needs: \(CONFIG_[A-Za-z0-9_]*\)>=\([0-9]*\)$/\1 \2/p' "$ini" | head -n 1)
    if [ -n "$need" ] && [ -f "$dotconfig" ]; then
        have=$(sed -n "s/^${need% *}=//p" "$dotconfig")
        if [ -n "$have" ] && [ "$have" -lt "${need#* }" ]; then
            echo "skip $case: this build has ${need% *}=$have, the case needs ${need#* }"
            continue
        fi
    fi
    sed -f "$tmp/subst.sed" "$expect" > "$tmp/expect"
    run "$here/invalid" check "$name.ini"
    if [ "$rc" -ne 1 ]; then
        fail "$case" "exit $rc, expected 1"
        sed 's/^/    stderr: /' "$tmp/err"
    elif [ -s "$tmp/out" ]; then
        fail "$case" "stdout not empty"
        sed 's/^/    stdout: /' "$tmp/out"
    elif ! cmp -s "$tmp/expect" "$tmp/err"; then
        fail "$case" "stderr differs from $name.expect (- expected, + got)"
        diff -u "$tmp/expect" "$tmp/err" | sed '1,2d; s/^/    /'
    else
        pass "$case"
    fi
done
if [ "$n_invalid" -eq 0 ]; then
    fail invalid "no invalid/*.ini found in $here"
fi

# ---- unreadable configs ----------------------------------------------------------------------
mkdir "$tmp/unreadable"
if ! sh "$here/unreadable/generate.sh" "$tmp/unreadable"; then
    fail unreadable "unreadable/generate.sh failed"
else
    # "NAME  TEXT" lines; # comments and blank lines skipped.
    grep -v '^[[:space:]]*\(#\|$\)' "$here/unreadable/cases.txt" > "$tmp/cases"
    while read -r name text; do
        case=unreadable/$name
        run "$tmp/unreadable" check "$name"
        if [ "$rc" -ne 2 ]; then
            fail "$case" "exit $rc, expected 2"
            sed 's/^/    stderr: /' "$tmp/err"
        elif [ -s "$tmp/out" ]; then
            fail "$case" "stdout not empty"
        elif [ "$(lines "$tmp/err")" -ne 1 ]; then
            fail "$case" "expected one line on stderr, got $(lines "$tmp/err")"
            sed 's/^/    stderr: /' "$tmp/err"
        elif ! grep -q "^$name: " "$tmp/err" || ! grep -qF -- "$text" "$tmp/err"; then
            fail "$case" "expected \"$name: ...$text...\""
            sed 's/^/    stderr: /' "$tmp/err"
        else
            pass "$case"
        fi
    done < "$tmp/cases"
fi

# ---- the shipped configs ---------------------------------------------------------------------
for ini in "$root"/config/meshlet.ini "$root"/config/examples/*.ini; do
    [ -e "$ini" ] || continue
    rel=${ini#"$root"/}
    run "$root" check "$rel"
    if [ "$rc" -ne 0 ]; then
        fail "$rel" "exit $rc, expected 0"
        sed 's/^/    stderr: /' "$tmp/err"
    elif [ -s "$tmp/err" ]; then
        fail "$rel" "stderr not empty"
        sed 's/^/    stderr: /' "$tmp/err"
    elif [ "$(lines "$tmp/out")" -ne 1 ] ||
        ! grep -q "^$rel: ok, version local-[0-9a-f]\{12\}: " "$tmp/out"; then
        fail "$rel" "expected one line \"$rel: ok, version local-...\""
        sed 's/^/    stdout: /' "$tmp/out"
    else
        pass "$rel"
    fi
done
if [ ! -e "$root/config/meshlet.ini" ]; then
    fail config/meshlet.ini "missing"
fi

# ---- examples of features not implemented yet: refused, each with its reason ------------------
for ini in "$root"/config/examples/planned/*.ini; do
    [ -e "$ini" ] || continue
    rel=${ini#"$root"/}
    run "$root" check "$rel"
    if [ "$rc" -ne 1 ]; then
        fail "$rel" "exit $rc, expected 1 (refused: it uses what this version does not have)"
        sed 's/^/    stderr: /' "$tmp/out"
    elif ! grep -q "^$rel:[0-9]*: .*not implemented in this version" "$tmp/err"; then
        fail "$rel" "expected \"$rel:LINE: ... not implemented in this version\" on stderr"
        sed 's/^/    stderr: /' "$tmp/err"
    else
        pass "$rel (refused)"
    fi
done

# ---- defaults --------------------------------------------------------------------------------
run "$root" check --defaults
if [ "$rc" -ne 0 ]; then
    fail "check --defaults" "exit $rc, expected 0"
elif [ -s "$tmp/err" ]; then
    fail "check --defaults" "stderr not empty"
elif ! grep -q '^\[node\]$' "$tmp/out" || ! grep -q '^\[cluster NAME\]$' "$tmp/out"; then
    fail "check --defaults" "no [node] or [cluster NAME] in what it printed"
else
    pass "check --defaults"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
