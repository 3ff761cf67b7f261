#include "ranges/parse.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace og::ranges {
namespace {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Status read_list(const nlohmann::json& result, const char* key, Family want, bool mixed, std::vector<Prefix>& out) {
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

std::string api_errors(const nlohmann::json& j) {
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

}  // namespace

Result<ParsedRanges> parse_api_json(std::string_view body, bool include_china) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("answer is not valid JSON (truncated?)");
  if (!j.is_object()) return fail("answer is not a JSON object");
  auto s = j.find("success");
  if (s == j.end() || !s->is_boolean()) return fail("answer has no boolean \"success\"");
  if (!s->get<bool>()) {
    auto why = api_errors(j);
    return fail("API answered success:false" + (why.empty() ? std::string() : " (" + why + ")"));
  }
  if (auto errs = j.find("errors"); errs != j.end() && errs->is_array() && !errs->empty())
    return fail("API answered success:true with errors: " + api_errors(j));
  auto r = j.find("result");
  if (r == j.end() || !r->is_object()) return fail("answer has no \"result\" object");
  ParsedRanges out;
  if (auto st = read_list(*r, "ipv4_cidrs", Family::v4, false, out.prefixes); !st) return fail(st.error());
  if (auto st = read_list(*r, "ipv6_cidrs", Family::v6, false, out.prefixes); !st) return fail(st.error());
  if (include_china)
    if (auto st = read_list(*r, "jdcloud_cidrs", Family::v4, true, out.prefixes); !st)
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

Result<ParsedRanges> parse_text_list(std::string_view body) {
  ParsedRanges out;
  std::size_t line_no = 0;
  while (!body.empty()) {
    auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto t = trim(line);
    if (t.empty()) continue;
    auto p = parse_prefix(t);
    if (!p) return fail("line " + std::to_string(line_no) + ": " + p.error().message);
    out.prefixes.push_back(*p);
  }
  return out;
}

Result<ParsedRanges> parse_body(std::string_view body, std::string_view content_type, bool include_china) {
  auto t = trim(body);
  if (t.empty()) return fail("empty body");
  if (t.front() == '<') return fail("body is an HTML/XML page (challenge or error page?), not a range list");
  std::string ct = lower(trim(content_type.substr(0, content_type.find(';'))));
  bool json;
  if (ct.empty()) {
    json = t.front() == '{';
  } else if (ct == "application/json") {
    json = true;
  } else if (ct == "text/plain") {
    json = false;
  } else {
    return fail("unexpected Content-Type " + quote_untrusted(ct) + " (want application/json or text/plain)");
  }
  auto r = json ? parse_api_json(t, include_china) : parse_text_list(t);
  if (r && r->prefixes.empty()) return fail("answer lists no prefixes");
  return r;
}

}  // namespace og::ranges
