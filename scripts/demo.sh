#!/bin/bash
# A five-minute tour of sandd on one machine.
#
# Starts `sandd serve` on 127.0.0.1 (a free port, a control socket in a
# private temporary folder) and one local `sandd worker --id demo`, then
# shows the main job: list workers, run a command, drive it over the
# control socket with socat, use a shell session, copy a file there and
# back. Everything it started is stopped and removed on every exit path.
#
# Exit status: 0 when the exec part worked, 1 otherwise. Parts that are
# not yet available in this build say so and do not change the status.
#
# Usage: scripts/demo.sh        (from anywhere; needs ./sandd built: `make`)
#   SANDD=/path/to/sandd scripts/demo.sh   to use another binary.

# `make demo` runs this with sh: move to bash, which the session part needs.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

set -u

cd "$(dirname "$0")/.." || exit 1
SANDD=${SANDD:-./sandd}
case "$SANDD" in
*/*) SANDD=$(cd "$(dirname "$SANDD")" && pwd)/$(basename "$SANDD") ;;
esac

if [ ! -x "$SANDD" ]; then
	echo "demo: $SANDD is not built yet; run 'make' first" >&2
	exit 1
fi
for tool in python3 socat sha256sum timeout; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "demo: '$tool' is needed; run scripts/deps.sh" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sandd-demo.XXXXXX") || exit 1
sock=$tmp/control.sock
serve_pid=""
worker_pid=""
ctl_pid=""

# stop PID: TERM its process group and itself, KILL what is left after 5 s.
stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	[ -n "$ctl_pid" ] && stop "$ctl_pid"
	stop "$worker_pid"
	stop "$serve_pid"
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

say() {
	printf '\n# %s\n' "$*"
}
show() {
	printf '$ %s\n' "$*"
}
na() {
	printf '# -> not yet available in this build (%s)\n' "$*"
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# hello: true once the control socket answers a hello.
hello() {
	printf '%s\n' '{"op":"hello"}' |
	    timeout 3 socat -t 2 - "UNIX-CONNECT:$sock" 2>/dev/null |
	    grep -q '"ok" *: *true'
}

# json_get FIELD: print FIELD of the JSON object on stdin (dotted path).
json_get() {
	python3 -c 'import json, sys
v = json.loads(sys.stdin.readline())
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None else v)' "$1"
}

echo "# sandd demo: $("$SANDD" --version 2>/dev/null || echo "sandd (version unknown)")"
echo "# private folder: $tmp"

# --- start the controller ------------------------------------------------
started=0
for attempt in 1 2 3; do
	port=$(free_port)
	say "Start the controller: WebSocket listener for workers on" \
	    "127.0.0.1:$port, control socket for clients at $sock"
	show sandd serve --listen "127.0.0.1:$port" --control "$sock" "&"
	setsid "$SANDD" serve --listen "127.0.0.1:$port" --control "$sock" \
	    >"$tmp/serve.out" 2>"$tmp/serve.log" </dev/null &
	serve_pid=$!
	for i in $(seq 100); do
		if hello; then
			started=1
			break
		fi
		kill -0 "$serve_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ "$started" -eq 1 ] && break
	echo "# controller did not come up (attempt $attempt); its log:"
	tail -n 5 "$tmp/serve.log" | sed 's/^/#   /'
	stop "$serve_pid"
	serve_pid=""
done
if [ "$started" -ne 1 ]; then
	echo "demo: could not start 'sandd serve'" >&2
	exit 1
fi
echo "# ready: the control socket answers"

# --- start a worker ------------------------------------------------------
say "Start a worker named 'demo' that dials the controller"
show sandd worker --server-url "ws://127.0.0.1:$port/ws" --id demo "&"
setsid "$SANDD" worker --server-url "ws://127.0.0.1:$port/ws" --id demo \
    >"$tmp/worker.out" 2>"$tmp/worker.log" </dev/null &
worker_pid=$!

say "Wait until it has registered (sandd wait returns as soon as it has)"
show sandd wait -S "$sock" -t 10 demo
# wait_op: the same through the protocol's wait op, for builds whose
# client subcommand is not there yet.
wait_op() {
	printf '%s\n' '{"op":"wait","worker":"demo","timeout":10}' |
	    timeout 20 socat -t 20 - "UNIX-CONNECT:$sock" |
	    grep -q '"ok" *: *true'
}
if ! timeout 20 "$SANDD" wait -S "$sock" -t 10 demo >/dev/null &&
    ! { echo "# (sandd wait failed; asking with the wait op over socat)";
    wait_op; }; then
	kill -0 "$worker_pid" 2>/dev/null ||
	    echo "demo: the worker has exited" >&2
	echo "demo: worker 'demo' did not register; its log:" >&2
	tail -n 10 "$tmp/worker.log" | sed 's/^/#   /' >&2
	exit 1
fi
echo "# worker 'demo' is connected"

export SANDD_CONTROL="$sock"

# A client that goes away must not kill this script with SIGPIPE (set only
# now, so that serve and worker, and the commands it runs, keep SIGPIPE).
trap '' PIPE

# --- workers -------------------------------------------------------------
say "List the connected workers (SANDD_CONTROL names the socket from now on)"
show sandd workers
timeout 20 "$SANDD" workers || na "sandd workers"

# --- exec ----------------------------------------------------------------
say "Run a command on the worker; sandd exits with the command's status"
show sandd exec demo -- uname -a
exec_ok=0
if out=$(timeout 30 "$SANDD" exec demo -- uname -a) && [ -n "$out" ]; then
	printf '%s\n' "$out"
	exec_ok=1
else
	printf '%s\n' "$out"
	echo "# -> FAILED: sandd exec did not run the command"
fi

if [ "$exec_ok" -eq 1 ]; then
	show 'sandd exec demo -- sh -c "exit 3"; echo "exit status $?"'
	timeout 30 "$SANDD" exec demo -- sh -c 'exit 3'
	echo "exit status $?"
fi

# --- exec over the control socket with socat ----------------------------
say "The same over the control socket: one JSON line in, one JSON line out"
req='{"op":"exec","worker":"demo","cmd":"uname -a"}'
show "printf '%s\\n' '$req' | socat - UNIX-CONNECT:\$SANDD_CONTROL"
reply=$(printf '%s\n' "$req" | timeout 30 socat -t 30 - "UNIX-CONNECT:$sock")
if printf '%s\n' "$reply" | grep -q '"ok" *: *true'; then
	printf '%s\n' "$reply"
else
	printf '%s\n' "$reply"
	na "exec over the control socket"
fi

# --- a shell session through sandd ctl ----------------------------------
say "A shell session: state (here the current folder) persists between runs"
echo "# sandd ctl passes JSON lines from stdin to the socket, replies to stdout"
session_demo() {
	local line sid
	if printf '%s\n' '{"op":"hello"}' |
	    timeout 10 "$SANDD" ctl 2>/dev/null | grep -q '"ok" *: *true'; then
		coproc CTL { exec "$SANDD" ctl 2>"$tmp/ctl.err"; }
	else
		echo "# (sandd ctl is not available in this build; socat carries" \
		    "the same lines)"
		coproc CTL { exec socat - "UNIX-CONNECT:$sock" \
		    2>"$tmp/ctl.err"; }
	fi
	ctl_pid=$CTL_PID
	local in=${CTL[1]} outfd=${CTL[0]}

	# reply ID: read messages until the final one for request ID.
	reply() {
		local l
		while IFS= read -r -t 20 l <&"$outfd"; do
			local squeezed=${l//[[:space:]]/}
			case "$squeezed" in
			*'"event":'*) continue ;;
			*"\"id\":$1,"*|*"\"id\":$1}"*) ;;
			*) continue ;;
			esac
			printf '%s\n' "$l"
			return 0
		done
		return 1
	}
	send() {
		printf '> %s\n' "$1"
		{ printf '%s\n' "$1" >&"$in"; } 2>/dev/null
	}

	send '{"id":1,"op":"session.open","worker":"demo","argv":["/bin/sh"],"attach":false}'
	line=$(reply 1) || {
		na "session.open: no reply; $(head -c 200 "$tmp/ctl.err")"
		return 1
	}
	printf '< %s\n' "$line"
	sid=$(printf '%s\n' "$line" | json_get session)
	if [ -z "$sid" ] || [ "$sid" = "null" ]; then
		na "session.open"
		return 1
	fi

	send "{\"id\":2,\"op\":\"session.run\",\"session\":\"$sid\",\"cmd\":\"cd /tmp; pwd\",\"timeout\":10}"
	line=$(reply 2) || { na "session.run: no reply"; return 1; }
	printf '< %s\n' "$line"
	printf '%s\n' "$line" | grep -q '"ok" *: *true' ||
	    { na "session.run"; return 1; }
	send "{\"id\":3,\"op\":\"session.run\",\"session\":\"$sid\",\"cmd\":\"pwd\",\"timeout\":10}"
	line=$(reply 3) || { na "session.run: no reply"; return 1; }
	printf '< %s\n' "$line"
	echo "# output of the second run: $(printf '%s\n' "$line" | json_get output)"

	send "{\"id\":4,\"op\":\"session.close\",\"session\":\"$sid\"}"
	line=$(reply 4) || { na "session.close: no reply"; return 1; }
	printf '< %s\n' "$line"
	return 0
}
session_demo
if [ -n "$ctl_pid" ]; then
	stop "$ctl_pid"
	ctl_pid=""
fi

# --- files ---------------------------------------------------------------
say "Copy a file to the worker and back, then compare digests"
head -c 1048576 /dev/urandom >"$tmp/random.bin"
show sandd cp "$tmp/random.bin" "demo:$tmp/on-worker.bin"
if timeout 60 "$SANDD" cp "$tmp/random.bin" "demo:$tmp/on-worker.bin"; then
	show sandd cp "demo:$tmp/on-worker.bin" "$tmp/back.bin"
	if timeout 60 "$SANDD" cp "demo:$tmp/on-worker.bin" "$tmp/back.bin"; then
		show sha256sum random.bin back.bin
		a=$(sha256sum <"$tmp/random.bin" | cut -d' ' -f1)
		b=$(sha256sum <"$tmp/back.bin" | cut -d' ' -f1)
		echo "$a  random.bin"
		echo "$b  back.bin"
		if [ "$a" = "$b" ]; then
			echo "# identical: 1 MiB went there and back"
		else
			echo "# -> FAILED: the copy differs"
		fi
	else
		na "sandd cp from a worker"
	fi
else
	na "sandd cp to a worker"
fi

say "Done; stopping the worker and the controller"
if [ "$exec_ok" -ne 1 ]; then
	echo "# the exec part failed; serve log tail:"
	tail -n 10 "$tmp/serve.log" | sed 's/^/#   /'
	exit 1
fi
exit 0
