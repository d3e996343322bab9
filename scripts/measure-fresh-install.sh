#!/usr/bin/env bash
# Measures what the README's set-up commands cost on a fresh Debian 12 before any compiling: a
# minimal Debian 12 (debootstrap --variant=minbase) in a scratch folder, then, timed, the package
# installation that `make demo` (or `make test`) does first, run inside it.
#
#   sudo scripts/measure-fresh-install.sh [demo|all] [SCRATCH]
#
# Prints the seconds of the timed step and the chroot's size. Needs root (debootstrap, chroot) and
# Debian's package mirror. The scratch folder (default: a new temporary one) is removed at the end.
set -euo pipefail
PROFILE=${1:-demo}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${2:-$(mktemp -d /tmp/tweedie-fresh-XXXXXX)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap >/dev/null
cleanup() { umount "$SCRATCH/proc" 2>/dev/null || true; rm -rf "$SCRATCH"; }
trap cleanup EXIT
echo "measure-fresh-install: debootstrap bookworm (minbase) into $SCRATCH (not timed)"
debootstrap --variant=minbase bookworm "$SCRATCH" "$MIRROR" >/dev/null
cp /etc/resolv.conf "$SCRATCH/etc/resolv.conf"
mount -t proc proc "$SCRATCH/proc"
cp "$ROOT/scripts/install-deps.sh" "$SCRATCH/install-deps.sh"
arg=""
[ "$PROFILE" = "demo" ] && arg="demo"
start=$(date +%s)
chroot "$SCRATCH" bash /install-deps.sh $arg >"$SCRATCH.log" 2>&1 || { tail -20 "$SCRATCH.log"; exit 1; }
end=$(date +%s)
size=$(du -sh --exclude=proc "$SCRATCH" | cut -f1)
echo "measure-fresh-install: profile '$PROFILE': packages installed in $((end - start)) s on a fresh minbase Debian 12 ($size after)"
rm -f "$SCRATCH.log"
