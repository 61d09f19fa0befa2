#!/bin/sh
# Package a tree staged by `DESTDIR=STAGE meson install` as a Debian package:
#
#   meson setup --prefix=/usr -Dshim=compile build && meson compile -C build
#   DESTDIR=$PWD/stage meson install -C build
#   deb/build-deb.sh stage toolbox_1.0-1.deb
#
# (debhelper does the same with a debian/ folder; this is the short way.)
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 STAGE OUT.deb" >&2
	exit 2
fi
stage=$1
out=$2
mkdir -p "$stage/DEBIAN"
sed "s/@ARCH@/$(dpkg --print-architecture)/" "$(dirname "$0")/control" >"$stage/DEBIAN/control"
exec dpkg-deb --build --root-owner-group "$stage" "$out"
