#include "aop/cf_api.hpp"

#include <openssl/crypto.h>

#include <optional>

#include "originguard/result.hpp"

namespace og::aop {

namespace {

ApiError bad(std::string msg) {
  ApiError e;
  e.kind = ApiErrorKind::bad_response;
  e.message = std::move(msg);
  return e;
}

// Optional string member: absent or null -> "", a string -> itself, anything else -> nullopt.
std::optional<std::string> opt_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

constexpr std::size_t kMaxListed = 1000;

}  // namespace

bool valid_remote_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-')) return false;
  return true;
}

ApiResult<RemoteCert> parse_remote_cert(const nlohmann::json& j) {
  if (!j.is_object()) return bad("a certificate is not a JSON object");
  RemoteCert c;
  auto id = opt_string(j, "id");
  if (!id || !valid_remote_id(*id)) return bad("a certificate has no valid id");
  c.id = *id;
  auto status = opt_string(j, "status");
  auto expires = opt_string(j, "expires_on");
  auto pem = opt_string(j, "certificate");
  auto serial = opt_string(j, "serial_number");
  if (!status || !expires || !pem || !serial) return bad("certificate " + c.id + ": a field has the wrong type");
  for (char ch : *status)
    if (!((ch >= 'a' && ch <= 'z') || ch == '_')) return bad("certificate " + c.id + ": odd status");
  if (status->size() > 40) return bad("certificate " + c.id + ": odd status");
  c.status = *status;
  c.expires_on = expires->size() <= 40 ? *expires : quote_untrusted(*expires, 40);
  c.certificate = std::move(*pem);
  c.serial_number = serial->size() <= 80 ? *serial : std::string();
  return c;
}

CfApi::CfApi(ApiHttp& http, std::string api_base, std::string zone_id, std::string token,
             std::vector<std::string> hostnames)
    : http_(http),
      base_(std::move(api_base)),
      zone_(std::move(zone_id)),
      token_(std::move(token)),
      hostnames_(std::move(hostnames)) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

std::string CfApi::certs_path() const {
  return "/zones/" + zone_ +
         (per_hostname() ? "/origin_tls_client_auth/hostnames/certificates" : "/origin_tls_client_auth");
}

PlannedCall CfApi::plan_upload() const {
  return {"POST", certs_path(), R"({"certificate":"<client certificate PEM>","private_key":"<redacted>"})"};
}
PlannedCall CfApi::plan_list() const { return {"GET", certs_path(), ""}; }
PlannedCall CfApi::plan_get(const std::string& id) const { return {"GET", certs_path() + "/" + id, ""}; }
PlannedCall CfApi::plan_remove(const std::string& id) const { return {"DELETE", certs_path() + "/" + id, ""}; }
PlannedCall CfApi::plan_activate(const std::string& id) const {
  if (!per_hostname()) return {"PUT", "/zones/" + zone_ + "/origin_tls_client_auth/settings", R"({"enabled":true})"};
  nlohmann::json cfg = nlohmann::json::array();
  for (const auto& h : hostnames_) cfg.push_back({{"hostname", h}, {"cert_id", id}, {"enabled", true}});
  return {"PUT", "/zones/" + zone_ + "/origin_tls_client_auth/hostnames", nlohmann::json{{"config", cfg}}.dump()};
}

ApiResult<nlohmann::json> CfApi::call(const PlannedCall& c, const std::string& body) {
  ApiRequest req{c.method, base_ + c.path, token_, body};
  std::string what = c.method + " " + c.path;
  auto resp = http_.send(req);
  // The copies of the token and of an upload's private key end here.
  OPENSSL_cleanse(req.bearer_token.data(), req.bearer_token.size());
  OPENSSL_cleanse(req.json_body.data(), req.json_body.size());
  if (!resp) {
    ApiError e;
    e.kind = ApiErrorKind::transient;
    e.message = what + ": " + resp.error().message;
    return e;
  }
  auto r = parse_envelope(resp->status, resp->body, resp->retry_after);
  if (!r) return r.error().context(what);
  return r;
}

ApiResult<RemoteCert> CfApi::upload(const std::string& cert_pem, const std::string& key_pem) {
  PlannedCall c = plan_upload();
  std::string body = nlohmann::json{{"certificate", cert_pem}, {"private_key", key_pem}}.dump();
  auto r = call(c, body);
  OPENSSL_cleanse(body.data(), body.size());  // it carries the client key
  if (!r) return r.error();
  auto cert = parse_remote_cert(*r);
  if (!cert) return cert.error().context(c.method + " " + c.path);
  return cert;
}

ApiResult<std::vector<RemoteCert>> CfApi::list() {
  PlannedCall c = plan_list();
  auto r = call(c, "");
  if (!r) return r.error();
  if (!r->is_array()) return bad(c.method + " " + c.path + ": result is not a list");
  if (r->size() > kMaxListed) return bad(c.method + " " + c.path + ": more than 1000 certificates");
  std::vector<RemoteCert> out;
  for (const auto& j : *r) {
    auto cert = parse_remote_cert(j);
    if (!cert) return cert.error().context(c.method + " " + c.path);
    out.push_back(std::move(*cert));
  }
  return out;
}

ApiResult<RemoteCert> CfApi::get(const std::string& id) {
  if (!valid_remote_id(id)) return bad("refusing certificate id " + quote_untrusted(id));
  PlannedCall c = plan_get(id);
  auto r = call(c, "");
  if (!r) return r.error();
  auto cert = parse_remote_cert(*r);
  if (!cert) return cert.error().context(c.method + " " + c.path);
  if (cert->id != id) return bad(c.method + " " + c.path + ": answered for another certificate");
  return cert;
}

ApiResult<Done> CfApi::remove(const std::string& id) {
  if (!valid_remote_id(id)) return bad("refusing certificate id " + quote_untrusted(id));
  auto r = call(plan_remove(id), "");
  if (!r) return r.error();
  return Done{};
}

ApiResult<Done> CfApi::activate(const std::string& id) {
  if (!valid_remote_id(id)) return bad("refusing certificate id " + quote_untrusted(id));
  PlannedCall c = plan_activate(id);
  auto r = call(c, c.body);
  if (!r) return r.error();
  if (!per_hostname()) {
    // {"enabled": true} is what was asked; anything else means the setting did not take.
    auto it = r->is_object() ? r->find("enabled") : r->end();
    if (!r->is_object() || it == r->end() || !it->is_boolean() || !it->get<bool>())
      return bad(c.method + " " + c.path + ": the setting is not reported enabled");
  } else if (!r->is_array()) {
    return bad(c.method + " " + c.path + ": result is not a list");
  }
  return Done{};
}

}  // namespace og::aop
