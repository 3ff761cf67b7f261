#!/usr/bin/env bash
# Installs everything originguard needs to build, test and benchmark on Debian 12.
# Idempotent: skips apt when every package is already present.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config git
  # scripts/coverage.sh: line coverage from g++ --coverage
  gcovr
  clang llvm lld libclang-rt-14-dev clang-format
  # scripts/clang-tidy.sh (a CI stage): clang-tidy-14 and its run-clang-tidy-14
  clang-tidy-14
  libcurl4-openssl-dev libssl-dev openssl
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev libboost-system-dev libjemalloc-dev
  libnftnl-dev libmnl-dev nftables
  # bench/nft: libnftables called in-process (the firewalld model)
  python3-nftables
  libbpf-dev bpftool libelf-dev zlib1g-dev
  iproute2 iputils-ping procps psmisc curl python3 socat jq util-linux systemd
  nginx libnginx-mod-stream haproxy xdp-tools time
  # bench/xdp: GRO on the receiving veth for the receiver-CPU comparison
  ethtool
  # the real-IP files loaded into the real Apache (e2e_agent_realip)
  apache2
  # wall-clock jumps for the agent alone (e2e_agent_clock: LD_PRELOAD libfaketime)
  libfaketime
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
  # Debian starts the packaged services on install (nginx, haproxy, apache2 on port 80,
  # prometheus); our tests run their own instances. A policy-rc.d saying "no" (exit 101)
  # keeps the maintainer scripts from starting any while apt runs; one already there (a
  # container image's) is left as it is.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# install-deps.sh: start no service while it installs packages\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # ... and should one have been started all the same (a policy-rc.d of the image that allows it)
  for svc in nginx haproxy apache2 prometheus; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
fi
echo "install-deps: all dependencies present"
