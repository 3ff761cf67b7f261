// The agent's per-command authorisation: read-only commands for the [control] group, every
// command that changes something (aop issue/rotate/revoke act at Cloudflare) for admin only.
#include <gtest/gtest.h>

#include "agent.hpp"

namespace og {
namespace {

TEST(AgentAccess, ReadersAndAdmins) {
  for (const char* ro : {"status", "metrics", "explain", "version", "aop-status"})
    EXPECT_EQ(command_access(ro), ControlAccess::group) << ro;
  for (const char* rw : {"refresh", "reload", "uninstall", "aop-issue", "aop-rotate", "aop-revoke", "aop-other", ""})
    EXPECT_EQ(command_access(rw), ControlAccess::admin) << rw;
}

}  // namespace
}  // namespace og
