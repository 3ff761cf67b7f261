// Parsers for what range sources answer. Untrusted input: fuzzed (tests/fuzz).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "originguard/cidr.hpp"
#include "originguard/result.hpp"

namespace og::ranges {

struct ParsedRanges {
  std::vector<Prefix> prefixes;  // as listed, both families, not yet normalised
  std::string etag;              // from the JSON body (the HTTP ETag header is separate)
};

// Cloudflare's GET /client/v4/ips answer. `success` must be true; ipv4_cidrs holds only IPv4
// and ipv6_cidrs only IPv6; with `include_china` the jdcloud_cidrs list is required too.
[[nodiscard]] Result<ParsedRanges> parse_api_json(std::string_view body, bool include_china);

// One CIDR per line (the ips-v4 / ips-v6 endpoints). LF or CRLF, a missing final newline is
// fine, blank lines are skipped, anything else must be a strict prefix.
[[nodiscard]] Result<ParsedRanges> parse_text_list(std::string_view body);

// Picks the parser from the Content-Type ("" = local file: sniffed) and refuses what is
// clearly not a range list: empty bodies, HTML (challenge or error pages), other types.
[[nodiscard]] Result<ParsedRanges> parse_body(std::string_view body, std::string_view content_type, bool include_china);

}  // namespace og::ranges
