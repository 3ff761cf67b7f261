// The range API parser as it was before it read the CIDR lists with a SAX handler
// (agent/ranges/parse.cpp): a whole nlohmann DOM, then lookups. Kept as the oracle that the
// streaming parser must agree with, answer for answer and error for error (test_parse.cpp,
// fuzz_api_json.cpp). Not product code.
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "ranges/parse.hpp"

namespace og::test {
namespace dom_reference {

inline Status read_list(const nlohmann::json& result, const char* key, Family want, bool mixed,
                        std::vector<Prefix>& out) {
  auto it = result.find(key);
  if (it == result.end()) return fail(std::string("answer has no result.") + key);
  if (!it->is_array()) return fail(std::string("result.") + key + " is not a list");
  std::size_t i = 0;
  for (const auto& e : *it) {
    if (!e.is_string()) return fail(std::string("result.") + key + "[" + std::to_string(i) + "] is not a string");
    auto p = parse_prefix(e.get_ref<const std::string&>());
    if (!p) return fail(std::string("result.") + key + "[" + std::to_string(i) + "]: " + p.error().message);
    if (!mixed && p->family() != want) {
      return fail(std::string("result.") + key + "[" + std::to_string(i) + "]: " + p->to_string() + " is not an " +
                  (want == Family::v4 ? "IPv4" : "IPv6") + " prefix");
    }
    out.push_back(*p);
    ++i;
  }
  return {};
}

inline std::string api_errors(const nlohmann::json& j) {
  std::string out;
  auto it = j.find("errors");
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& e : *it) {
    if (!out.empty()) out += "; ";
    if (e.is_object()) {
      if (auto c = e.find("code"); c != e.end() && c->is_number_integer())
        out += std::to_string(c->get<long long>()) + " ";
      if (auto m = e.find("message"); m != e.end() && m->is_string()) out += m->get<std::string>();
    } else {
      out += e.dump();
    }
    if (out.size() > 300) break;
  }
  return out;
}

}  // namespace dom_reference

inline Result<ranges::ParsedRanges> parse_api_json_dom(std::string_view body, bool include_china) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("answer is not valid JSON (truncated?)");
  if (!j.is_object()) return fail("answer is not a JSON object");
  auto s = j.find("success");
  if (s == j.end() || !s->is_boolean()) return fail("answer has no boolean \"success\"");
  if (!s->get<bool>()) {
    auto why = dom_reference::api_errors(j);
    return fail("API answered success:false" + (why.empty() ? std::string() : " (" + why + ")"));
  }
  if (auto errs = j.find("errors"); errs != j.end() && errs->is_array() && !errs->empty())
    return fail("API answered success:true with errors: " + dom_reference::api_errors(j));
  auto r = j.find("result");
  if (r == j.end() || !r->is_object()) return fail("answer has no \"result\" object");
  ranges::ParsedRanges out;
  if (auto st = dom_reference::read_list(*r, "ipv4_cidrs", Family::v4, false, out.prefixes); !st)
    return fail(st.error());
  if (auto st = dom_reference::read_list(*r, "ipv6_cidrs", Family::v6, false, out.prefixes); !st)
    return fail(st.error());
  if (include_china)
    if (auto st = dom_reference::read_list(*r, "jdcloud_cidrs", Family::v4, true, out.prefixes); !st)
      return fail(st.error().context("China network requested"));
  if (auto e = r->find("etag"); e != r->end()) {
    if (!e->is_string()) return fail("result.etag is not a string");
    const auto& etag = e->get_ref<const std::string&>();
    std::size_t cut = std::min<std::size_t>(etag.size(), 256);
    // Cut on a UTF-8 character boundary: a split character makes status JSON unencodable.
    while (cut < etag.size() && cut > 0 && (static_cast<unsigned char>(etag[cut]) & 0xC0) == 0x80) --cut;
    out.etag = etag.substr(0, cut);
  }
  return out;
}

}  // namespace og::test
