#!/bin/sh
# Run one command on a sandd worker with nothing but socat.
#
# Usage: SANDD_CONTROL=/path/to/control.sock exec.sh WORKER COMMAND...
#
# Sends one `exec` request (newline-delimited JSON) to the controller's
# control socket, half-closes, and prints the reply line, e.g.
#   {"id":1,"ok":true,"worker":"w1","exit_code":0,...,"stdout":"hi\n",...}
# The server answers every request it received before our EOF and then
# closes, so socat exits by itself. Exit status: 0 when the reply is ok and
# the command exited 0, 1 otherwise (2 for bad usage).

set -u

if [ $# -lt 2 ]; then
	echo "usage: SANDD_CONTROL=PATH $0 WORKER COMMAND..." >&2
	exit 2
fi
: "${SANDD_CONTROL:?set SANDD_CONTROL to the control socket path}"

worker=$1
shift

# JSON string escaping for the shell: backslash, double quote, tab,
# carriage return and newline (enough for command lines).
json_str() {
	printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' \
	    -e 's/	/\\t/g' -e 's/\r/\\r/g' | awk '
		NR > 1 { printf "\\n" }
		{ printf "%s", $0 }'
}

request=$(printf '{"id":1,"op":"exec","worker":"%s","cmd":"%s","timeout":60}' \
    "$(json_str "$worker")" "$(json_str "$*")")

reply=$(printf '%s\n' "$request" | socat -t 120 - "UNIX-CONNECT:$SANDD_CONTROL")
status=$?
printf '%s\n' "$reply"
[ $status -eq 0 ] || exit 1
case $reply in
*'"ok":true'*'"exit_code":0'* | *'"exit_code":0'*'"ok":true'*) exit 0 ;;
*) exit 1 ;;
esac
