#!/bin/sh
# Install the Debian packages that building and testing sandd need (and,
# with "bench", what `make bench` compares against: OpenSSH for scp; with
# "valgrind", what `make valgrind` runs the daemons under).
#
# Idempotent: packages already installed are left alone, and when nothing
# is missing the script prints nothing and exits 0 without touching apt.
# Usage: scripts/deps.sh [-n] [bench] [valgrind]
#	(-n: only list what is missing; exit 1 if any)

set -eu

PACKAGES="build-essential gcc make clang pkg-config libevent-dev libssl-dev
libjansson-dev libwslay-dev libseccomp-dev libclang-rt-14-dev python3
python3-setuptools python3-wheel python3-venv socat mandoc openssl procps
iproute2 asciinema e2fsprogs"
BENCH_PACKAGES="openssh-server openssh-client"
VALGRIND_PACKAGES="valgrind"

usage() {
	echo "usage: $0 [-n] [bench] [valgrind]"
}

dry_run=0
for arg in "$@"; do
	case "$arg" in
	-n|--dry-run)
		dry_run=1
		;;
	bench)
		PACKAGES="$PACKAGES $BENCH_PACKAGES"
		;;
	valgrind)
		PACKAGES="$PACKAGES $VALGRIND_PACKAGES"
		;;
	-h|--help)
		usage
		exit 0
		;;
	*)
		echo "$0: unknown argument: $arg" >&2
		usage >&2
		exit 2
		;;
	esac
done

# is_installed PKG: true when dpkg has PKG fully installed.
is_installed() {
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[ "$status" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "$0: dpkg-query not found: this script knows Debian and" \
	    "its derivatives only." >&2
	echo "$0: install by other means: $PACKAGES" | tr '\n' ' ' >&2
	echo >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	if ! is_installed "$p"; then
		missing="$missing $p"
	fi
done
missing=${missing# }

if [ -z "$missing" ]; then
	exit 0
fi

if [ "$dry_run" -eq 1 ]; then
	echo "missing: $missing"
	exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "$0: these packages are missing: $missing" >&2
	echo "$0: not root and sudo is not available; as root, run:" >&2
	echo "    apt-get update && apt-get install -y --no-install-recommends" \
	    "$missing" >&2
	exit 1
fi

echo "$0: installing: $missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -q update
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=300 -q install -y \
    --no-install-recommends $missing

still=""
for p in $missing; do
	if ! is_installed "$p"; then
		still="$still $p"
	fi
done
if [ -n "$still" ]; then
	echo "$0: still missing after apt-get install:$still" >&2
	exit 1
fi
exit 0
