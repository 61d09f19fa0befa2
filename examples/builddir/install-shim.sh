#!/bin/sh
# meson install's last step: the program installed into BINDIR moves to
# LIBEXECDIR/greet/greet and a shim with that absolute target takes its place.
# Paths are the installed system's; --destdir is where they are now.
set -eu
bindir=$1
libexecdir=$2
prefix=${MESON_INSTALL_PREFIX:-/usr}
destdir_prefix=${MESON_INSTALL_DESTDIR_PREFIX:-$prefix}
destdir=${destdir_prefix%"$prefix"}
set -- install --quiet --name greet --binary "$bindir/greet" --libexec "$libexecdir/greet"
if [ -n "$destdir" ]; then
	set -- "$@" --destdir "$destdir"
fi
exec "${HOSTSHIM:-hostshim}" "$@"
