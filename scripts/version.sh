#!/bin/sh
# Prints this tree's version, taken from git tags and valid as a Debian
# package version (the Makefile's VERSION, which `usher version` reports).
#
# Releases are tagged vMAJOR.MINOR.PATCH on main (v0.x.y until the
# configuration and wire format are declared stable), annotated:
#   git tag -a v0.3.0 -m 'usher 0.3.0' && git push origin v0.3.0
# The version drops the tag's v:
#   at the tag              0.3.0
#   5 commits after it      0.3.0+git5.gabc1234   (sorts after 0.3.0, before 0.3.1)
#   no release tag yet      0.0.0~git308.gabc1234 (sorts before 0.0.0; 308 commits)
#   uncommitted changes     +dirty, or .dirty after a +git part
set -eu
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo 0.0.0~unknown
  exit 0
fi
dirty=
git diff-index --quiet HEAD -- 2>/dev/null || dirty=dirty
hash=$(git rev-parse --short=7 HEAD)
if desc=$(git describe --tags --long --match 'v[0-9]*.[0-9]*.[0-9]*' 2>/dev/null); then
  # vX.Y.Z-N-gHASH, where the tag itself may hold a pre-release (v0.4.0-rc1).
  base=${desc%-*-g*}
  n=${desc%-g*}
  n=${n##*-}
  version=${base#v}
  version=$(printf '%s' "$version" | tr - '~') # v0.4.0-rc1 sorts before 0.4.0
  if [ "$n" != 0 ]; then
    version="$version+git$n.g$hash"
  fi
else
  version="0.0.0~git$(git rev-list --count HEAD).g$hash"
fi
if [ -n "$dirty" ]; then
  case $version in
    *+*) version="$version.$dirty" ;;
    *) version="$version+$dirty" ;;
  esac
fi
echo "$version"
