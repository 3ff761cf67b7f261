// tests/tools/fake_cf_api.py as a child process: a local HTTPS fake of Cloudflare's AOP API
// (its own test CA, made at start), for the tests of the real CurlApiHttp and of the agent's
// aop::Manager.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "unit/test_support.hpp"

extern char** environ;

namespace og::aop::test {

class FakeApiServer {
 public:
  explicit FakeApiServer(const std::filesystem::path& dir, const char* zone, const char* token,
                         const char* deploy_delay = "0")
      : dir_(dir) {
    // Debian's python3 first: a shim earlier on PATH (pyenv) costs about a second per start.
    std::string python = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    std::vector<std::string> args = {python, OG_FAKE_CF_API,  "--dir", dir.string(),     "--zone",    zone, "--token",
                                     token,  "--max-seconds", "300",   "--deploy-delay", deploy_delay};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, python.c_str(), nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~FakeApiServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Polls for the port file (the server writes it last, after its TLS material).
  [[nodiscard]] bool wait_ready() {
    for (int i = 0; i < 300 && pid_ > 0; ++i) {
      std::ifstream in(dir_ / "port");
      if (in >> port_) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  [[nodiscard]] std::string base() const { return "https://127.0.0.1:" + std::to_string(port_) + "/client/v4"; }
  [[nodiscard]] std::string requests() const { return og::test::read_file(dir_ / "requests.log"); }
  void control(const std::string& json) { og::test::write_file(dir_ / "control.json", json); }
  [[nodiscard]] nlohmann::json state() const { return nlohmann::json::parse(og::test::read_file(dir_ / "state.json")); }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace og::aop::test
