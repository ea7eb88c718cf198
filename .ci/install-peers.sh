#!/usr/bin/env bash
# Debian packages and other peers that the interop tests need (tests skip without them).
#
#   opendkim                         OpenDKIM's milter daemon, which the OpenDKIM-tables tests
#                                    run on the same tables as fastdkim
#   opendkim-tools, libopendkim-dev  OpenDKIM: the library and headers the C harness
#                                    of tests/interop is built over
#   gcc, libc6-dev                   to build that harness
#   libmail-dkim-perl                Mail::DKIM (and Net::DNS), driven by a Perl script
#   knot                             Knot DNS, the authoritative server the tests start
#   miltertest                       OpenDKIM's milter client: drives the fastdkim milter with
#                                    Lua scripts (tests/test_milter_miltertest.py)
#   postfix                          the MTA the milter tests start on 127.0.0.1, with their own
#                                    config_directory and queue (tests/test_milter_postfix.py)
#
# dkimpy, pynacl and kilter.protocol (the milter's protocol library) come from PyPI with the
# project's test extras.
# Idempotent: when everything is installed already it only checks, and is quick.
set -euo pipefail

packages=(opendkim opendkim-tools libopendkim-dev libmail-dkim-perl knot gcc libc6-dev miltertest postfix)

missing=()
for p in "${packages[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-peers: all present (${packages[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers: need root to install: ${missing[*]}" >&2
    exit 1
fi

echo "install-peers: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure the system's own instance: not at all (the
# tests start instances of their own).
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get update -q >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-peers: apt-get update failed" >&2
    exit 1
fi
# Installing a server package must not start a system service: the tests
# start their own Knot and Postfix on free ports.
policy_rc=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
    chmod 755 "$policy_rc"
    created_policy=1
fi
status=0
apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1 || status=$?
if [ "$created_policy" -eq 1 ]; then
    rm -f "$policy_rc"
fi
if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    echo "install-peers: apt-get install failed (exit $status): ${missing[*]}" >&2
    exit "$status"
fi
echo "install-peers: installed ${missing[*]}"
