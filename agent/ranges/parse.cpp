#include "ranges/parse.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>

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

using nlohmann::json;

// One CIDR list of the answer (result.ipv4_cidrs, ...), read as the parser meets it.
struct CidrList {
  const char* key;
  Family want;
  bool mixed;  // both families allowed (jdcloud_cidrs)
  bool wanted = true;
  std::vector<Prefix> prefixes{};
  std::size_t count = 0;         // entries seen
  std::optional<Error> error{};  // the first bad entry's
  void reset() {
    prefixes.clear();
    count = 0;
    error.reset();
  }
  void bad(const std::string& why) {
    if (!error) error = Error{std::string("result.") + key + "[" + std::to_string(count) + "]" + why};
  }
  void entry(const std::string& text) {
    if (error || !wanted) {
      ++count;
      return;
    }
    auto p = parse_prefix(text);
    if (!p) {
      bad(": " + p.error().message);
    } else if (!mixed && p->family() != want) {
      bad(": " + p->to_string() + " is not an " + (want == Family::v4 ? "IPv4" : "IPv6") + " prefix");
    } else {
      prefixes.push_back(*p);
    }
    ++count;
  }
};

// Parses the answer as nlohmann's DOM parser does (same grammar, same errors, duplicate keys:
// the last one wins), except for the entries of the CIDR lists directly under "result": those
// become prefixes as they are read, and the document holds those lists empty. A DOM of a
// 100k-prefix answer was a node and a string per prefix, megabytes on top of the body.
class AnswerSax {
 public:
  AnswerSax(json& root, std::array<CidrList, 3>& lists) : dom_(root, false), lists_(lists) {}

  bool null() {
    return scalar([&] { return dom_.null(); });
  }
  bool boolean(bool v) {
    return scalar([&] { return dom_.boolean(v); });
  }
  bool number_integer(json::number_integer_t v) {
    return scalar([&] { return dom_.number_integer(v); });
  }
  bool number_unsigned(json::number_unsigned_t v) {
    return scalar([&] { return dom_.number_unsigned(v); });
  }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return scalar([&] { return dom_.number_float(v, s); });
  }
  bool binary(json::binary_t& v) {
    return scalar([&] { return dom_.binary(v); });
  }
  bool string(json::string_t& v) {
    if (skip_ > 0) return true;
    if (CidrList* l = in_list()) {
      l->entry(v);
      return true;
    }
    return dom_.string(v);
  }
  bool key(json::string_t& k) {
    if (skip_ > 0) return true;
    auto& top = stack_.back();
    top.key = k;
    // A second "result" replaces the first (as in the DOM): its lists start again.
    if (stack_.size() == 1 && k == "result")
      for (auto& l : lists_) l.reset();
    return dom_.key(k);
  }
  bool start_object(std::size_t n) {
    if (skip_ > 0 || in_list() != nullptr) return start_skipped();
    const bool result = stack_.size() == 1 && stack_[0].object && stack_[0].key == "result";
    stack_.push_back({true, {}, result ? Role::result : Role::other, nullptr});
    return dom_.start_object(n);
  }
  bool end_object() {
    if (skip_ > 0) return end_skipped();
    stack_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (skip_ > 0 || in_list() != nullptr) return start_skipped();
    CidrList* list = nullptr;
    if (!stack_.empty() && stack_.back().role == Role::result)
      for (auto& l : lists_)
        if (stack_.back().key == l.key) list = &l;
    if (list != nullptr) list->reset();  // a repeated key: the last list wins
    stack_.push_back({false, {}, list != nullptr ? Role::cidrs : Role::other, list});
    return dom_.start_array(n);
  }
  bool end_array() {
    if (skip_ > 0) return end_skipped();
    stack_.pop_back();
    return dom_.end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t pos, const std::string& token, const Exception& e) {
    return dom_.parse_error(pos, token, e);
  }

 private:
  enum class Role : std::uint8_t { other, result, cidrs };
  struct Frame {
    bool object;
    std::string key;  // objects: the key whose value comes next
    Role role;
    CidrList* list;
  };
  // The list whose entries are being read (the innermost container is one).
  CidrList* in_list() const {
    return !stack_.empty() && stack_.back().role == Role::cidrs ? stack_.back().list : nullptr;
  }
  template <class F>
  bool scalar(F&& forward) {
    if (skip_ > 0) return true;
    if (CidrList* l = in_list()) {
      l->bad(" is not a string");
      ++l->count;
      return true;
    }
    return forward();
  }
  // An object or array inside a CIDR list: an entry that is not a string, read past.
  bool start_skipped() {
    if (skip_ == 0) {
      CidrList* l = in_list();
      l->bad(" is not a string");
      ++l->count;
    }
    ++skip_;
    return true;
  }
  bool end_skipped() {
    --skip_;
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::array<CidrList, 3>& lists_;
  std::vector<Frame> stack_;
  std::size_t skip_ = 0;  // depth inside a skipped entry
};

Status read_list(const json& result, CidrList& list, std::vector<Prefix>& out) {
  auto it = result.find(list.key);
  if (it == result.end()) return fail(std::string("answer has no result.") + list.key);
  if (!it->is_array()) return fail(std::string("result.") + list.key + " is not a list");
  if (list.error) return fail(*list.error);
  if (out.empty()) {
    out = std::move(list.prefixes);
  } else {
    out.insert(out.end(), list.prefixes.begin(), list.prefixes.end());
  }
  std::vector<Prefix>().swap(list.prefixes);
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
  std::array<CidrList, 3> lists{CidrList{"ipv4_cidrs", Family::v4, false}, CidrList{"ipv6_cidrs", Family::v6, false},
                                CidrList{"jdcloud_cidrs", Family::v4, true, include_china}};
  json j;
  AnswerSax sax(j, lists);
  if (!json::sax_parse(body.begin(), body.end(), &sax) || j.is_discarded())
    return fail("answer is not valid JSON (truncated?)");
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
  if (auto st = read_list(*r, lists[0], out.prefixes); !st) return fail(st.error());
  if (auto st = read_list(*r, lists[1], out.prefixes); !st) return fail(st.error());
  if (include_china)
    if (auto st = read_list(*r, lists[2], out.prefixes); !st)
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
