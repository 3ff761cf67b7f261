// Client of Cloudflare's Authenticated Origin Pulls API (origin_tls_client_auth), zone level or
// per hostname, over the ApiHttp seam. Calls made (docs/AOP.md has the references):
//   zone level    POST/GET /zones/{zone}/origin_tls_client_auth, GET/DELETE …/{id},
//                 PUT …/origin_tls_client_auth/settings {"enabled": true}
//   per hostname  POST/GET …/origin_tls_client_auth/hostnames/certificates, GET/DELETE …/{id},
//                 PUT …/origin_tls_client_auth/hostnames {"config": [{hostname, cert_id, enabled}]}
#pragma once

#include <string>
#include <vector>

#include "aop/envelope.hpp"
#include "aop/http.hpp"

namespace og::aop {

inline constexpr std::string_view kCloudflareApiBase = "https://api.cloudflare.com/client/v4";

// One certificate as the API lists it. `id` is checked (letters, digits, '-') before it is used
// in a URL; the rest is informational and never trusted for a decision except `status`.
struct RemoteCert {
  std::string id;
  std::string status;       // initializing, pending_deployment, active, pending_deletion, deleted, *_timed_out
  std::string expires_on;   // as sent (quoted if odd)
  std::string certificate;  // PEM, when the API returns it
  std::string serial_number;
};

// One API call as the dry run shows it: the private key is never part of `body`.
struct PlannedCall {
  std::string method;
  std::string path;  // relative to api_base
  std::string body;  // JSON, secrets redacted
};

class CfApi {
 public:
  // `hostnames` empty = zone level. `token` is secret (see http.hpp).
  CfApi(ApiHttp& http, std::string api_base, std::string zone_id, std::string token,
        std::vector<std::string> hostnames);

  [[nodiscard]] bool per_hostname() const { return !hostnames_.empty(); }

  ApiResult<RemoteCert> upload(const std::string& cert_pem, const std::string& key_pem);
  ApiResult<std::vector<RemoteCert>> list();
  ApiResult<RemoteCert> get(const std::string& id);
  ApiResult<Done> remove(const std::string& id);
  // Zone level: turns the zone setting on. Per hostname: associates every hostname with `id`.
  ApiResult<Done> activate(const std::string& id);

  // What upload/get/activate/remove would send, for the dry run.
  [[nodiscard]] PlannedCall plan_upload() const;
  [[nodiscard]] PlannedCall plan_get(const std::string& id) const;
  [[nodiscard]] PlannedCall plan_list() const;
  [[nodiscard]] PlannedCall plan_activate(const std::string& id) const;
  [[nodiscard]] PlannedCall plan_remove(const std::string& id) const;

 private:
  [[nodiscard]] std::string certs_path() const;
  ApiResult<nlohmann::json> call(const PlannedCall& c, const std::string& body);

  ApiHttp& http_;
  std::string base_;
  std::string zone_;
  std::string token_;
  std::vector<std::string> hostnames_;
};

// An id the API returned, fit for a URL path segment.
[[nodiscard]] bool valid_remote_id(std::string_view id);
// RemoteCert from one element of `result` (bad_response if it is not an object with a valid id).
[[nodiscard]] ApiResult<RemoteCert> parse_remote_cert(const nlohmann::json& j);

}  // namespace og::aop
