# bash completion for sandd(8)
#
# Install: copy to /usr/share/bash-completion/completions/sandd, or
# source it from ~/.bashrc.
#
# Worker ids are completed by asking the controller (`sandd workers
# --json`, at most 2 seconds) on the socket named by -S or $SANDD_CONTROL.

_sandd_workers()
{
	local sock=$1 out
	out=$(timeout 2 sandd workers ${sock:+-S "$sock"} --json 2>/dev/null) ||
	    return 0
	printf '%s\n' "$out" | grep -o '"id" *: *"[^"]*"' |
	    sed 's/.*"\([^"]*\)"$/\1/'
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

	local subcommands="serve worker exec shell attach sessions cp workers
	    wait stats ctl"
	local cmd="" sock="" i seen_dashdash=0 nargs=0
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		--)
			[ -n "$cmd" ] && seen_dashdash=1
			;;
		-S)
			sock=${words[i + 1]}
			;;
		esac
		if [ -z "$cmd" ]; then
			case ${words[i]} in
			-*) ;;
			*) cmd=${words[i]} ;;
			esac
		elif [ "$seen_dashdash" -eq 0 ]; then
			case ${words[i]} in
			-*) ;;
			*)
				case ${words[i - 1]} in
				-S|-t|-e|-C|-l|--label|--labels|-s|--server-url|\
				-d|--daemon-id|--id|--token-file|--ca|--tls-cert|\
				--tls-key|--tls-client-ca|--root|--allow|--window|\
				--ring-size|--session-linger|--listen|--control|\
				--control-mode|--resume-window|--ping-interval|\
				--ping-timeout|--max-line|--max-output|\
				--max-handshakes) ;;
				*) nargs=$((nargs + 1)) ;;
				esac
				;;
			esac
		fi
	done
	[ -z "$sock" ] && sock=${SANDD_CONTROL:-}

	if [ -z "$cmd" ]; then
		case $cur in
		-*) COMPREPLY=($(compgen -W "--help --version" -- "$cur")) ;;
		*) COMPREPLY=($(compgen -W "$subcommands" -- "$cur")) ;;
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
	-S|--control|--token-file|--ca|--tls-cert|--tls-key|--tls-client-ca)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	-C|--root)
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0
		;;
	-s|--server-url)
		COMPREPLY=($(compgen -W "ws:// wss://" -- "$cur"))
		return 0
		;;
	-t|-e|-l|--label|--labels|-d|--daemon-id|--id|--allow|--window|\
	--ring-size|--session-linger|--listen|--control-mode|--resume-window|\
	--ping-interval|--ping-timeout|--max-line|--max-output|\
	--max-handshakes)
		return 0
		;;
	esac

	local opts=""
	case $cmd in
	serve)
		opts="--listen --control --control-mode --token-file --tls-cert
		    --tls-key --tls-client-ca --resume-window --ping-interval
		    --ping-timeout --max-line --max-output --max-handshakes --ws-mask
		    --syslog -v --help"
		;;
	worker)
		opts="-s --server-url -d --daemon-id --id -l --label --labels
		    --token-file --ca --tls-cert --tls-key --root --allow
		    --window --ring-size --session-linger --ping-interval
		    --ping-timeout --ws-mask --syslog -v --help"
		;;
	exec)
		opts="-S -t -e -C -l --help --"
		;;
	shell)
		opts="-S --help --"
		;;
	attach|sessions|stats|ctl)
		opts="-S --help"
		;;
	cp)
		opts="-S -r -p --help"
		;;
	workers)
		opts="-S -l --json --help"
		;;
	wait)
		opts="-S -t --help"
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return 0
	fi

	case $cmd in
	exec|shell|wait)
		if [ "$nargs" -eq 0 ]; then
			COMPREPLY=($(compgen -W "$(_sandd_workers "$sock")" \
			    -- "$cur"))
		fi
		;;
	cp)
		if [[ $cur == *:* ]]; then
			# Remote paths are not listed; leave the word alone.
			return 0
		fi
		local w
		COMPREPLY=($(compgen -f -- "$cur"))
		for w in $(_sandd_workers "$sock"); do
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
