#!/usr/bin/env bash
# Installs what the network-namespace interop tests need, if missing (Debian/Ubuntu).
# Idempotent and quiet when everything is already there. Needs root.
set -euo pipefail

# command -> Debian package
declare -A NEED=(
    [nft]=nftables
    [tshark]=tshark
    [tcpdump]=tcpdump
    [curl]=curl
    [ip]=iproute2
    [ping]=iputils-ping
    [pkill]=procps
    [nstat]=iproute2
    [python3]=python3
    [microsocks]=microsocks
    [mptcpize]=mptcpize
    [redsocks]=redsocks
)

missing=()
for cmd in "${!NEED[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        pkg=${NEED[$cmd]}
        case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
    fi
done

# Python module -> Debian package (t_metrics parses scrapes with the reference
# Prometheus text parser). Debian's python3 has it once installed, even where
# another python3 (pyenv, a venv) comes first in PATH: tests look in both.
declare -A NEED_PY=(
    [prometheus_client]=python3-prometheus-client
)
for mod in "${!NEED_PY[@]}"; do
    if ! python3 -c "import $mod" >/dev/null 2>&1 &&
        ! /usr/bin/python3 -c "import $mod" >/dev/null 2>&1; then
        missing+=("${NEED_PY[$mod]}")
    fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]} and not root; install them by hand" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]} and no apt-get" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
