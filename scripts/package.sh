#!/usr/bin/env bash
# Builds the usher Debian package (make package): a static binary
# (CGO_ENABLED=0, -trimpath, stripped) of version VERSION, the man page
# and changelog compressed, the bash and zsh completions, everything staged in OUT/stage next to
# packaging/nfpm.yaml, then nfpm. Prints the package's path.
#
# Environment (defaults in brackets):
#   VERSION   the package and binary version [scripts/version.sh]
#   NFPM      the nfpm binary [nfpm]
#   OUT       where the package is written [bin/package]
#   DEB_ARCH  the package architecture, in Go's names [go env GOARCH]
set -euo pipefail
cd "$(dirname "$0")/.."
version=${VERSION:-$(scripts/version.sh)}
nfpm=${NFPM:-nfpm}
case $nfpm in */*) nfpm=$(realpath "$nfpm") ;; esac
out=${OUT:-bin/package}
arch=${DEB_ARCH:-$(go env GOARCH)}
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage"

CGO_ENABLED=0 GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=$version" \
  -o "$stage/usher" ./cmd/usher
cp packaging/nfpm.yaml packaging/usher.service packaging/usher.hcl packaging/copyright packaging/lintian-overrides \
  packaging/postinst.sh packaging/prerm.sh packaging/postrm.sh "$stage/"
gzip -9n <packaging/usher.1 >"$stage/usher.1.gz"
# Shell completions, written by the host's build (the package's binary may
# be for another architecture).
go run ./cmd/usher completion bash >"$stage/usher.bash"
go run ./cmd/usher completion zsh >"$stage/_usher"
# A native package's changelog: one entry for this build, dated by its commit.
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
printf 'usher (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- Usher maintainers <usherlb@users.noreply.github.com>  %s\n' \
  "$version" "$commit" "$date" | gzip -9n >"$stage/changelog.gz"

deb=$(realpath "$out")/usher_${version}_${arch}.deb
(cd "$stage" && VERSION=$version DEB_ARCH=$arch "$nfpm" package -f nfpm.yaml -p deb -t "$deb" >/dev/null)
echo "$deb"
