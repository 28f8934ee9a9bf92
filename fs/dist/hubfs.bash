# bash completion for hubfs(1)                                -*- shell-script -*-
# Installed as .../bash-completion/completions/hubfs. The option names below
# are checked against `hubfs --help` by tests/mount/test_docs.py.

_hubfs_mounts()
{
	# mountpoints of type fuse.hubfs (octal escapes of /proc/self/mounts undone)
	local src mnt type rest
	while read -r src mnt type rest; do
		[[ $type == fuse.hubfs ]] && printf '%b\n' "$mnt"
	done </proc/self/mounts 2>/dev/null
}

_hubfs_profiles()
{
	local conf=${XDG_CONFIG_HOME:-$HOME/.config}/hubfs/config
	[[ -r $conf ]] || return
	sed -n 's/^[[:space:]]*\[profile[[:space:]]\{1,\}\([A-Za-z0-9._-]\{1,\}\)\][[:space:]]*$/profile:\1/p' "$conf"
}

_hubfs()
{
	local cur prev words cword
	_init_completion -n =: || return

	local opts='api_url= token_file= ca_file= portal= ttl= op_timeout= index_delay=
		relist_interval= rate_limit= search_per_sec= cache_mb= cache= cache_disk_mb= props_contacts=
		props_companies= props_deals= props_tickets= types= writeback_delay_ms= drain_timeout=
		allow_delete ro umask= allow_other log_level= debug clone_fd max_idle_threads=
		max_threads= webhook_listen= webhook_path= webhook_secret_file= webhook_public_url=
		webhook_v1 audit_view= redis= redis_password_file='

	if [[ ${words[1]-} == status ]]; then
		case $prev in
		--interval) return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '--json --watch --interval' -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_hubfs_mounts)" -- "$cur"))
		fi
		return
	fi
	if [[ ${words[1]-} == sync ]]; then
		[[ $cword -eq 2 ]] && COMPREPLY=($(compgen -W "$(_hubfs_mounts)" -- "$cur"))
		return
	fi

	if [[ $prev == -o ]]; then
		# the last of a comma-separated list
		local head=${cur%,*} last=${cur##*,}
		[[ $head == "$cur" ]] && head= || head+=,
		case $last in
		token_file=* | ca_file=* | redis_password_file=*)
			local f
			COMPREPLY=($(compgen -f -- "${last#*=}"))
			for f in "${!COMPREPLY[@]}"; do COMPREPLY[f]=$head${last%%=*}=${COMPREPLY[f]}; done
			;;
		log_level=*)
			COMPREPLY=($(compgen -P "$head" -W 'log_level=error log_level=warning
				log_level=notice log_level=info log_level=debug' -- "$last"))
			;;
		props_*=*)
			COMPREPLY=($(compgen -P "$head${last%%=*}=" -W 'default all' -- "${last#*=}"))
			;;
		*)
			COMPREPLY=($(compgen -P "$head" -W "$opts" -- "$last"))
			;;
		esac
		[[ ${COMPREPLY-} == *= ]] && compopt -o nospace
		return
	fi

	case $cur in
	-*)
		COMPREPLY=($(compgen -W '-f -d -s -o -h --help -V --version' -- "$cur"))
		return
		;;
	esac

	# First word: a command, a SOURCE or a mountpoint; then a mountpoint.
	local i positional=0
	for ((i = 1; i < cword; i++)); do
		[[ ${words[i]} == -o ]] && { ((i++)); continue; }
		[[ ${words[i]} == -* ]] || ((positional++))
	done
	if ((positional == 0)); then
		COMPREPLY=($(compgen -W "status sync hubspot hubspot: $(_hubfs_profiles)" -- "$cur"))
		[[ ${COMPREPLY-} == *: ]] && compopt -o nospace
	fi
	_filedir -d
} &&
	complete -F _hubfs hubfs

# ex: filetype=sh
