#!/bin/sh
# install-host-tools.sh LIST: for each "NAME PATH" line of LIST, generate a
# shim at $DESTDIR$BINDIR/NAME that runs the host's PATH (BINDIR defaults to
# /usr/local/bin). Blank lines and lines starting with # are skipped.
# HOSTSHIM names the hostshim command (default: hostshim on PATH).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 LIST" >&2
	exit 2
fi
list=$1
destdir=${DESTDIR:-}
bindir=${BINDIR:-/usr/local/bin}
hostshim=${HOSTSHIM:-hostshim}

line=0
while read -r name target rest; do
	line=$((line + 1))
	case $name in
	'' | '#'*) continue ;;
	esac
	if [ -z "$target" ] || [ -n "$rest" ]; then
		echo "$0: $list:$line: expected NAME PATH" >&2
		exit 2
	fi
	"$hostshim" generate --quiet --require-host-root --name "$name" --target "$target" --output "$destdir$bindir/$name"
	echo "$bindir/$name -> host $target"
done <"$list"
