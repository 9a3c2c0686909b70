#!/bin/sh
# Build the libFuzzer targets (clang -fsanitize=fuzzer,address,undefined)
# and run each for a short time; one line per target. Exit 1 if a target
# crashed, leaked, or could not be built.
#
#	sh tests/fuzz/run.sh [TARGET...]	(default: every tests/fuzz/fuzz_*.c)
#
# Environment: FUZZ_TIME (seconds per target, default 10), FUZZ_CC (default
# clang), FUZZ_JOBS (targets run at once, default: number of CPUs).
# Objects, binaries, corpora and logs go to build/fuzz/; a crashing input
# is saved as build/fuzz/crash-TARGET-* and its log is printed.

set -u
cd "$(dirname "$0")/../.." || exit 1

FUZZ_TIME=${FUZZ_TIME:-10}
FUZZ_CC=${FUZZ_CC:-clang}
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
OUT=build/fuzz
PKGS="libevent libevent_openssl openssl jansson libseccomp"

if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
	echo "FAIL fuzz: $FUZZ_CC not found (run scripts/deps.sh)"
	exit 1
fi
# shellcheck disable=SC2086 # PKGS is a list on purpose
if ! pkg_cflags=$(pkg-config --cflags $PKGS) ||
    ! pkg_libs=$(pkg-config --libs $PKGS); then
	echo "FAIL fuzz: pkg-config cannot find $PKGS"
	exit 1
fi

if [ $# -gt 0 ]; then
	targets="$*"
else
	targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done)
fi

# Every object of the program but sandd.o (main), instrumented for the
# fuzzer; make gives rebuild-when-changed and -j for free.
mkdir -p "$OUT/obj" || exit 1
if ! make -s -j"$FUZZ_JOBS" -f - CC="$FUZZ_CC" PKG_CFLAGS="$pkg_cflags" \
    PKG_LIBS="$pkg_libs" TARGETS="$targets" all >"$OUT/build.log" 2>&1 <<'MAKE'
SRCS	:= $(filter-out src/sandd.c,$(wildcard src/*.c))
OBJS	:= $(SRCS:src/%.c=build/fuzz/obj/%.o)
HDRS	:= $(wildcard src/*.h)
SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS	 = -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(SAN) \
	   $(PKG_CFLAGS) -Isrc
WARN	 = -Wall -Wextra -Werror -Wformat=2 -Wmissing-prototypes -Wshadow \
	   -Wpointer-arith -Wsign-compare -Wstrict-prototypes \
	   -Wno-unused-parameter
all: $(TARGETS:%=build/fuzz/%)
build/fuzz/obj/%.o: src/%.c $(HDRS)
	$(CC) $(CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
build/fuzz/%: tests/fuzz/%.c $(OBJS)
	$(CC) $(CFLAGS) $(WARN) -fsanitize=fuzzer -o $@ $< $(OBJS) \
	    $(PKG_LIBS) -lwslay -lutil -pthread
MAKE
then
	echo "FAIL fuzz: build failed:"
	sed 's/^/    /' "$OUT/build.log" | tail -n 40
	exit 1
fi

# A few valid inputs to start from, so the short run goes deep quickly.
seed() {	# seed TARGET NAME PRINTF-FORMAT
	mkdir -p "$OUT/corpus/$1"
	# shellcheck disable=SC2059
	printf "$3" >"$OUT/corpus/$1/seed-$2"
}
seed fuzz_http req 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sandd.1\r\nAuthorization: Bearer abc\r\n\r\n'
seed fuzz_http res 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\201\005hello'
seed fuzz_http health 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'
seed fuzz_utf8 mixed 'ascii \303\251t\303\251 \342\202\254 \360\237\230\200 \355\237\277\364\217\277\277'
seed fuzz_utf8 bad 'abc\377\300\200\355\240\200\360\237\230'
seed fuzz_frame out '\001\000\000\000\000\000\000\007\000\000\000\000\000\000\001\000payload'
seed fuzz_frame in '\000\000\000\000\377\377\377\377\377\377\377\377\377\377\377\377'
seed fuzz_line exec '{"op":"exec","id":1,"worker":"w1","argv":["/bin/echo","hi"],"stdin":"abc\\u0000"}\n'
seed fuzz_line put '{"op":"put","id":"p","worker":"w1","path":"/tmp/x","bytes":5}\nhello'
seed fuzz_line write '{"op":"write","handle":"h-1","data_b64":"/w==","eof":true}'

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

# Run one target; its result goes to $OUT/TARGET.rc, its output to .log.
run_one() {
	t=$1
	case $t in
	fuzz_http)	max_len=20000 ;;
	fuzz_line)	max_len=65536 ;;
	*)		max_len=4096 ;;
	esac
	mkdir -p "$OUT/corpus/$t"
	"$OUT/$t" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$max_len" -print_final_stats=1 \
	    -artifact_prefix="$OUT/crash-$t-" "$OUT/corpus/$t" \
	    >"$OUT/$t.log" 2>&1
	echo $? >"$OUT/$t.rc"
}

# Run them FUZZ_JOBS at a time.
n=0
for t in $targets; do
	rm -f "$OUT/$t.rc"
	run_one "$t" &
	n=$((n + 1))
	if [ "$n" -ge "$FUZZ_JOBS" ]; then
		wait
		n=0
	fi
done
wait

status=0
for t in $targets; do
	rc=$(cat "$OUT/$t.rc" 2>/dev/null || echo 99)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
	    "$OUT/$t.log" | tail -n 1)
	cov=$(sed -n 's/^#[0-9]*.*DONE *cov: \([0-9]*\).*/\1/p' \
	    "$OUT/$t.log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "PASS $t (${runs:-?} runs in ${FUZZ_TIME}s, cov ${cov:-?})"
	else
		echo "FAIL $t (exit status $rc; log $OUT/$t.log)"
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' \
		    "$OUT/$t.log" | head -n 10 | sed 's/^/    /'
		status=1
	fi
done
exit $status
