#include "aop/config.hpp"

#include <openssl/crypto.h>

#include <set>

namespace og::aop {

bool valid_zone_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool valid_hostname(std::string_view h) {
  // Lower-case LDH labels, optionally one leading "*." (a wildcard hostname is a valid
  // association target); no trailing dot, at most 253 bytes.
  if (h.starts_with("*.")) h.remove_prefix(2);
  if (h.empty() || h.size() > 253) return false;
  std::size_t label = 0;
  char prev = '.';
  for (char c : h) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      if (c == '-' && label == 0) return false;
      if (++label > 63) return false;
    } else {
      return false;
    }
    prev = c;
  }
  return label > 0 && prev != '-' && h.find('.') != std::string_view::npos;
}

namespace {

constexpr std::string_view kSec = "aop.zone";

Status read_zone(const TomlReader& r, const toml::table& t, AopZoneConfig& z) {
  if (auto st =
          r.only_keys(t, kSec,
                      {"zone_id", "api_token_file", "hostnames", "ca_dir", "cert_lifetime", "renew_before", "api_base",
                       "key_type", "api_ca_file", "ca_renew_before", "ca_overlap", "migrate_from_global"});
      !st)
    return st;
  Status st;
  if (!(st = r.string(t, kSec, "zone_id", z.zone_id))) return st;
  if (!t.get("zone_id")) return r.error_at(nullptr, t, kSec, "zone_id", "required (the zone's 32-hex-digit id)");
  if (!valid_zone_id(z.zone_id))
    return r.error_at(t.get("zone_id"), t, kSec, "zone_id", "expected 32 lower-case hex digits");
  if (!(st = r.path(t, kSec, "api_token_file", z.api_token_file))) return st;
  if (!t.get("api_token_file"))
    return r.error_at(nullptr, t, kSec, "api_token_file", "required (a file holding the API token, mode 0600)");
  if (!(st = r.strings(t, kSec, "hostnames", z.hostnames))) return st;
  std::set<std::string> seen;
  for (const auto& h : z.hostnames) {
    if (!valid_hostname(h))
      return r.error_at(t.get("hostnames"), t, kSec, "hostnames",
                        quote_untrusted(h) + " is not a lower-case host name like \"www.example.com\"");
    if (!seen.insert(h).second) return r.error_at(t.get("hostnames"), t, kSec, "hostnames", "\"" + h + "\" twice");
  }
  z.ca_dir = std::filesystem::path(kDefaultAopDir) / z.zone_id;
  if (!(st = r.path(t, kSec, "ca_dir", z.ca_dir))) return st;
  if (!(st = r.duration(t, kSec, "cert_lifetime", z.cert_lifetime, Seconds(3600)))) return st;
  if (!(st = r.duration(t, kSec, "renew_before", z.renew_before, Seconds(60)))) return st;
  if (z.renew_before >= z.cert_lifetime)
    return r.error_at(t.get("renew_before"), t, kSec, "renew_before",
                      "must be shorter than cert_lifetime (" + format_duration(z.cert_lifetime) +
                          "), or every certificate is due as soon as it is issued");
  if (!(st = r.duration(t, kSec, "ca_renew_before", z.ca_renew_before, Seconds(86400)))) return st;
  if (!(st = r.duration(t, kSec, "ca_overlap", z.ca_overlap, Seconds(1)))) return st;
  if (!(st = r.boolean(t, kSec, "migrate_from_global", z.migrate_from_global))) return st;
  if (!(st = r.string(t, kSec, "api_base", z.api_base))) return st;
  if (!z.api_base.starts_with("https://") || z.api_base.size() <= 8)
    return r.error_at(t.get("api_base"), t, kSec, "api_base", "must be an https:// URL (the token travels with it)");
  for (char c : z.api_base)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == '?' || c == '#')
      return r.error_at(t.get("api_base"), t, kSec, "api_base", "has a character a base URL cannot have");
  while (z.api_base.ends_with('/')) z.api_base.pop_back();
  if (!(st = r.string(t, kSec, "api_ca_file", z.api_ca_file))) return st;
  if (!z.api_ca_file.empty() && z.api_ca_file.front() != '/')
    return r.error_at(t.get("api_ca_file"), t, kSec, "api_ca_file", "must be an absolute path");
  return r.choice(t, kSec, "key_type", z.key_type,
                  {{"ecdsa-p256", KeyType::ecdsa_p256}, {"rsa-2048", KeyType::rsa_2048}});
}

}  // namespace

