# bash completion for sandd(8)
#
# Install: copy to /usr/share/bash-completion/completions/sandd, or
# source it from ~/.bashrc.
#
# Completes subcommands, every option of every subcommand (and of the
# worker run without its subcommand, `sandd --server-url URL --daemon-id
# ID`), file and folder arguments, and asks the controller (at most 2
# seconds, on the socket named by -S/--socket or $SANDD_CONTROL) for
# worker ids where a worker goes, session ids for attach, and workspace
# names after -W/--workspace.

# The sandd being completed: the word typed, when it is a path to one.
_sandd_bin()
{
	case $1 in
	*/*) [ -x "$1" ] && { printf '%s\n' "$1"; return; } ;;
	esac
	printf '%s\n' sandd
}

# Run a client subcommand of sandd $1 on socket $2 (may be empty).
_sandd_ask()
{
	local bin=$1 sock=$2
	shift 2
	timeout 2 "$bin" "$@" ${sock:+-S "$sock"} 2>/dev/null
}

# The values of the string field $1 in the JSON on stdin, one a line.
_sandd_json_field()
{
	grep -o "\"$1\" *: *\"[^\"]*\"" | sed 's/.*"\([^"]*\)"$/\1/'
}

# Worker ids (connected or inside their resume window).
_sandd_workers()
{
	_sandd_ask "$1" "$2" workers --json | _sandd_json_field id
}

# Session ids.
_sandd_sessions()
{
	_sandd_ask "$1" "$2" sessions --json | _sandd_json_field session
}

# Workspace names, by the workspace.list op; nothing where the
# controller does not know the op (it answers unknown_op).
_sandd_workspaces()
{
	printf '%s\n' '{"op":"workspace.list","id":1}' |
	    _sandd_ask "$1" "$2" ctl | _sandd_json_field workspace
}

# The options of subcommand $1, as its --help lists them.
_sandd_options()
{
	local common="-S --socket -h --help"
	case $1 in
	serve)
		echo "--listen --control --control-mode --state-dir --token-file
		    --tls-cert --tls-key --tls-client-ca --tls-any-id
		    --resume-window --ping-interval --ping-timeout --max-line
		    --max-output --max-handshakes --max-handshakes-per-addr
		    --handshake-rate
		    --metrics-token-file --metrics-listen --acl --rate
		    --max-inflight --max-conns --audit --record --ws-mask
		    --syslog -v --verbose -h --help"
		;;
	worker)
		echo "-s --server-url -d --daemon-id --id -l --label --labels
		    --token-file --ca --tls-cert --tls-key --state-dir --root
		    --allow --allow-env --isolate --allow-host-network
		    --allow-setid --max-jobs --max-sessions --max-workspaces
		    --max-workspace-memory --max-workspace-pids
		    --max-workspace-cpu --max-workspace-disk --window
		    --ring-size --session-linger --ping-interval --ping-timeout --ws-mask --syslog -v
		    --verbose -h --help"
		;;
	exec)
		echo "-t --timeout -e --env -C --cwd -l --label --no-wait -P
		    --pty -W --workspace $common"
		;;
	shell)
		echo "--no-wait --reconnect -W --workspace $common"
		;;
	attach)
		echo "-r --readonly --since --no-wait --reconnect $common"
		;;
	sessions)
		echo "-w --worker --json $common"
		;;
	cp)
		echo "-r --recursive -p --preserve --no-wait -W --workspace
		    $common"
		;;
	workers)
		echo "-l --label -a --all --json $common"
		;;
	wait)
		echo "-t --timeout -l --label -n --count $common"
		;;
	stats)
		echo "--json $common"
		;;
	audit)
		echo "-w --worker -u --uid -s --since --json -h --help"
		;;
	ctl)
		echo "$common"
		;;
	workspace)
		echo "--memory --pids --cpu --disk --network -e --env -w --worker
		    --json --keep $common"
		;;
	audit)
		echo "-w --worker -u --uid -s --since --json -h --help"
		;;
	esac
}

# Does option $1 take the next word as its argument?
_sandd_takes_arg()
{
	case $1 in
	-S|--socket|-t|--timeout|-e|--env|-C|--cwd|-l|--label|--labels|\
	-w|--worker|-u|--uid|-n|--count|--since|-W|--workspace|-s|--server-url|\
	-d|--daemon-id|--id|--token-file|--ca|--tls-cert|--tls-key|\
	--tls-client-ca|--root|--allow|--window|--ring-size|\
	--session-linger|--listen|--control|--control-mode|\
	--resume-window|--ping-interval|--ping-timeout|--max-line|\
	--max-output|--max-handshakes|--max-handshakes-per-addr|--state-dir|\
	--handshake-rate|\
	--metrics-token-file|--metrics-listen|--acl|--rate|--max-inflight|\
	--max-conns|--audit|--record|--allow-env|--max-jobs|--max-sessions|\
	--max-workspaces|--max-workspace-memory|--max-workspace-pids|\
	--max-workspace-cpu|--max-workspace-disk|--disk)
		return 0
		;;
	esac
	return 1
}

_sandd()
{
	local cur prev words cword
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion -n : || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	local subcommands="serve worker exec shell attach sessions cp workspace
	    workers wait stats audit ctl"
	local bin cmd="" sock="" i w seen_dashdash=0 nargs=0 labels=0
	bin=$(_sandd_bin "${words[0]}")

	# A worker's option first: `sandd worker` without its name.
	case ${words[1]} in
	-h|--help|-V|--version) ;;
	-*)
		[ "$cword" -gt 1 ] && cmd=worker
		;;
	esac
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if [ "$seen_dashdash" -eq 1 ]; then
			continue
		fi
		case $w in
		--)
			[ -n "$cmd" ] && seen_dashdash=1
			continue
			;;
		-S|--socket)
			sock=${words[i + 1]}
			;;
		-l|--label)
			labels=1
			;;
		esac
		if _sandd_takes_arg "$w"; then
			i=$((i + 1))
		elif [[ $w != -* ]]; then
			if [ -z "$cmd" ]; then
				cmd=$w
			else
				nargs=$((nargs + 1))
			fi
		fi
	done
	[ -z "$sock" ] && sock=${SANDD_CONTROL:-}

	if [ -z "$cmd" ]; then
		case $cur in
		-*)
			COMPREPLY=($(compgen -W "--help --version
			    $(_sandd_options worker)" -- "$cur"))
			;;
		*)
			COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
			;;
		esac
		return 0
	fi

	# After "--" the words belong to the remote command.
	if [ "$seen_dashdash" -eq 1 ]; then
		COMPREPLY=($(compgen -c -- "$cur"))
		return 0
	fi

	# Arguments of options.
	case $prev in
	-S|--socket|--control|--token-file|--ca|--tls-cert|--tls-key|\
	--tls-client-ca|--metrics-token-file|--acl|--audit)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	-C|--cwd|--root|--state-dir|--record)
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0
		;;
	-s|--server-url)
		COMPREPLY=($(compgen -W "ws:// wss://" -- "$cur"))
		return 0
		;;
	-w|--worker)
		COMPREPLY=($(compgen -W "$(_sandd_workers "$bin" "$sock")" \
		    -- "$cur"))
		return 0
		;;
	-W|--workspace)
		COMPREPLY=($(compgen -W "$(_sandd_workspaces "$bin" "$sock")" \
		    -- "$cur"))
		return 0
		;;
	esac
	if _sandd_takes_arg "$prev"; then
		return 0
	fi

	if [[ $cur == -* ]]; then
		w=$(_sandd_options "$cmd")
		case $cmd in
		exec|shell) w="$w --" ;;
		esac
		COMPREPLY=($(compgen -W "$w" -- "$cur"))
		return 0
	fi

	case $cmd in
	exec)
		if [ "$nargs" -eq 0 ] && [ "$labels" -eq 0 ]; then
			COMPREPLY=($(compgen -W "$(_sandd_workers "$bin" \
			    "$sock")" -- "$cur"))
		elif [ "$nargs" -ge 1 ]; then
			COMPREPLY=($(compgen -c -- "$cur"))
		fi
		;;
	shell|wait)
		if [ "$nargs" -eq 0 ] && [ "$labels" -eq 0 ]; then
			COMPREPLY=($(compgen -W "$(_sandd_workers "$bin" \
			    "$sock")" -- "$cur"))
		fi
		;;
	attach)
		if [ "$nargs" -eq 0 ]; then
			COMPREPLY=($(compgen -W "$(_sandd_sessions "$bin" \
			    "$sock")" -- "$cur"))
		fi
		;;
	audit)
		[ "$nargs" -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
		;;
	cp)
		if [[ $cur == *:* ]]; then
			# Remote paths are not listed; leave the word alone.
			return 0
		fi
		COMPREPLY=($(compgen -f -- "$cur"))
		for w in $(_sandd_workers "$bin" "$sock"); do
			[[ $w: == "$cur"* ]] && COMPREPLY+=("$w:")
		done
		if [ "${#COMPREPLY[@]}" -eq 1 ] &&
		    { [[ ${COMPREPLY[0]} == *: ]] || [ -d "${COMPREPLY[0]}" ]; }
		then
			compopt -o nospace 2>/dev/null
		fi
		;;
	esac
	return 0
}
complete -F _sandd sandd
