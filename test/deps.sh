#!/usr/bin/env bash
# Installs what the build, the tests and the demo need on Debian 12 as root;
# elsewhere it names exactly what is missing and fails.
set -euo pipefail

packages=(
	gcc make libc6-dev cpio kmod zstd xz-utils e2fsprogs dkms rpm
	runc crun docker.io podman containerd busybox-static
	qemu-system-x86 linux-image-cloud-amd64 linux-headers-cloud-amd64 linux-headers-6.12-cloud-amd64
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ! command -v go >/dev/null; then
	echo "deps: Go 1.26 is required (https://go.dev/dl); not found on PATH" >&2
	exit 1
fi
# The toolchain that builds this module: a go 1.21+ fetches the one go.mod
# names by itself (through the Go proxy), an older one reports its own.
goversion=$(cd "$(dirname "$0")/.." && go env GOVERSION)
if ! printf '%s\n' go1.26 "$goversion" | sort -C -V; then
	echo "deps: Go 1.26 or newer is required (https://go.dev/dl); $(command -v go) is $goversion" >&2
	exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || ! grep -qs 'ID=debian' /etc/os-release; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: install them as root with: apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
