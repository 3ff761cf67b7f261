// The real NftKernel: libmnl + libnftnl over a netlink socket (kernel.cpp).
#pragma once

#include <memory>

#include "kernel.hpp"

namespace og::nft {

std::unique_ptr<NftKernel> make_netlink_kernel();

// Conversions from parsed libnftnl objects (also used by the unit tests). libnftnl 1.2.4
// takes non-const objects in its nftnl_obj getters.
[[nodiscard]] ChainDef chain_def_from(const nftnl_chain* c);
[[nodiscard]] SetDef set_def_from(const nftnl_set* s);  // includes elements, sorted
[[nodiscard]] CounterDef counter_def_from(nftnl_obj* o);

}  // namespace og::nft
