# sandd: plain make with pkg-config. See README.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
PYDIR	?= $(PREFIX)/lib/sandd/python
BASHDIR	?= $(PREFIX)/share/bash-completion/completions
DESTDIR	?=

CC	?= cc
PKGS	 = libevent libevent_openssl openssl jansson libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN	 = -Wall -Wextra -Werror -Wformat=2 -Wmissing-prototypes \
	   -Wshadow -Wpointer-arith -Wsign-compare -Wstrict-prototypes \
	   -Wno-unused-parameter
CFLAGS	?= -O2 -g
# Hardening as distributions build daemons. Binding every symbol at start
# (full RELRO) also spares each forked child the lazy lookups that would
# run again in every copy of the worker.
HARDEN	 = -fstack-protector-strong
LDHARDEN = -Wl,-z,relro,-z,now
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(HARDEN) $(PKG_CFLAGS) \
	     $(CFLAGS)
LIBS	 = $(PKG_LIBS) -lwslay -lutil -lm -pthread $(LDHARDEN)

SRCS	 = $(wildcard src/*.c)
OBJS	 = $(SRCS:src/%.c=build/%.o)
ASAN_OBJS = $(SRCS:src/%.c=build/asan/%.o)
HDRS	 = $(wildcard src/*.h)

UNIT_SRCS = $(wildcard tests/unit/*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=build/unit/%)
LIB_OBJS  = $(filter-out build/asan/sandd.o,$(ASAN_OBJS))

# The sanitizer build uses clang, so that both compilers see the code.
ASAN_CC	?= clang
ASAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	     -fno-sanitize-recover=undefined

.PHONY: all deps asan check unit fuzz test test-asan demo bench install \
	clean lint-man valgrind

all: sandd

deps:
	@sh scripts/deps.sh

sandd: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(LIBS) $(LDFLAGS)

build/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p build
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

asan: sandd-asan

sandd-asan: $(ASAN_OBJS)
	$(ASAN_CC) $(ASAN_FLAGS) -o $@ $(ASAN_OBJS) $(LIBS)

build/asan/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p build/asan
	$(ASAN_CC) -std=c11 -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) $(ASAN_FLAGS) \
	    -c -o $@ $<

build/unit/%: tests/unit/%.c tests/unit/stubs.h $(LIB_OBJS)
	@mkdir -p build/unit
	$(ASAN_CC) -std=c11 -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) $(ASAN_FLAGS) \
	    -Isrc -o $@ $< $(LIB_OBJS) $(LIBS)

unit: $(UNIT_BINS)
	@sh tests/unit/run.sh $(UNIT_BINS)

# A short libFuzzer run of every parser of peer input.
fuzz:
	@sh tests/fuzz/run.sh

lint-man:
	@for m in man/*.[0-9]; do mandoc -Tlint -W warning $$m || exit 1; done

# The whole suite: dependencies, both builds, unit tests, man page lint,
# then every integration test against the sanitizer build.
check: deps
	$(MAKE) all asan
	$(MAKE) unit
	$(MAKE) fuzz
	$(MAKE) lint-man
	SANDD_BIN=$(CURDIR)/sandd-asan python3 tests/run.py

test: all
	python3 tests/run.py

# The daemons under valgrind's memcheck, through the tests that suit it
# (not the bulk transfers: too slow). A report fails the test, as the
# sanitizers' do. 11 minutes on 2 cores; not part of check.
VALGRIND_TESTS = tests/test_core.py tests/test_errors.py tests/test_exec.py \
	tests/test_sessions.py tests/test_auth.py tests/test_multi.py

valgrind:
	@sh scripts/deps.sh valgrind
	$(MAKE) all
	SANDD_BIN=$(CURDIR)/tests/valgrind-sandd SANDD_TEST_TIMEOUT=10 \
	    python3 tests/run.py $(VALGRIND_TESTS)

demo: deps
	$(MAKE) all
	sh scripts/demo.sh

bench:
	@sh scripts/deps.sh bench
	$(MAKE) all
	python3 tests/bench.py

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(PYDIR)/sandd $(DESTDIR)$(BASHDIR)
	install -m 755 sandd $(DESTDIR)$(BINDIR)/sandd
	install -m 644 man/sandd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 man/sandd-control.7 man/sandd-wire.7 \
	    $(DESTDIR)$(MANDIR)/man7/
	install -m 644 contrib/python/sandd/*.py $(DESTDIR)$(PYDIR)/sandd/
	install -m 644 contrib/completion/sandd.bash $(DESTDIR)$(BASHDIR)/sandd

clean:
	rm -rf build sandd sandd-asan contrib/python/build \
	    contrib/python/*.egg-info
