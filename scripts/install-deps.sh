#!/usr/bin/env bash
# Installs everything originguard needs to build, test and benchmark on Debian 12.
# Idempotent: skips apt when every package is already present.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  clang llvm lld libclang-rt-14-dev clang-format clang-tidy
  libcurl4-openssl-dev libssl-dev openssl
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libjemalloc-dev
  libnftnl-dev libmnl-dev nftables
  libbpf-dev bpftool libelf-dev zlib1g-dev
  iproute2 iputils-ping procps psmisc curl python3 socat jq util-linux systemd
  nginx libnginx-mod-stream haproxy xdp-tools time
  # bench/xdp: GRO on the receiving veth for the receiver-CPU comparison
  ethtool
  # packaging: man pages, .deb checks, the install/upgrade/purge test in a booted container,
  # promtool for the monitoring rules, the Kubernetes client's schema models
  help2man pandoc lintian systemd-container prometheus python3-yaml python3-kubernetes
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged services on install; our tests run their own instances.
  for svc in nginx haproxy prometheus; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
fi
echo "install-deps: all dependencies present"
