#!/bin/sh
# Run each unit test binary given as an argument; print one line per
# binary (its failure lines under it) and end with "N passed, N failed"
# (binaries). Exit 1 if any failed.
#
#	sh tests/unit/run.sh build/unit/test_http build/unit/test_util ...

passed=0
failed=0
checks=0
out=$(mktemp "${TMPDIR:-/tmp}/sandd-unit.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT INT TERM

# LeakSanitizer is on: a leak fails the test like a failed check.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS

for t in "$@"; do
	name=$(basename "$t")
	if [ ! -x "$t" ]; then
		echo "FAIL $name (not found or not executable)"
		failed=$((failed + 1))
		continue
	fi
	"$t" >"$out" 2>&1
	rc=$?
	# The last line of a test is "NAME: N checks, M failed".
	n=$(sed -n 's/^.*: \([0-9][0-9]*\) checks, [0-9][0-9]* failed$/\1/p' \
	    "$out" | tail -n 1)
	checks=$((checks + ${n:-0}))
	if [ "$rc" -eq 0 ]; then
		echo "PASS $name (${n:-?} checks)"
		passed=$((passed + 1))
	else
		echo "FAIL $name (exit status $rc)"
		sed 's/^/    /' "$out"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
