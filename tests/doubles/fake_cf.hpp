// In-memory double of Cloudflare's origin_tls_client_auth API behind the ApiHttp seam, for
// the rotation tests: it keeps certificates and settings, moves an upload to "active" after
// `polls_until_active` GETs of it, and injects faults (429s, 500s, 403s, a lost response
// after the call took effect: what a crash of the agent mid-call looks like from its side).
// tests/tools/fake_cf_api.py is the same over real HTTPS.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aop/ca.hpp"
#include "aop/http.hpp"

namespace og::aop::test {

inline constexpr const char* kZone = "0123456789abcdef0123456789abcdef";
inline constexpr const char* kBase = "https://api.test/client/v4";
inline constexpr const char* kToken = "s3cret-token-value";

class FakeCf final : public ApiHttp {
 public:
  struct Cert {
    std::string id, status, pem, fingerprint;
    int gets = 0;
    bool hostname_kind = false;
  };

  // Faults, consumed one per request.
  int rate_limit = 0;
  std::string retry_after = "1";
  int server_errors = 0;
  bool bad_token = false;
  int lose_response_at = -1;  // the call with this index (0-based) takes effect, its answer is lost
  int polls_until_active = 1;
  std::string deploy_outcome = "active";  // or "deployment_timed_out" (once)

  std::vector<std::string> calls;  // "METHOD /path"
  std::map<std::string, Cert> certs;
  std::vector<std::string> order;  // ids in upload order
  std::vector<std::string> uploaded_fingerprints;
  bool enabled = false;
  nlohmann::json associations = nlohmann::json::array();

  Result<ApiResponse> send(const ApiRequest& req) override {
    std::string path = req.url.substr(std::string(kBase).size());
    int index = static_cast<int>(calls.size());
    calls.push_back(req.method + " " + path);
    if (rate_limit > 0) {
      --rate_limit;
      return reply(429, err(971, "Please wait and consider throttling your request speed"), retry_after);
    }
    if (server_errors > 0) {
      --server_errors;
      return reply(500, "<html>oops</html>");
    }
    if (bad_token || req.bearer_token != kToken) return reply(403, err(10000, "Authentication error"));
    ApiResponse r = route(req, path);
    if (index == lose_response_at) return fail("connection reset (simulated crash)");
    return r;
  }

  [[nodiscard]] std::vector<std::string> live_ids() const {
    std::vector<std::string> out;
    for (const auto& id : order)
      if (certs.at(id).status != "deleted") out.push_back(id);
    return out;
  }
  [[nodiscard]] int count(std::string_view prefix) const {
    int n = 0;
    for (const auto& c : calls) n += c.starts_with(prefix) ? 1 : 0;
    return n;
  }

 private:
  static std::string err(int code, const std::string& msg) {
    return nlohmann::json{{"success", false},
                          {"errors", {{{"code", code}, {"message", msg}}}},
                          {"messages", nlohmann::json::array()},
                          {"result", nullptr}}
        .dump();
  }
  static std::string ok(const nlohmann::json& result) {
    return nlohmann::json{{"success", true},
                          {"errors", nlohmann::json::array()},
                          {"messages", nlohmann::json::array()},
                          {"result", result}}
        .dump();
  }
  static ApiResponse reply(long status, std::string body, std::string retry = "") {
    ApiResponse r;
    r.status = status;
    r.content_type = "application/json";
    r.body = std::move(body);
    r.retry_after = std::move(retry);
    return r;
  }
  nlohmann::json view(const Cert& c) const {
    nlohmann::json j = {{"id", c.id},
                        {"status", c.status},
                        {"certificate", c.pem},
                        {"expires_on", "2030-01-01T00:00:00Z"},
                        {"issuer", "originguard"},
                        {"signature", "ECDSAWithSHA256"}};
    return j;
  }

  ApiResponse route(const ApiRequest& req, const std::string& path) {
    const std::string zone = std::string("/zones/") + kZone + "/origin_tls_client_auth";
    std::string rest = path.starts_with(zone) ? path.substr(zone.size()) : "!";
    bool host_kind = rest.starts_with("/hostnames/certificates");
    if (host_kind) rest = rest.substr(std::string("/hostnames/certificates").size());
    if (rest == "/settings" && req.method == "PUT") {
      enabled = nlohmann::json::parse(req.json_body).at("enabled").get<bool>();
      return reply(200, ok({{"enabled", enabled}}));
    }
    if (rest == "/hostnames" && req.method == "PUT") {
      auto cfg = nlohmann::json::parse(req.json_body).at("config");
      for (auto& e : cfg) associations.push_back(e);
      return reply(200, ok(cfg));
    }
    if (rest.empty() && req.method == "POST") {
      auto body = nlohmann::json::parse(req.json_body);
      Cert c;
      c.id = std::string(32, '0');
      std::string n = std::to_string(order.size() + 1);
      c.id.replace(32 - n.size(), n.size(), n);
      c.status = "pending_deployment";
      c.pem = body.at("certificate").get<std::string>();
      if (body.at("private_key").get<std::string>().find("PRIVATE KEY") == std::string::npos)
        return reply(400, err(1400, "private_key required"));
      auto id = identify_pem(c.pem);
      c.fingerprint = id ? id->fingerprint_sha256 : "";
      c.hostname_kind = host_kind;
      uploaded_fingerprints.push_back(c.fingerprint);
      certs[c.id] = c;
      order.push_back(c.id);
      return reply(200, ok(view(c)));
    }
    if (rest.empty() && req.method == "GET") {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& id : live_ids()) arr.push_back(view(certs[id]));
      return reply(200, ok(arr));
    }
    if (rest.size() == 33 && certs.contains(rest.substr(1)) && certs[rest.substr(1)].status != "deleted") {
      Cert& c = certs[rest.substr(1)];
      if (req.method == "GET") {
        if (c.status == "pending_deployment" && ++c.gets >= polls_until_active) {
          c.status = deploy_outcome;
          if (deploy_outcome != "active") deploy_outcome = "active";
        }
        return reply(200, ok(view(c)));
      }
      if (req.method == "DELETE") {
        c.status = "deleted";
        return reply(200, ok({{"id", c.id}}));
      }
    }
    return reply(404, err(1401, "Certificate not found"));
  }
};

}  // namespace og::aop::test
