/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Includes and constants every part of the XDP program uses. UAPI headers only (stable
 * layouts); the one kernel-internal type the program touches, struct nf_conn, is opaque. */
#ifndef OG_BPF_COMMON_H
#define OG_BPF_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

/* libbpf's headers need the kernel types above */
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "originguard/bpf_shared.h"

#ifndef IP_OFFMASK
#define IP_OFFMASK 0x1fff
#endif

#endif /* OG_BPF_COMMON_H */
