# bash completion for ul2tp(8) and ul2tpd(8).
# Install: cp completions/ul2tp.bash /usr/share/bash-completion/completions/ul2tp
#          ln -s ul2tp /usr/share/bash-completion/completions/ul2tpd
# The grammar is iproute2's `ip l2tp` (docs/cli.md); keywords are offered in full.

# Keywords that take a value (their value is not a keyword).
_ul2tp_valued=" remote local tunnel_id tid peer_tunnel_id ptid session_id sid peer_session_id psid encap udp_sport udp_dport udp_csum udp6_csum_tx udp6_csum_rx version name cookie peer_cookie seq l2spec_type pw_type vlan_id reorder_timeout lns_mode offset peer_offset user password "

_ul2tp()
{
    local cur prev i w cmd="" obj="" words=() kw="" used=" "
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    COMPREPLY=()

    # Values of the global options.
    case "$prev" in
        -n|-ne|-net|-netn|-netns|--netns)
            COMPREPLY=( $(compgen -W "$(ls /run/netns 2>/dev/null)" -- "$cur") )
            return 0 ;;
        --socket|-socket)
            COMPREPLY=( $(compgen -f -- "$cur") )
            return 0 ;;
    esac

    # The words after the global options (and their values).
    i=1
    while [ "$i" -lt "$COMP_CWORD" ]; do
        w="${COMP_WORDS[i]}"
        case "$w" in
            -n|-ne|-net|-netn|-netns|--netns|--socket|-socket) i=$((i + 2)); continue ;;
            -*) i=$((i + 1)); continue ;;
        esac
        break
    done
    while [ "$i" -lt "$COMP_CWORD" ]; do
        words+=( "${COMP_WORDS[i]}" )
        i=$((i + 1))
    done

    if [ "${#words[@]}" -eq 0 ]; then
        if [[ "$cur" == -* ]]; then
            COMPREPLY=( $(compgen -W "-j -json -p -pretty -s -stats -statistics -n -netns --socket -V -Version -h -help" -- "$cur") )
        else
            COMPREPLY=( $(compgen -W "add del show modify debug monitor trace connect disconnect dial hangup ppp help" -- "$cur") )
        fi
        return 0
    fi

    case "${words[0]}" in
        a|ad|add) cmd=add ;;
        d|de|del|dele|delet|delete) cmd=del ;;
        s|sh|sho|show|l|li|lis|list|ls|lst) cmd=show ;;
        m|mo|mod|modi|modif|modify) cmd=modify ;;
        deb|debu|debug) cmd=debug ;;
        mon|moni|monit|monito|monitor) cmd=monitor ;;
        t|tr|tra|trac|trace) cmd=trace ;;
        connect|disconnect|dial|hangup|ppp) cmd="${words[0]}" ;;
        *) return 0 ;;
    esac

    if [ "${#words[@]}" -eq 1 ]; then
        case "$cmd" in
            add|del|modify) COMPREPLY=( $(compgen -W "tunnel session" -- "$cur") ) ;;
            show) COMPREPLY=( $(compgen -W "tunnel session ppp lac" -- "$cur") ) ;;
            debug) COMPREPLY=( $(compgen -W "tunnels pppol2tp" -- "$cur") ) ;;
            trace) COMPREPLY=( $(compgen -W "on off" -- "$cur") ) ;;
            connect) COMPREPLY=( $(compgen -W "remote session" -- "$cur") ) ;;
            disconnect) COMPREPLY=( $(compgen -W "tunnel_id session_id" -- "$cur") ) ;;
            ppp) COMPREPLY=( $(compgen -W "start" -- "$cur") ) ;;
        esac
        return 0
    fi
    obj="${words[1]}"

    # The value of a keyword.
    case "$prev" in
        encap) COMPREPLY=( $(compgen -W "ip udp" -- "$cur") ); return 0 ;;
        udp_csum|udp6_csum_tx|udp6_csum_rx|lns_mode) COMPREPLY=( $(compgen -W "on off" -- "$cur") ); return 0 ;;
        seq)
            if [ "$cmd" = connect ]; then
                COMPREPLY=( $(compgen -W "recv" -- "$cur") )
            else
                COMPREPLY=( $(compgen -W "none send recv both" -- "$cur") )
            fi
            return 0 ;;
        l2spec_type) COMPREPLY=( $(compgen -W "none default" -- "$cur") ); return 0 ;;
        pw_type)
            COMPREPLY=( $(compgen -W "eth eth_vlan ppp" -- "$cur") )
            return 0 ;;
        version) COMPREPLY=( $(compgen -W "2 3" -- "$cur") ); return 0 ;;
    esac
    if [[ "$_ul2tp_valued" == *" $prev "* ]] && [ "$COMP_CWORD" -gt 1 ]; then
        # A value the shell cannot guess (an id, an address, a name).
        return 0
    fi

    case "$cmd:$obj" in
        add:tunnel) kw="remote local tunnel_id peer_tunnel_id encap udp_sport udp_dport udp_csum udp6_csum_tx udp6_csum_rx version" ;;
        add:session) kw="name tunnel_id session_id peer_session_id cookie peer_cookie seq l2spec_type pw_type vlan_id reorder_timeout lns_mode" ;;
        del:tunnel|show:tunnel|modify:tunnel) kw="tunnel_id" ;;
        del:session|show:session|show:ppp) kw="tunnel_id session_id" ;;
        modify:session) kw="tunnel_id session_id seq lns_mode reorder_timeout" ;;
        trace:on|trace:off|disconnect:*) kw="tunnel_id session_id" ;;
        connect:session) kw="tunnel_id pw_type vlan_id name seq wait" ;;
        connect:*) kw="encap udp_dport version wait" ;;
        ppp:start) kw="tunnel_id session_id local remote user password" ;;
        dial:*) [ "${#words[@]}" -eq 2 ] && kw="wait" || return 0 ;;
        *) return 0 ;;
    esac
    # Offer each keyword once.
    for w in "${words[@]}"; do used+="$w "; done
    local offer=() k
    for k in $kw; do
        [[ "$used" == *" $k "* ]] || offer+=( "$k" )
    done
    COMPREPLY=( $(compgen -W "${offer[*]}" -- "$cur") )
    return 0
}
complete -F _ul2tp ul2tp

_ul2tpd()
{
    local cur prev
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    COMPREPLY=()
    case "$prev" in
        --socket|--config) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
        --log)
            COMPREPLY=( $(compgen -W "error warn info debug trace ul2tpd=debug" -- "$cur") )
            return 0 ;;
        --workers) return 0 ;;
    esac
    COMPREPLY=( $(compgen -W "--socket --config --check-config --log --workers --no-offload -h --help -V --version" -- "$cur") )
    return 0
}
complete -F _ul2tpd ul2tpd