Status parse_aop_section(const TomlReader& r, const toml::table& root, AopConfig& out) {
  auto aop = r.section(root, "aop");
  if (!aop) return fail(aop.error());
  out.zones.clear();
  if (!*aop) return {};
  const toml::table& a = **aop;
  if (auto st = r.only_keys(a, "aop", {"zone", "export_dir", "poll_interval", "origin_pull_ca"}); !st) return st;
  if (auto st = r.path(a, "aop", "export_dir", out.export_dir); !st) return st;
  if (auto st = r.path(a, "aop", "origin_pull_ca", out.origin_pull_ca); !st) return st;
  if (auto st = r.duration(a, "aop", "poll_interval", out.poll_interval, Seconds(1)); !st) return st;
  const toml::node* zn = a.get("zone");
  if (!zn) return {};
  const toml::array* arr = zn->as_array();
  if (!arr || !arr->is_array_of_tables())
    return r.error_at(zn->source(), "aop", "zone", "expected [[aop.zone]] tables");
  std::set<std::string> zones, dirs;
  for (const auto& e : *arr) {
    AopZoneConfig z;
    if (auto st = read_zone(r, *e.as_table(), z); !st) return st;
    if (!zones.insert(z.zone_id).second)
      return r.error_at(e.as_table()->get("zone_id"), *e.as_table(), kSec, "zone_id", "zone configured twice");
    if (!dirs.insert((z.ca_dir / "").lexically_normal().string()).second)
      return r.error_at(e.as_table()->get("ca_dir"), *e.as_table(), kSec, "ca_dir",
                        "shared with another zone (each zone needs its own CA directory)");
    out.zones.push_back(std::move(z));
  }
  return {};
}

Status read_agent_aop(const TomlReader& r, const toml::table& root, AgentConfig& cfg) {
  auto out = std::make_shared<AopConfig>();
  if (auto st = parse_aop_section(r, root, *out); !st) return st;
  if (out->zones.empty()) {
    cfg.aop.reset();
    return {};
  }
  const toml::array& arr = *root.get("aop")->as_table()->get("zone")->as_array();
  for (std::size_t i = 0; i < out->zones.size(); ++i) {
    const toml::table& t = *arr.get(i)->as_table();
    // Checked now, so that --check-config and a reload refuse a token file the lifecycle
    // could not use; its value is wiped at once (the lifecycle reads it again when it runs).
    auto token = load_api_token(out->zones[i].api_token_file);
    if (!token) {
      std::string_view why = token.error().message;
      if (why.starts_with("api_token_file")) why.remove_prefix(std::string_view("api_token_file").size());
      while (why.starts_with(':') || why.starts_with(' ')) why.remove_prefix(1);
      return r.error_at(t.get("api_token_file"), t, kSec, "api_token_file", why);
    }
    OPENSSL_cleanse(token->data(), token->size());
  }
  cfg.aop = std::move(out);
  return {};
}

Result<AopConfig> parse_aop_config(std::string_view text, std::string_view origin) {
  TomlReader r(origin);
  auto doc = r.document(text, {"aop"});
  if (!doc) return fail(doc.error());
  AopConfig cfg;
  if (auto st = parse_aop_section(r, *doc, cfg); !st) return fail(st.error());
  return cfg;
}

Result<std::string> load_api_token(const std::filesystem::path& file) {
  auto text = read_private_file(file);
  if (!text) return fail(text.error().context("api_token_file"));
  std::string& s = *text;
  std::size_t b = s.find_first_not_of(" \t\r\n");
  std::size_t e = s.find_last_not_of(" \t\r\n");
  std::string token = b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  OPENSSL_cleanse(s.data(), s.size());
  if (token.empty()) return fail("api_token_file " + file.string() + ": empty");
  for (char c : token)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      OPENSSL_cleanse(token.data(), token.size());
      return fail("api_token_file " + file.string() + ": the token has a space or a non-printable byte");
    }
  return token;
}

}  // namespace og::aop
