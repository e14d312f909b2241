#!/usr/bin/env bash
# Multicast behaviour that the loopback interface cannot show: IP_MULTICAST_LOOP off (lo echoes
# every datagram sent out of it) and IPv6 multicast delivery (lo has no IPv6 multicast route).
# Runs UDPMulticastTests in a private network namespace (root and unshare(1) needed) with a tap
# device that has no carrier, so nothing ever leaves the namespace; the tests joined to its groups
# send with TTL 0. Usage: .ci/multicast-netns.sh [extra `swift test` arguments, e.g. --scratch-path]
# after a `swift build --build-tests`.
set -euo pipefail
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
    echo "multicast-netns: needs root, unshare and ip; skipped"
    exit 0
fi
exec unshare --net bash -euo pipefail -c '
    ip link set lo up
    ip tuntap add dev iopool-mc0 mode tap
    ip link set iopool-mc0 up
    ip addr add 10.213.0.1/24 dev iopool-mc0
    ip -6 addr add fd13::1/64 dev iopool-mc0 nodad
    ip -6 route add multicast ff00::/8 dev iopool-mc0 table local
    IOPOOL_TEST_MULTICAST_INTERFACE=iopool-mc0 swift test --skip-build --filter UDPMulticastTests "$@"
' multicast-netns "$@"
