# shellcheck shell=bash
# Helpers of the attack tests (t_syn_flood, t_idle_conns, t_ooo_flood,
# t_join_flood), sourced after lib.sh:
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib_atk.sh"
#
# atk_up: a third namespace ATK ($PFX-atk), the attacker, on a veth of its own to
# HOST (ATK a0 10.3.0.1/24 -- ha 10.3.0.2/24 HOST, rp_filter 0 on ha so HOST
# forwards spoofed sources into mptun's TUN); it is on no legitimate path. Spoofed
# sources come from the test-only prefix ATK_SPOOF (10.99.0.0/16), which HOST
# blackholes: what mptun sends to them dies in HOST, nothing leaves the machine
# (the namespaces have no route out anyway). In ATK, nftables drops the RSTs ATK's
# own kernel would send to segments of connections it never opened (the attack
# scripts' raw sockets mark their packets with rawtcp.RAW_MARK, which passes), and
# in HOST an nftables counter `atk2tun` counts what ATK got into the TUN.
#
# mptun_rss / mptun_hwm: the daemon's VmRSS / VmHWM in KiB (/proc/PID/status);
# mptun_hwm_reset restarts VmHWM at the current RSS.
# rss_sampler_start FILE: samples VmRSS every 20 ms into FILE ("epoch_s kib" lines)
# until the test ends; rss_max_since FILE EPOCH prints the largest sample taken
# after EPOCH (an $EPOCHREALTIME).

ATK="$PFX-atk"
ATK_SPOOF=10.99.0.0/16
ATK_ADDR=10.3.0.1

atk_up() {
    ip netns add "$ATK"
    EXTRA_NS+=("$ATK")
    ip -n "$ATK" link set lo up
    ip netns exec "$ATK" sysctl -qw net.ipv4.conf.all.rp_filter=0
    ip netns exec "$ATK" sysctl -qw net.ipv4.conf.default.rp_filter=0
    ip link add a0 netns "$ATK" type veth peer name ha netns "$HOST"
    ip -n "$ATK" addr add "$ATK_ADDR/24" dev a0
    ip -n "$HOST" addr add 10.3.0.2/24 dev ha
    host_exec sysctl -qw net.ipv4.conf.ha.rp_filter=0
    ip -n "$ATK" link set a0 up
    ip -n "$HOST" link set ha up
    ip -n "$ATK" route add default via 10.3.0.2
    ip -n "$HOST" route add blackhole "$ATK_SPOOF"
    command -v nft >/dev/null || fail "nft missing: run tests/netns/install-deps.sh"
    ip netns exec "$ATK" nft -f - <<EOF
table ip atk {
    chain out {
        type filter hook output priority 0; policy accept;
        meta mark != 0x4154 tcp flags & rst == rst counter drop comment "kernel_rst"
    }
}
EOF
    host_exec nft -f - <<EOF
table inet atkcount {
    chain atkfwd {
        type filter hook forward priority 0; policy accept;
        iifname "ha" oifname "$TUN" counter comment "atk2tun"
        iifname "$TUN" oifname "ha" counter comment "tun2atk"
    }
}
EOF
    [ -n "$(atk2tun)" ] || fail "nftables counter atk2tun not installed in HOST"
    # ARP for the router now, not during a timed flood.
    ip netns exec "$ATK" ping -c 1 -W 2 10.3.0.2 >/dev/null || fail "ATK cannot reach HOST"
}

# atk2tun / tun2atk: packets HOST forwarded from ATK into mptun's TUN / back.
atk2tun() {
    host_exec nft list chain inet atkcount atkfwd | sed -n 's/.*counter packets \([0-9]*\) .*atk2tun.*/\1/p'
}
tun2atk() {
    host_exec nft list chain inet atkcount atkfwd | sed -n 's/.*counter packets \([0-9]*\) .*tun2atk.*/\1/p'
}

mptun_rss() { mptun_alive && awk '/^VmRSS:/ {print $2}' "/proc/$MPTUN_PID/status"; }
mptun_hwm() { mptun_alive && awk '/^VmHWM:/ {print $2}' "/proc/$MPTUN_PID/status"; }
# mptun_hwm_reset: VmHWM from now on (clear_refs 5, Linux >= 4.0). Without it
# VmHWM is the peak since mptun started: a peak before a measured phase (a
# warm-up transfer whose buffers were given back) would count as the phase's.
mptun_hwm_reset() { mptun_alive && echo 5 >"/proc/$MPTUN_PID/clear_refs"; }
# mptun_alive: fails the test, saying so, when the daemon has died (the tail of
# its log follows), instead of an awk error about /proc.
mptun_alive() {
    [ -n "${MPTUN_PID:-}" ] && [ -r "/proc/$MPTUN_PID/status" ] && return 0
    local rc=""
    [ -n "${MPTUN_PID:-}" ] && { wait "$MPTUN_PID" 2>/dev/null || rc=$?; }
    fail "mptun (pid ${MPTUN_PID:-none}) is gone${rc:+ (exit status $rc)}"
}

# mptun_check_pid: MPTUN_PID must be the daemon itself (ip netns exec execs it),
# or the RSS figures would be ip's.
mptun_check_pid() {
    local comm
    comm=$(cat "/proc/$MPTUN_PID/comm" 2>/dev/null) || fail "no process $MPTUN_PID"
    [ "$comm" = mptun ] || fail "MPTUN_PID $MPTUN_PID is '$comm', not mptun: RSS would be wrong"
}

rss_sampler_start() {
    local out=$1 pid=$MPTUN_PID
    (
        while [ -r "/proc/$pid/status" ]; do
            echo "$EPOCHREALTIME $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)"
            sleep 0.02
        done
    ) >"$out" 2>/dev/null &
    BG_PIDS+=("$!")
}

rss_max_since() {
    awk -v t0="$2" '$1 >= t0 && $2 + 0 > m {m = $2 + 0} END {print m + 0}' "$1"
}

# kib_mib KIB: "12.3" (MiB, one decimal).
kib_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# json_file_eval FILE EXPR: json_eval on a file (a status with thousands of
# connections is longer than one argument may be).
json_file_eval() {
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
if v is None:
    sys.exit(1)
print(json.dumps(v) if isinstance(v, (list, dict, bool)) else v)
' "$1" "$2"
}

# mptun_status_file FILE: `mptun status --json` into FILE.
mptun_status_file() { mptun_status_json >"$1"; }
