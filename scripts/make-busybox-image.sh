#!/usr/bin/env bash
# Builds a minimal busybox root filesystem tarball for `mydocker image import`.
#
#   scripts/make-busybox-image.sh OUT.tar
#
# The tree holds Debian's statically linked busybox (package busybox-static,
# installed with apt-get when /bin/busybox is missing), one symlink per applet
# pointing to /bin/busybox, the usual top-level directories and a few files
# in /etc. Entries are owned by 0:0 (numeric) and the archive is reproducible:
# names are sorted and every mtime is that of the busybox binary, so running
# the script twice gives the same bytes. Prints the tarball's path.
set -euo pipefail

usage() { echo "usage: $0 OUT.tar" >&2; exit 2; }
[ $# -eq 1 ] || usage
out=$1
[ -n "$out" ] || usage

busybox=/bin/busybox
if [ ! -x "$busybox" ]; then
    echo "$busybox not found; installing busybox-static" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq busybox-static >&2
fi
# A dynamically linked busybox (Debian's plain `busybox` package) would not
# run inside a rootfs without its libraries.
ldd_out=$(ldd "$busybox" 2>&1 || true)
if [[ "$ldd_out" != *"not a dynamic executable"* ]]; then
    echo "$busybox is dynamically linked; install busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi

umask 022
work=$(mktemp -d "${TMPDIR:-/tmp}/busybox-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir "$rootfs"

mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,var,tmp,root}
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

cp "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"

# One symlink per applet, e.g. "bin/sh" or "usr/bin/nc" -> /bin/busybox.
while IFS= read -r applet; do
    applet=${applet%/}
    case "$applet" in
        "" | bin/busybox | /* | *..*) continue ;;
    esac
    mkdir -p "$rootfs/$(dirname "$applet")"
    ln -sfn /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)

cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
GROUP
echo mydocker > "$rootfs/etc/hostname"
cat > "$rootfs/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
HOSTS
chmod 0644 "$rootfs"/etc/{passwd,group,hostname,hosts}

# Write next to the destination, then rename: an interrupted run never leaves
# a truncated OUT.tar behind.
mkdir -p "$(dirname "$out")"
tmp_out=$(mktemp "$(dirname "$out")/.$(basename "$out").XXXXXX")
trap 'rm -rf "$work"; rm -f "$tmp_out"' EXIT
mtime=$(stat -c %Y "$busybox")
tar --create --file "$tmp_out" --directory "$rootfs" \
    --numeric-owner --owner=0 --group=0 \
    --sort=name --mtime="@$mtime" --format=gnu .
chmod 0644 "$tmp_out"
mv -f "$tmp_out" "$out"
echo "$out"
