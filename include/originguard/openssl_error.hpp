// OpenSSL's thread-local error queue as one message, shared by the agent's AOP CA and the
// gatekeeper. Header-only so that linking og_common never pulls libcrypto into a program
// that does not use it (agentctl).
#pragma once

#include <openssl/err.h>

#include <string>

namespace og {

// Drains the queue: "error:…; error:…", or a fixed text when it was empty.
[[nodiscard]] inline std::string take_openssl_errors() {
  std::string out;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace og
