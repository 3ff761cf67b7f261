#include "gatekeeper.hpp"

#include <cstdlib>
#include <filesystem>

#include "client.hpp"

namespace og::ctl {

std::string default_gatekeeper_socket() {
  const char* env = std::getenv("ORIGINGUARD_GATEKEEPER_SOCKET");
  return env && *env ? env : std::string(kDefaultGatekeeperSocket);
}

nlohmann::json gatekeeper_status(const std::string& socket) {
  nlohmann::json out = {{"running", false}, {"socket", socket}};
  std::error_code ec;
  if (!std::filesystem::exists(socket, ec)) return out;
  auto reply = call(socket, request("status"), std::chrono::seconds(10), "gatekeeper");
  if (!reply) {
    out["error"] = reply.error().message;
    return out;
  }
  if (!reply->value("ok", false)) {
    out["error"] = "gatekeeper refused status: " + reply->value("error", std::string("no reason given"));
    return out;
  }
  return gatekeeper_view(std::move(*reply), socket);
}

nlohmann::json gatekeeper_view(nlohmann::json reply, const std::string& socket) {
  reply.erase("ok");
  reply["running"] = true;
  reply["socket"] = socket;
  return reply;
}

std::vector<std::string> gatekeeper_problems(const nlohmann::json& gk) {
  std::vector<std::string> out;
  if (!gk.value("running", false)) {
    if (gk.contains("error")) out.push_back("gatekeeper unreachable: " + gk.value("error", std::string()));
    return out;
  }
  // Like the agent's: a refused reload keeps the old config serving, but the file on disk is
  // not what runs, which the operator has to know about.
  if (const auto lr = gk.find("last_reload"); lr != gk.end() && lr->is_object() && !lr->value("ok", true)) {
    const auto err = lr->find("error");
    out.push_back("gatekeeper reload refused (the previous config keeps serving): " +
                  (err != lr->end() && err->is_string() ? err->get<std::string>() : std::string("?")));
  }
  for (const auto& h : gk.value("hosts", nlohmann::json::array())) {
    const auto names = h.value("names", nlohmann::json::array());
    const std::string host = names.empty() ? "?" : names.front().get<std::string>();
    for (const auto& c : h.value("certs", nlohmann::json::array())) {
      if (!c.value("warning", false)) continue;
      const long long days = c.value("days_left", 0LL);
      out.push_back("gatekeeper host " + host + ": certificate " + c.value("file", std::string("?")) +
                    (days < 0 ? " has expired" : " expires in " + std::to_string(days) + " days") + " (" +
                    c.value("not_after", std::string("?")) + ")");
    }
  }
  return out;
}

}  // namespace og::ctl
