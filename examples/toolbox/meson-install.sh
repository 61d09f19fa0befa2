#!/bin/sh
# Toolbx's meson install step: after meson has installed toolbox into BINDIR,
# move it to LIBEXECDIR/toolbox/toolbox and put a hostshim shim in its place.
#
#   meson.add_install_script('meson-install.sh', get_option('prefix') / get_option('bindir'),
#                            get_option('prefix') / get_option('libexecdir'))
#
# Meson runs it with MESON_INSTALL_PREFIX (/usr) and MESON_INSTALL_DESTDIR_PREFIX
# ($DESTDIR/usr): the staging directory is the difference of the two. Paths
# given to hostshim are the installed system's; --destdir says where it is now.
# Safe to run twice (hostshim install is idempotent); `hostshim uninstall` with
# the same arguments undoes it. HOSTSHIM_CC, when set, is the C compiler that
# builds the shim (hostshim's --cc: "gcc", "musl-gcc", '$CC'); zig otherwise.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BINDIR LIBEXECDIR (absolute, as installed)" >&2
	exit 2
fi
bindir=$1
libexecdir=$2
hostshim=${HOSTSHIM:-hostshim}

prefix=${MESON_INSTALL_PREFIX:-/usr}
destdir_prefix=${MESON_INSTALL_DESTDIR_PREFIX:-$prefix}
destdir=${destdir_prefix%"$prefix"}

set -- install --name toolbox --binary "$bindir/toolbox" --libexec "$libexecdir/toolbox"
if [ -n "$destdir" ]; then
	set -- "$@" --destdir "$destdir"
fi
if [ -n "${HOSTSHIM_CC-}" ]; then
	set -- "$@" --cc "$HOSTSHIM_CC"
fi
exec "$hostshim" "$@"
