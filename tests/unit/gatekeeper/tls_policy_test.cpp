// The TLS policy in memory: a PolicySet built from certificates made at test time, and real
// OpenSSL handshakes through it over a memory BIO pair (tls_harness.hpp), decided by admit()
// as serve_connection decides. SNI selection, each mtls mode and failure mode, the verify mode
// after the context switch, resumption within and across hosts (TLS 1.2 session ids and
// tickets, TLS 1.3 tickets), and the verdict cache across handshakes, reloads and CRL changes.
#include <gtest/gtest.h>

#include "tls_harness.hpp"
#include "tls_libctx.hpp"

using namespace og::gk;
using namespace og::gk::test;

namespace {

class GkTlsPolicy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    srv_ = new Identity{keygen("EC"), nullptr, {}};
    srv_->cert = certify(srv_->key.get(), "a.test", nullptr, nullptr);
    ca_ = new Identity{keygen("EC"), nullptr, {}};
    ca_->cert = certify(ca_->key.get(), "client CA", nullptr, nullptr, ca_options());
    other_ca_ = new Identity{keygen("EC"), nullptr, {}};
    other_ca_->cert = certify(other_ca_->key.get(), "other zone CA", nullptr, nullptr, ca_options());
    edge_ = issue("edge", ca_);
    other_ = issue("other zone", other_ca_);
    revoked_ = issue("revoked", ca_);
    write_certs(path("srv.pem"), {srv_->cert.get()});
    write_key(path("srv.key"), srv_->key.get());
    write_certs(path("ca.pem"), {ca_->cert.get()});
    const std::time_t now = std::time(nullptr);
    write_crl(path("ca.crl"),
              make_crl(ca_->cert.get(), ca_->key.get(), {revoked_->cert.get()}, now - 60, now + 86400).get());
  }
  static void TearDownTestSuite() {
    for (Identity* i : {srv_, ca_, other_ca_, edge_, other_, revoked_}) delete i;
    delete dir_;
  }

  static Identity* issue(const std::string& cn, const Identity* ca, CertOptions o = {}) {
    auto* id = new Identity{keygen("EC"), nullptr, {}};
    id->cert = certify(id->key.get(), cn, ca->cert.get(), ca->key.get(), o);
    return id;
  }
  static fs::path path(const std::string& name) { return *dir_ / name; }

  static HostConfig host(std::vector<std::string> names, Mtls mtls = Mtls::required) {
    HostConfig h;
    h.names = std::move(names);
    h.certs = {path("srv.pem")};
    h.keys = {path("srv.key")};
    h.mtls = mtls;
    if (mtls != Mtls::off) h.client_ca = path("ca.pem");
    h.upstream = {"127.0.0.1", 8080, {}};
    return h;
  }

  std::shared_ptr<const PolicySet> build(std::vector<HostConfig> hosts, const std::string& default_host = "") {
    GatekeeperConfig cfg;
    cfg.path = "test.toml";
    cfg.hosts = std::move(hosts);
    cfg.default_host = default_host;
    auto set = PolicySet::build(cfg, stats_, clock_.fn());
    EXPECT_TRUE(set) << set.error().message;
    return set ? *set : nullptr;
  }

  static SslCtxPtr client(const Identity* id = nullptr, int version = TLS1_3_VERSION, bool tickets = true) {
    return client_ctx({version, id, tickets});
  }

  static GkConn conn(const PolicySet& set, SSL_CTX* c, std::optional<std::string> sni, SSL_SESSION* offer = nullptr,
                     bool peer_is_edge = false) {
    return gk_connect(set, c, {std::move(sni), offer, peer_is_edge});
  }

  static const HostPolicy* named(const PolicySet& set, const std::string& name) { return set.find(name); }

  HostStatsRegistry stats_;
  FakeClock clock_;
  static inline TempDir* dir_ = nullptr;
  static inline Identity *srv_ = nullptr, *ca_ = nullptr, *other_ca_ = nullptr;
  static inline Identity *edge_ = nullptr, *other_ = nullptr, *revoked_ = nullptr;
};

// ---- SNI --------------------------------------------------------------------------------

TEST_F(GkTlsPolicy, NoSniIsRefusedWithoutDefaultHost) {
  auto set = build({host({"a.test"})});
  auto c = client(edge_);
  auto r = conn(*set, c.get(), std::nullopt);
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.refusal, "no_sni");
  EXPECT_EQ(r.client.alert, SSL_AD_UNRECOGNIZED_NAME);
  EXPECT_EQ(r.conn.host, nullptr);
}

TEST_F(GkTlsPolicy, UnknownSniIsRefused) {
  auto set = build({host({"a.test"})});
  auto c = client(edge_);
  auto r = conn(*set, c.get(), "x.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.refusal, "unknown_sni");
  EXPECT_EQ(r.conn.sni, "x.test");
  EXPECT_EQ(r.client.alert, SSL_AD_UNRECOGNIZED_NAME);
}

TEST_F(GkTlsPolicy, SniIsNormalised) {
  auto set = build({host({"a.test"})});
  auto c = client(edge_);
  auto r = conn(*set, c.get(), "A.Test.");
  EXPECT_TRUE(r.served());
  EXPECT_EQ(r.conn.sni, "a.test");
}

TEST_F(GkTlsPolicy, DefaultHostServesNoAndUnknownSni) {
  auto set = build({host({"a.test"}), host({"b.test"}, Mtls::off)}, "b.test");
  auto c = client();
  for (std::optional<std::string> sni : {std::optional<std::string>(), std::optional<std::string>("x.test")}) {
    auto r = conn(*set, c.get(), sni);
    EXPECT_TRUE(r.served()) << sni.value_or("(none)");
    EXPECT_EQ(r.conn.host, named(*set, "b.test"));
    EXPECT_EQ(r.conn.sni, sni.value_or(""));
  }
  // A known name still gets its own host (and its policy: a.test wants a certificate).
  auto r = conn(*set, c.get(), "a.test");
  EXPECT_EQ(r.conn.host, named(*set, "a.test"));
  EXPECT_FALSE(r.server.done);
}

TEST_F(GkTlsPolicy, ExactNameWinsOverWildcardWhichMatchesOneLabel) {
  auto set = build({host({"*.w.test"}, Mtls::off), host({"x.w.test"}, Mtls::off)});
  const HostPolicy* wild = set->hosts()[0].get();
  const HostPolicy* exact = set->hosts()[1].get();
  auto c = client();
  EXPECT_EQ(conn(*set, c.get(), "x.w.test").conn.host, exact);
  EXPECT_EQ(conn(*set, c.get(), "y.w.test").conn.host, wild);
  EXPECT_EQ(conn(*set, c.get(), "w.test").conn.refusal, "unknown_sni");
  EXPECT_EQ(conn(*set, c.get(), "a.y.w.test").conn.refusal, "unknown_sni");
}

TEST_F(GkTlsPolicy, MalformedSniIsRefused) {
  auto set = build({host({"a.test"})}, "a.test");
  auto c = client(edge_);
  auto r = conn(*set, c.get(), "bad_name!.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.refusal, "malformed_sni");
}

// ---- mtls modes and failure modes ------------------------------------------------------

TEST_F(GkTlsPolicy, RequiredAcceptsTheCaAndRefusesTheRest) {
  auto set = build({host({"a.test"})});
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(v == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    auto good = client(edge_, v);
    auto r = conn(*set, good.get(), "a.test");
    EXPECT_TRUE(r.served());
    EXPECT_EQ(r.conn.verify, VerifyState::success);

    auto none = client(nullptr, v);
    r = conn(*set, none.get(), "a.test");
    EXPECT_FALSE(r.server.done);
    EXPECT_EQ(r.client.alert, v == TLS1_3_VERSION ? SSL_AD_CERTIFICATE_REQUIRED : SSL_AD_HANDSHAKE_FAILURE);

    auto foreign = client(other_, v);
    r = conn(*set, foreign.get(), "a.test");
    EXPECT_FALSE(r.server.done);
    EXPECT_EQ(r.conn.verify, VerifyState::failed);
    EXPECT_EQ(r.client.alert, SSL_AD_UNKNOWN_CA);
  }
}

// Another Cloudflare customer reaches the origin through the same edge with a certificate of
// the global origin-pull CA (other_ca_ plays it, [gatekeeper] origin_pull_ca): a host with its
// own client_ca refuses it, a host without one trusts exactly that CA, in both host orders.
TEST_F(GkTlsPolicy, AHostWithItsOwnCaRefusesTheGlobalCasCertificates) {
  write_certs(path("global-ca.pem"), {other_ca_->cert.get()});
  HostConfig zone = host({"z.test"});
  HostConfig global = host({"g.test"});
  global.client_ca.clear();
  for (bool zone_first : {true, false}) {
    SCOPED_TRACE(zone_first ? "zone host first" : "global host first");
    GatekeeperConfig cfg;
    cfg.path = "test.toml";
    cfg.origin_pull_ca = path("global-ca.pem");
    cfg.hosts = zone_first ? std::vector<HostConfig>{zone, global} : std::vector<HostConfig>{global, zone};
    auto set = PolicySet::build(cfg, stats_, clock_.fn());
    ASSERT_TRUE(set) << set.error().message;
    auto customer = client(other_), mine = client(edge_);
    auto r = conn(**set, customer.get(), "z.test");
    EXPECT_FALSE(r.server.done);
    EXPECT_EQ(r.client.alert, SSL_AD_UNKNOWN_CA);
    EXPECT_TRUE(conn(**set, mine.get(), "z.test").served());
    EXPECT_TRUE(conn(**set, customer.get(), "g.test").served());
    r = conn(**set, mine.get(), "g.test");
    EXPECT_FALSE(r.server.done);
    EXPECT_EQ(r.client.alert, SSL_AD_UNKNOWN_CA);
    EXPECT_FALSE(named(**set, "z.test")->global_ca);
    EXPECT_TRUE(named(**set, "g.test")->global_ca);
  }
  // An unreadable origin_pull_ca refuses the configuration (nothing falls back to no CA).
  GatekeeperConfig bad;
  bad.path = "test.toml";
  bad.origin_pull_ca = path("missing-ca.pem");
  bad.hosts = {global};
  auto set = PolicySet::build(bad, stats_, clock_.fn());
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().message.find("origin_pull_ca"), std::string::npos) << set.error().message;
}

TEST_F(GkTlsPolicy, OptionalAllowsNoCertificateButNotABadOne) {
  auto set = build({host({"a.test"}, Mtls::optional)});
  auto none = client();
  auto r = conn(*set, none.get(), "a.test");
  EXPECT_TRUE(r.served());
  EXPECT_EQ(r.conn.verify, VerifyState::none);
  auto good = client(edge_);
  r = conn(*set, good.get(), "a.test");
  EXPECT_TRUE(r.served());
  EXPECT_EQ(r.conn.verify, VerifyState::success);
  auto foreign = client(other_);
  r = conn(*set, foreign.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.client.alert, SSL_AD_UNKNOWN_CA);
}

TEST_F(GkTlsPolicy, OffRequestsNoCertificate) {
  auto set = build({host({"n.test"}, Mtls::off)});
  auto c = client(other_);
  auto r = conn(*set, c.get(), "n.test");
  EXPECT_TRUE(r.served());
  EXPECT_FALSE(r.peer_cert);
  EXPECT_EQ(r.conn.verify, VerifyState::none);
}

TEST_F(GkTlsPolicy, PageAndCloseFailureModesFinishTheHandshakeThenRefuse) {
  for (OnFailure f : {OnFailure::http_403, OnFailure::http_496, OnFailure::close}) {
    SCOPED_TRACE(to_string(f));
    HostConfig h = host({"a.test"});
    h.on_failure = f;
    auto set = build({h});
    auto none = client();
    auto r = conn(*set, none.get(), "a.test");
    EXPECT_EQ(r.admission, Admission::refuse_client);
    EXPECT_EQ(r.conn.verify, VerifyState::none);
    auto foreign = client(other_);
    r = conn(*set, foreign.get(), "a.test");
    EXPECT_EQ(r.admission, Admission::refuse_client);
    EXPECT_EQ(r.conn.verify, VerifyState::failed);
    auto good = client(edge_);
    EXPECT_TRUE(conn(*set, good.get(), "a.test").served());
  }
}

TEST_F(GkTlsPolicy, RevokedByCrlIsRefused) {
  HostConfig h = host({"a.test"});
  h.crls = {path("ca.crl")};
  auto set = build({h});
  auto revoked = client(revoked_);
  auto r = conn(*set, revoked.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "certificate revoked");
  auto good = client(edge_);
  EXPECT_TRUE(conn(*set, good.get(), "a.test").served());
}

TEST_F(GkTlsPolicy, PinsAndSubject) {
  HostConfig pinned = host({"a.test"});
  pinned.pin_spki_sha256 = {base64(*spki_sha256(ca_->cert.get()))};
  HostConfig wrong_pin = host({"b.test"});
  wrong_pin.pin_spki_sha256 = {base64(*spki_sha256(other_ca_->cert.get()))};
  HostConfig cn = host({"c.test"});
  cn.client_cn = {"someone else"};
  auto set = build({pinned, wrong_pin, cn});
  auto c = client(edge_);
  EXPECT_TRUE(conn(*set, c.get(), "a.test").served());
  auto r = conn(*set, c.get(), "b.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "no certificate of the chain matches the host's pins");
  r = conn(*set, c.get(), "c.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "client certificate subject/SAN not allowed");
}

TEST_F(GkTlsPolicy, RequireEdgeIpRefusesOtherSourcesInTheClientHello) {
  HostConfig h = host({"e.test"});
  h.require_edge_ip = true;
  auto set = build({h});
  auto c = client(edge_);
  auto r = conn(*set, c.get(), "e.test", nullptr, false);
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.refusal, "not_edge_ip");
  EXPECT_EQ(r.client.alert, SSL_AD_ACCESS_DENIED);
  EXPECT_TRUE(conn(*set, c.get(), "e.test", nullptr, true).served());
}

// The starting context is the first host's; the SNI's host decides whether a certificate is
// asked for, in both orders.
TEST_F(GkTlsPolicy, VerifyModeFollowsTheSniHostInBothOrders) {
  for (bool off_first : {true, false}) {
    SCOPED_TRACE(off_first ? "mtls=off host first" : "mtls=required host first");
    auto set = off_first ? build({host({"n.test"}, Mtls::off), host({"a.test"})})
                         : build({host({"a.test"}), host({"n.test"}, Mtls::off)});
    auto none = client();
    auto r = conn(*set, none.get(), "a.test");
    EXPECT_FALSE(r.server.done);
    EXPECT_EQ(r.client.alert, SSL_AD_CERTIFICATE_REQUIRED);
    auto c = client(edge_);
    r = conn(*set, c.get(), "n.test");
    EXPECT_TRUE(r.served());
    EXPECT_FALSE(r.peer_cert);
    r = conn(*set, c.get(), "a.test");
    EXPECT_TRUE(r.served());
    EXPECT_EQ(r.conn.verify, VerifyState::success);
  }
}

// ---- resumption ----------------------------------------------------------------------

struct Resumption {
  const char* name;
  int version;
  bool client_tickets;
};
const Resumption kResumptions[] = {
    {"TLS 1.3 ticket", TLS1_3_VERSION, true},
    {"TLS 1.2 ticket", TLS1_2_VERSION, true},
};

TEST_F(GkTlsPolicy, TicketsResumeOnTheirHostOnly) {
  auto set = build({host({"a.test", "www.a.test"}), host({"b.test"}), host({"n.test"}, Mtls::off)});
  for (const auto& k : kResumptions) {
    SCOPED_TRACE(k.name);
    auto c = client(edge_, k.version, k.client_tickets);
    auto first = conn(*set, c.get(), "a.test");
    ASSERT_TRUE(first.served());
    ASSERT_TRUE(first.session);
    auto same = conn(*set, c.get(), "a.test", first.session.get());
    EXPECT_TRUE(same.resumed);
    EXPECT_TRUE(same.served());
    EXPECT_EQ(same.conn.verify, VerifyState::success);  // the stored verdict
    for (const char* other : {"www.a.test", "b.test", "n.test"}) {
      auto cross = conn(*set, c.get(), other, first.session.get());
      EXPECT_FALSE(cross.resumed) << other;
      EXPECT_TRUE(cross.served()) << other;  // after a full handshake
    }
  }
}

// Issue 15 finding 5: a TLS 1.2 session-id session carried no SNI, so its resumption on the
// same host was dropped after the handshake. Session ids come from a client without tickets
// and from any TLS 1.2 client on a session_tickets = false host.
TEST_F(GkTlsPolicy, SessionIdsResumeOnTheirHostOnly) {
  HostConfig no_tickets = host({"t.test"});
  no_tickets.session_tickets = false;
  auto set = build({host({"a.test", "www.a.test"}), host({"b.test"}), no_tickets, host({"n.test"}, Mtls::off)});
  struct Case {
    const char* sni;
    bool client_tickets;
  };
  for (Case k : {Case{"a.test", false}, Case{"t.test", false}, Case{"t.test", true}, Case{"n.test", false}}) {
    SCOPED_TRACE(std::string(k.sni) + (k.client_tickets ? " (client offers tickets)" : " (client without tickets)"));
    auto c = client(edge_, TLS1_2_VERSION, k.client_tickets);
    auto first = conn(*set, c.get(), k.sni);
    ASSERT_TRUE(first.served());
    ASSERT_TRUE(first.session);
    EXPECT_FALSE(SSL_SESSION_has_ticket(first.session.get()));
    auto same = conn(*set, c.get(), k.sni, first.session.get());
    EXPECT_TRUE(same.resumed);
    EXPECT_TRUE(same.served()) << same.conn.refusal;
    // Another host, or another name of the same host: a full handshake, never a drop.
    for (const char* other : {"a.test", "www.a.test", "b.test", "t.test", "n.test"}) {
      if (std::string_view(other) == k.sni) continue;
      auto cross = conn(*set, c.get(), other, first.session.get());
      EXPECT_FALSE(cross.resumed) << other;
      EXPECT_TRUE(cross.served()) << other;
    }
  }
}

// Without tickets a TLS 1.3 session cannot be resumed at all (no stateful tickets either).
TEST_F(GkTlsPolicy, NoTicketsMeansNoTls13Resumption) {
  HostConfig no_tickets = host({"t.test"});
  no_tickets.session_tickets = false;
  auto set = build({no_tickets});
  auto c = client(edge_, TLS1_3_VERSION);
  auto first = conn(*set, c.get(), "t.test");
  ASSERT_TRUE(first.served());
  if (first.session) {
    EXPECT_FALSE(SSL_SESSION_is_resumable(first.session.get()));
  }
  auto again = conn(*set, c.get(), "t.test", first.session.get());
  EXPECT_FALSE(again.resumed);
  EXPECT_TRUE(again.served());
}

TEST_F(GkTlsPolicy, SessionsDoNotSurviveAReload) {
  auto c = client(edge_, TLS1_3_VERSION);
  auto set = build({host({"a.test"})});
  auto first = conn(*set, c.get(), "a.test");
  ASSERT_TRUE(first.session);
  auto reloaded = build({host({"a.test"})});
  auto r = conn(*reloaded, c.get(), "a.test", first.session.get());
  EXPECT_FALSE(r.resumed);
  EXPECT_TRUE(r.served());
}

TEST_F(GkTlsPolicy, ResumedSessionOfAFailedClientIsStillRefused) {
  HostConfig h = host({"a.test"});
  h.on_failure = OnFailure::http_403;
  auto set = build({h});
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto c = client(other_, v);
    auto first = conn(*set, c.get(), "a.test");
    ASSERT_EQ(first.admission, Admission::refuse_client);
    ASSERT_TRUE(first.session);
    auto again = conn(*set, c.get(), "a.test", first.session.get());
    EXPECT_TRUE(again.resumed) << v;
    EXPECT_EQ(again.conn.verify, VerifyState::failed) << v;
    EXPECT_EQ(again.admission, Admission::refuse_client) << v;
  }
}

// As a worker thread runs them: the view is the thread's default context, where OpenSSL 3.0
// parses the session of every ticket it issues or decrypts. Tickets still resume on their host
// only, with the stored verdict, and a failed client's session is still refused.
TEST_F(GkTlsPolicy, TicketsThroughTheViewKeepTheirBindingAndVerdict) {
  const TlsLibctxScope view;
  HostConfig failing = host({"f.test"});
  failing.on_failure = OnFailure::http_403;
  auto set = build({host({"a.test"}), host({"b.test"}), failing});
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(v);
    auto c = client(edge_, v);
    auto first = conn(*set, c.get(), "a.test");
    ASSERT_TRUE(first.served());
    ASSERT_TRUE(first.session);
    auto same = conn(*set, c.get(), "a.test", first.session.get());
    EXPECT_TRUE(same.resumed);
    EXPECT_TRUE(same.served());
    EXPECT_EQ(same.conn.verify, VerifyState::success);
    auto cross = conn(*set, c.get(), "b.test", first.session.get());
    EXPECT_FALSE(cross.resumed);
    auto bad = client(other_, v);
    auto refused = conn(*set, bad.get(), "f.test");
    ASSERT_EQ(refused.admission, Admission::refuse_client);
    ASSERT_TRUE(refused.session);
    auto again = conn(*set, bad.get(), "f.test", refused.session.get());
    EXPECT_TRUE(again.resumed);
    EXPECT_EQ(again.conn.verify, VerifyState::failed);
    EXPECT_EQ(again.admission, Admission::refuse_client);
  }
}

// ---- verdict cache ---------------------------------------------------------------------

TEST_F(GkTlsPolicy, VerdictCacheHitsUntilAReload) {
  auto set = build({host({"a.test"})});
  auto c = client(edge_);
  auto r = conn(*set, c.get(), "a.test");
  EXPECT_TRUE(r.served());
  EXPECT_FALSE(r.conn.verdict_cached);
  r = conn(*set, c.get(), "a.test");
  EXPECT_TRUE(r.served());
  EXPECT_TRUE(r.conn.verdict_cached);
  // A foreign chain is never answered from the cache.
  auto foreign = client(other_);
  r = conn(*set, foreign.get(), "a.test");
  EXPECT_FALSE(r.conn.verdict_cached);
  EXPECT_EQ(r.conn.verify, VerifyState::failed);
  // A reload starts with an empty cache.
  auto reloaded = build({host({"a.test"})});
  r = conn(*reloaded, c.get(), "a.test");
  EXPECT_TRUE(r.served());
  EXPECT_FALSE(r.conn.verdict_cached);
  EXPECT_TRUE(conn(*reloaded, c.get(), "a.test").conn.verdict_cached);
}

TEST_F(GkTlsPolicy, VerdictCacheIsPerHost) {
  auto set = build({host({"a.test"}), host({"b.test"})});
  auto c = client(edge_);
  EXPECT_FALSE(conn(*set, c.get(), "a.test").conn.verdict_cached);
  EXPECT_FALSE(conn(*set, c.get(), "b.test").conn.verdict_cached);
  EXPECT_TRUE(conn(*set, c.get(), "b.test").conn.verdict_cached);
}

TEST_F(GkTlsPolicy, ACrlChangeRevokesACachedChain) {
  TempDir d;
  const std::time_t now = *clock_.now;
  write_crl(d / "crl.pem", make_crl(ca_->cert.get(), ca_->key.get(), {}, now - 60, now + 86400).get());
  HostConfig h = host({"a.test"});
  h.crls = {d / "crl.pem"};
  auto set = build({h});
  auto c = client(edge_);
  EXPECT_TRUE(conn(*set, c.get(), "a.test").served());
  EXPECT_TRUE(conn(*set, c.get(), "a.test").conn.verdict_cached);
  // The new CRL revokes edge; the changed file reloads the policy (server.cpp's watcher).
  write_crl(d / "crl.pem", make_crl(ca_->cert.get(), ca_->key.get(), {edge_->cert.get()}, now - 30, now + 86400).get());
  auto reloaded = build({h});
  auto r = conn(*reloaded, c.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_FALSE(r.conn.verdict_cached);
  EXPECT_EQ(r.conn.verify_reason, "certificate revoked");
  EXPECT_EQ(r.client.alert, SSL_AD_CERTIFICATE_REVOKED);
}

TEST_F(GkTlsPolicy, VerdictCacheRespectsTheChainsNotAfter) {
  const std::time_t now = *clock_.now;
  CertOptions o;
  o.not_after = now + 100;
  std::unique_ptr<Identity> brief(issue("brief", ca_, o));
  auto set = build({host({"a.test"})});
  auto c = client(brief.get());
  EXPECT_TRUE(conn(*set, c.get(), "a.test").served());
  EXPECT_TRUE(conn(*set, c.get(), "a.test").conn.verdict_cached);
  clock_.advance(101);
  auto r = conn(*set, c.get(), "a.test");
  EXPECT_FALSE(r.conn.verdict_cached);
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "certificate has expired");
}

// Issue 15 finding 6: cached verdicts outlived the host's CRL. Once a CRL's nextUpdate has
// passed, X509_verify_cert refuses every chain ("CRL has expired"); a cached verdict must not
// answer for it either.
TEST_F(GkTlsPolicy, VerdictCacheEndsAtTheCrlsNextUpdate) {
  TempDir d;
  const std::time_t now = *clock_.now;
  write_crl(d / "short.crl", make_crl(ca_->cert.get(), ca_->key.get(), {}, now - 60, now + 5).get());
  write_crl(d / "long.crl", make_crl(other_ca_->cert.get(), other_ca_->key.get(), {}, now - 60, now + 86400).get());
  HostConfig h = host({"a.test"});
  h.crls = {d / "long.crl", d / "short.crl"};
  auto set = build({h});
  auto c = client(edge_);
  EXPECT_TRUE(conn(*set, c.get(), "a.test").served());
  clock_.advance(4);
  auto r = conn(*set, c.get(), "a.test");
  EXPECT_TRUE(r.served());
  EXPECT_TRUE(r.conn.verdict_cached);
  clock_.advance(1);  // now == nextUpdate: OpenSSL counts the CRL as expired
  r = conn(*set, c.get(), "a.test");
  EXPECT_FALSE(r.conn.verdict_cached);
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "CRL has expired");
  EXPECT_EQ(r.client.alert, SSL_AD_CERTIFICATE_EXPIRED);
}

// ---- client_ca = "aop:<zone>": the agent's bundle, the zone's CAs then their CRLs -------

class GkAopBundle : public GkTlsPolicy {
 protected:
  TempDir d;
  HostConfig h = aop_host();
  HostConfig aop_host() {
    HostConfig x = host({"a.test"});
    x.client_ca = d / "zone.pem";
    x.client_ca_aop_zone = "0123456789abcdef0123456789abcdef";
    return x;
  }
  // What the agent exports: CA certificates, then CRLs.
  void bundle(const std::vector<X509*>& cas, const std::vector<X509_CRL*>& crls) {
    write_certs(h.client_ca, cas);
    BioPtr b(BIO_new_file(h.client_ca.c_str(), "a"));
    ASSERT_TRUE(b);
    for (X509_CRL* c : crls) ASSERT_EQ(PEM_write_bio_X509_CRL(b.get(), c), 1);
  }
  X509CrlPtr crl_of(const Identity* ca, const std::vector<X509*>& revoked) {
    const std::time_t now = *clock_.now;
    return make_crl(ca->cert.get(), ca->key.get(), revoked, now - 60, now + 7 * 86400);
  }
};

// Issue 12: a certificate the agent retired (deleted at Cloudflare, not expired) is refused
// once the agent's bundle lists it, and the verdict cache of the policy before the reload does
// not answer for it; the zone's current certificate is accepted.
TEST_F(GkAopBundle, ARetiredZoneCertificateIsRefusedAfterTheReloadTheCurrentOneAccepted) {
  bundle({ca_->cert.get()}, {crl_of(ca_, {}).get()});
  auto set = build({h});
  auto old_cert = client(revoked_);
  EXPECT_TRUE(conn(*set, old_cert.get(), "a.test").served());
  EXPECT_TRUE(conn(*set, old_cert.get(), "a.test").conn.verdict_cached);
  bundle({ca_->cert.get()}, {crl_of(ca_, {revoked_->cert.get()}).get()});
  auto reloaded = build({h});
  auto r = conn(*reloaded, old_cert.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_FALSE(r.conn.verdict_cached);
  EXPECT_EQ(r.conn.verify_reason, "certificate revoked");
  auto current = client(edge_);
  EXPECT_TRUE(conn(*reloaded, current.get(), "a.test").served());
  std::string reason;
  EXPECT_EQ(verify_client_chain(*named(*reloaded, "a.test"), revoked_->cert.get(), nullptr, reason),
            VerifyState::failed);
  EXPECT_EQ(reason, "certificate revoked");
}

// Fail closed: a bundle without CRLs does not load (the error says why); a CRL signed by
// another key under the zone CA's name, or a CRL for another CA only, refuses the zone's
// certificates; a leaf of an impostor CA with the zone CA's name is refused.
TEST_F(GkAopBundle, AMissingForeignOrForgedCrlRefusesTheZonesCertificates) {
  bundle({ca_->cert.get()}, {});
  GatekeeperConfig cfg;
  cfg.path = "test.toml";
  cfg.hosts = {h};
  auto none = PolicySet::build(cfg, stats_, clock_.fn());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("aop:0123456789abcdef0123456789abcdef: the agent's bundle must carry the "
                                      "zone's CRL"),
            std::string::npos)
      << none.error().message;

  Identity impostor{keygen("EC"), nullptr, {}};
  impostor.cert = certify(impostor.key.get(), "client CA", nullptr, nullptr, ca_options());  // the zone CA's name
  auto current = client(edge_);
  bundle({ca_->cert.get()}, {crl_of(&impostor, {}).get()});
  auto forged = build({h});
  auto r = conn(*forged, current.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "CRL signature failure");

  bundle({ca_->cert.get()}, {crl_of(other_ca_, {}).get()});
  auto foreign = build({h});
  r = conn(*foreign, current.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "unable to get certificate CRL");

  bundle({ca_->cert.get()}, {crl_of(ca_, {}).get()});
  auto good = build({h});
  EXPECT_TRUE(conn(*good, current.get(), "a.test").served());
  std::unique_ptr<Identity> fake(issue("edge", &impostor));
  auto f = client(fake.get());
  r = conn(*good, f.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "certificate signature failure");
}

// The migration from the global certificate: while the agent's bundle holds the global
// origin-pull CA (other_ca_ plays it, [gatekeeper] origin_pull_ca), the global leaf is accepted
// though that CA has no CRL; a zone leaf still needs the zone's CRL (a revoked one refused); a
// look-alike of the global CA gets nothing; a CA without a CRL that is not the global one gets
// no exemption; once the agent drops the global CA, the global leaf is refused.
TEST_F(GkAopBundle, MigrationAcceptsTheGlobalLeafWithoutACrlOnlyWhileItsCaIsInTheBundle) {
  write_certs(d / "global-ca.pem", {other_ca_->cert.get()});
  auto build_global = [&](const fs::path& origin_pull_ca) {
    GatekeeperConfig cfg;
    cfg.path = "test.toml";
    cfg.hosts = {h};
    cfg.origin_pull_ca = origin_pull_ca;
    auto set = PolicySet::build(cfg, stats_, clock_.fn());
    EXPECT_TRUE(set) << set.error().message;
    return set ? *set : nullptr;
  };
  bundle({ca_->cert.get(), other_ca_->cert.get()}, {crl_of(ca_, {revoked_->cert.get()}).get()});
  auto set = build_global(d / "global-ca.pem");
  ASSERT_TRUE(set);
  auto global = client(other_);
  auto zone = client(edge_);
  auto retired = client(revoked_);
  EXPECT_TRUE(conn(*set, global.get(), "a.test").served());
  EXPECT_TRUE(conn(*set, zone.get(), "a.test").served());
  auto r = conn(*set, retired.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "certificate revoked");
  const HostPolicy& host = *named(*set, "a.test");
  EXPECT_TRUE(host.global_ca);
  std::string reason;
  EXPECT_EQ(verify_client_chain(host, other_->cert.get(), nullptr, reason), VerifyState::success) << reason;

  Identity lookalike{keygen("EC"), nullptr, {}};
  lookalike.cert = certify(lookalike.key.get(), "other zone CA", nullptr, nullptr, ca_options());
  std::unique_ptr<Identity> fake(issue("origin-pull.cloudflare.net", &lookalike));
  auto f = client(fake.get());
  r = conn(*set, f.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "certificate signature failure");

  // The same bundle when other_ca_ is not the origin-pull CA: no exemption.
  auto plain = build({h});
  r = conn(*plain, global.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "unable to get certificate CRL");
  EXPECT_FALSE(named(*plain, "a.test")->global_ca);

  // The migration is over: the agent's bundle holds the zone CA alone.
  bundle({ca_->cert.get()}, {crl_of(ca_, {revoked_->cert.get()}).get()});
  auto after = build_global(d / "global-ca.pem");
  r = conn(*after, global.get(), "a.test");
  EXPECT_FALSE(r.server.done);
  EXPECT_EQ(r.conn.verify_reason, "unable to get local issuer certificate");
  EXPECT_TRUE(conn(*after, zone.get(), "a.test").served());
  EXPECT_FALSE(named(*after, "a.test")->global_ca);
}

TEST(GkChainKey, DistinguishesChainsAndRefusesWhatItCannotHash) {
  EvpPkeyPtr k = keygen("EC");
  X509Ptr a = certify(k.get(), "a", nullptr, nullptr), b = certify(k.get(), "b", nullptr, nullptr);
  auto ka = chain_key(a.get(), nullptr), kb = chain_key(b.get(), nullptr);
  ASSERT_TRUE(ka && kb);
  EXPECT_NE(*ka, *kb);
  EXPECT_EQ(chain_key(a.get(), nullptr), ka);
  STACK_OF(X509)* with_b = sk_X509_new_null();
  sk_X509_push(with_b, b.get());
  auto kab = chain_key(a.get(), with_b);
  ASSERT_TRUE(kab);
  EXPECT_NE(*kab, *ka);
  // A certificate that cannot be DER-encoded gives no key (never the all-zero one).
  X509Ptr empty(X509_new());
  EXPECT_EQ(chain_key(empty.get(), nullptr), std::nullopt);
  sk_X509_push(with_b, empty.get());
  EXPECT_EQ(chain_key(a.get(), with_b), std::nullopt);
  EXPECT_EQ(chain_key(nullptr, nullptr), std::nullopt);
  sk_X509_free(with_b);
  ERR_clear_error();
}

// A leaf under `n` intermediates under the client CA; the client sends leaf + intermediates.
struct DeepChain {
  std::vector<std::unique_ptr<Identity>> cas;
  Identity leaf;
};
std::unique_ptr<DeepChain> deep_chain(const Identity& root, int n) {
  auto d = std::make_unique<DeepChain>();
  const Identity* issuer = &root;
  for (int i = 0; i < n; ++i) {
    auto ca = std::make_unique<Identity>();
    ca->key = keygen("EC");
    ca->cert = certify(ca->key.get(), "intermediate " + std::to_string(i + 1), issuer->cert.get(), issuer->key.get(),
                       ca_options());
    issuer = ca.get();
    d->cas.push_back(std::move(ca));
  }
  d->leaf.key = keygen("EC");
  d->leaf.cert = certify(d->leaf.key.get(), "deep leaf", issuer->cert.get(), issuer->key.get());
  for (auto it = d->cas.rbegin(); it != d->cas.rend(); ++it) d->leaf.chain.push_back((*it)->cert.get());
  return d;
}

// Issue 15 finding 11: the verify depth is the starting context's (SSL_set_SSL_CTX does not
// carry it over), so with an mtls = "off" host first a chain of 8 intermediates was accepted.
TEST_F(GkTlsPolicy, ChainDepthLimitInBothHostOrders) {
  auto deep = deep_chain(*ca_, 8);
  auto allowed = deep_chain(*ca_, kMaxClientChainDepth);
  auto one_more = deep_chain(*ca_, kMaxClientChainDepth + 1);
  for (bool off_first : {true, false}) {
    SCOPED_TRACE(off_first ? "mtls=off host first" : "mtls=required host first");
    auto set = off_first ? build({host({"n.test"}, Mtls::off), host({"a.test"})})
                         : build({host({"a.test"}), host({"n.test"}, Mtls::off)});
    for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      auto c = client(&deep->leaf, v);
      auto r = conn(*set, c.get(), "a.test");
      EXPECT_FALSE(r.server.done);
      EXPECT_EQ(r.conn.verify, VerifyState::failed);
      EXPECT_EQ(r.conn.verify_reason, "certificate chain too long");
      auto ok = client(&allowed->leaf, v);
      EXPECT_TRUE(conn(*set, ok.get(), "a.test").served());
      auto over = client(&one_more->leaf, v);
      EXPECT_EQ(conn(*set, over.get(), "a.test").conn.verify_reason, "certificate chain too long");
    }
  }
}

// Issue 15 finding 13: a client could make the server parse (and decode the key of) every
// certificate of a huge junk chain before any verdict. The Certificate message is capped at
// max_client_chain_bytes (SSL_set_max_cert_list in the client-hello callback): larger ones are
// refused when their length is read, before a certificate is parsed or verified.
TEST_F(GkTlsPolicy, OversizedClientChainIsRefusedBeforeParsing) {
  EvpPkeyPtr junk_key = keygen("EC");
  std::vector<X509Ptr> junk;
  for (int i = 0; i < 200; ++i) junk.push_back(certify(junk_key.get(), "junk " + std::to_string(i), nullptr, nullptr));
  Identity junk_chain{std::move(junk_key), std::move(junk[0]), {}};
  Identity edge_plus_junk{nullptr, nullptr, {}};
  edge_plus_junk.key.reset(EVP_PKEY_dup(edge_->key.get()));
  edge_plus_junk.cert.reset(X509_dup(edge_->cert.get()));
  for (std::size_t i = 1; i < junk.size(); ++i) {
    junk_chain.chain.push_back(junk[i].get());
    edge_plus_junk.chain.push_back(junk[i].get());
  }
  // Under the cap, surplus certificates are harmless: the chain is built from the leaf.
  Identity edge_plus_some{nullptr, nullptr, {junk[1].get(), junk[2].get(), junk[3].get()}};
  edge_plus_some.key.reset(EVP_PKEY_dup(edge_->key.get()));
  edge_plus_some.cert.reset(X509_dup(edge_->cert.get()));

  auto set = build({host({"n.test"}, Mtls::off), host({"a.test"})});
  EXPECT_EQ(set->config().max_client_chain_bytes, 16384u);
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(v == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    for (const Identity* id : {&junk_chain, &edge_plus_junk}) {
      auto c = client(id, v);
      auto r = conn(*set, c.get(), "a.test");
      EXPECT_FALSE(r.server.done);
      EXPECT_EQ(r.server.reason, SSL_R_EXCESSIVE_MESSAGE_SIZE) << r.server.error;
      EXPECT_EQ(r.conn.refusal, "client_chain_too_large");
      EXPECT_EQ(r.conn.verify, VerifyState::none);  // never reached verification
      EXPECT_EQ(r.server.alert_sent, SSL_AD_ILLEGAL_PARAMETER);
    }
    auto c = client(&edge_plus_some, v);
    EXPECT_TRUE(conn(*set, c.get(), "a.test").served());
  }
  EXPECT_EQ(named(*set, "a.test")->stats.refused_verify.load(), 4u);
}

TEST_F(GkTlsPolicy, ChainByteCapIsConfigurable) {
  auto five = deep_chain(*ca_, 5);
  GatekeeperConfig cfg;
  cfg.path = "test.toml";
  cfg.hosts = {host({"a.test"})};
  cfg.max_client_chain_bytes = 1024;  // less than leaf + 5 intermediates
  auto set = PolicySet::build(cfg);
  ASSERT_TRUE(set) << set.error().message;
  auto c = client(&five->leaf);
  EXPECT_EQ(conn(**set, c.get(), "a.test").conn.refusal, "client_chain_too_large");
  auto small = client(edge_);
  EXPECT_TRUE(conn(**set, small.get(), "a.test").served());
}

// Issue 15 finding 12: what the accept loop and the client-hello deadline rely on.
TEST_F(GkTlsPolicy, EveryHostRequiresEdgeIpOnlyWhenAllDo) {
  HostConfig e = host({"e.test"});
  e.require_edge_ip = true;
  HostConfig f = host({"f.test"}, Mtls::off);
  f.require_edge_ip = true;
  EXPECT_TRUE(build({e, f})->every_host_requires_edge_ip());
  EXPECT_FALSE(build({e, host({"a.test"})})->every_host_requires_edge_ip());
  EXPECT_FALSE(build({host({"a.test"})})->every_host_requires_edge_ip());
}

TEST_F(GkTlsPolicy, ClientHelloArrivalIsReportedBeforeItIsJudged) {
  auto set = build({host({"a.test"})});
  auto c = client(edge_);
  for (std::optional<std::string> sni : {std::optional<std::string>("a.test"), std::optional<std::string>("x.test")}) {
    SslPtr cl(SSL_new(c.get())), sv(SSL_new(set->dispatch_ctx()));
    BIO *c2s = nullptr, *s2c = nullptr;
    ASSERT_EQ(BIO_new_bio_pair(&c2s, 0, &s2c, 0), 1);
    SSL_set_bio(cl.get(), c2s, c2s);
    SSL_set_bio(sv.get(), s2c, s2c);
    SSL_set_connect_state(cl.get());
    SSL_set_accept_state(sv.get());
    SSL_ctrl(cl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(sni->c_str()));
    ConnTls conn;
    conn.set = set.get();
    int calls = 0;
    conn.client_hello_arrived = [&] { ++calls; };
    attach(sv.get(), &conn);
    SideResult cr, sr;
    EXPECT_EQ(SSL_do_handshake(sv.get()), -1);  // nothing sent yet: no ClientHello
    EXPECT_EQ(calls, 0);
    drive(cl.get(), sv.get(), cr, sr);
    EXPECT_EQ(calls, 1) << *sni;
    EXPECT_EQ(sr.done, *sni == "a.test");
    attach(sv.get(), nullptr);
    ERR_clear_error();
  }
}

// ---- a second attacker's pass over the TLS path ------------------------------------------

// A TLS 1.3 ticket replayed in a TLS 1.2 handshake (its own host and another) is not resumed.
TEST_F(GkTlsPolicy, TicketOfAnotherVersionIsNotResumed) {
  auto set = build({host({"a.test"}), host({"b.test"})});
  auto c13 = client(edge_, TLS1_3_VERSION);
  auto first = conn(*set, c13.get(), "a.test");
  ASSERT_TRUE(first.session && SSL_SESSION_has_ticket(first.session.get()));
  SessionPtr as12(SSL_SESSION_dup(first.session.get()));
  ASSERT_EQ(SSL_SESSION_set_protocol_version(as12.get(), TLS1_2_VERSION), 1);
  auto c12 = client(edge_, TLS1_2_VERSION);
  for (const char* sni : {"a.test", "b.test"}) {
    auto r = conn(*set, c12.get(), sni, as12.get());
    EXPECT_FALSE(r.resumed) << sni;
    EXPECT_TRUE(r.served()) << sni;
  }
}

// A ticket altered in transit (one byte of its encrypted body) is not resumed.
TEST_F(GkTlsPolicy, TamperedTicketGetsAFullHandshake) {
  auto set = build({host({"a.test"})});
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto c = client(edge_, v);
    auto first = conn(*set, c.get(), "a.test");
    ASSERT_TRUE(first.session);
    const unsigned char* tick = nullptr;
    std::size_t len = 0;
    SSL_SESSION_get0_ticket(first.session.get(), &tick, &len);
    ASSERT_GT(len, 40u);
    const_cast<unsigned char*>(tick)[len - 40] ^= 0x01;  // inside the encrypted state, before the MAC
    auto r = conn(*set, c.get(), "a.test", first.session.get());
    EXPECT_FALSE(r.resumed) << v;
    EXPECT_TRUE(r.served()) << v;
  }
}

// Unknown or missing SNI served by default_host: a session stays with the name (or absence of
// one) it was made under; offered under another it gets a full handshake, never a drop.
TEST_F(GkTlsPolicy, DefaultHostSessionsStayWithTheirSni) {
  auto set = build({host({"a.test"}), host({"b.test"})}, "b.test");
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    for (bool tickets : {true, false}) {
      if (v == TLS1_3_VERSION && !tickets) continue;
      SCOPED_TRACE(std::to_string(v) + (tickets ? " tickets" : " session ids"));
      auto c = client(edge_, v, tickets);
      std::vector<std::optional<std::string>> names = {std::nullopt, "x.test", "b.test"};
      for (const auto& made : names) {
        auto first = conn(*set, c.get(), made);
        ASSERT_TRUE(first.served());
        for (const auto& offered : names) {
          auto r = conn(*set, c.get(), offered, first.session.get());
          EXPECT_EQ(r.resumed, made == offered) << made.value_or("-") << " -> " << offered.value_or("-");
          EXPECT_TRUE(r.served()) << made.value_or("-") << " -> " << offered.value_or("-");
        }
      }
    }
  }
}

// Resumption does not skip the source check: the client-hello callback runs for every
// handshake, resumed or not.
TEST_F(GkTlsPolicy, ResumptionStillChecksTheEdgeSource) {
  HostConfig h = host({"e.test"});
  h.require_edge_ip = true;
  auto set = build({h});
  for (int v : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto c = client(edge_, v);
    auto first = conn(*set, c.get(), "e.test", nullptr, true);
    ASSERT_TRUE(first.served());
    auto r = conn(*set, c.get(), "e.test", first.session.get(), false);
    EXPECT_FALSE(r.server.done);
    EXPECT_EQ(r.conn.refusal, "not_edge_ip");
  }
}

// No 0-RTT: early data would be replayable and arrive before the handshake is judged.
TEST_F(GkTlsPolicy, NoEarlyDataIsOffered) {
  auto set = build({host({"a.test"})});
  auto c = client(edge_, TLS1_3_VERSION);
  auto first = conn(*set, c.get(), "a.test");
  ASSERT_TRUE(first.session);
  EXPECT_EQ(SSL_SESSION_get_max_early_data(first.session.get()), 0u);
}

// Raw client and server SSLs on a PolicySet, for what gk_connect does not cover.
struct RawConn {
  SslPtr client, server;
  ConnTls conn;
  int hellos = 0;
  RawConn(const PolicySet& set, SSL_CTX* cctx, const char* sni) {
    std::tie(client, server) = connect(cctx, set.dispatch_ctx());
    SSL_ctrl(client.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(sni));
    conn.set = &set;
    conn.client_hello_arrived = [this] { ++hellos; };
    attach(server.get(), &conn);
  }
  ~RawConn() { attach(server.get(), nullptr); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
};

// A TLS 1.2 client asking to renegotiate (which would run the client-hello callback again,
// e.g. for another SNI) is refused; the connection's host and verdict stay those of the
// first handshake.
TEST_F(GkTlsPolicy, ClientRenegotiationIsRefused) {
  auto set = build({host({"n.test"}, Mtls::off), host({"a.test"})});
  auto c = client(edge_, TLS1_2_VERSION);
  RawConn rc(*set, c.get(), "n.test");
  SideResult cr, sr;
  drive(rc.client.get(), rc.server.get(), cr, sr);
  ASSERT_TRUE(cr.done && sr.done);
  ASSERT_EQ(admit(rc.server.get(), rc.conn), Admission::serve);
  ASSERT_EQ(SSL_renegotiate(rc.client.get()), 1);
  SideResult seen;  // what the client hears back
  SSL_set_ex_data(rc.client.get(), detail::side_index(), &seen);
  char buf[8];
  // The client's renegotiation ClientHello goes out with its next handshake step; the server
  // reads it while reading application data and answers no_renegotiation.
  (void)SSL_do_handshake(rc.client.get());
  EXPECT_LE(SSL_read(rc.server.get(), buf, sizeof buf), 0);
  EXPECT_LE(SSL_do_handshake(rc.client.get()), 0);
  SSL_set_ex_data(rc.client.get(), detail::side_index(), nullptr);
  EXPECT_EQ(seen.alert, SSL_AD_NO_RENEGOTIATION);
  EXPECT_EQ(rc.hellos, 1);
  EXPECT_EQ(rc.conn.host, named(*set, "n.test"));
  EXPECT_EQ(SSL_num_renegotiations(rc.server.get()), 0);
  ERR_clear_error();
}

// A HelloRetryRequest makes the client send a second ClientHello: the callback runs again
// and the connection still ends on its host with its policy.
TEST_F(GkTlsPolicy, HelloRetryRequestKeepsThePolicy) {
  auto set = build({host({"n.test"}, Mtls::off), host({"a.test"})});
  for (const auto& h : set->hosts()) ASSERT_EQ(SSL_CTX_set1_groups_list(h->ctx.get(), "P-256"), 1);
  auto c = client(edge_, TLS1_3_VERSION);
  ASSERT_EQ(SSL_CTX_set1_groups_list(c.get(), "X25519:P-256"), 1);  // a key share for X25519 only
  RawConn rc(*set, c.get(), "a.test");
  SideResult cr, sr;
  drive(rc.client.get(), rc.server.get(), cr, sr);
  ASSERT_TRUE(cr.done && sr.done) << sr.error;
  EXPECT_EQ(rc.hellos, 2);  // the HelloRetryRequest happened
  EXPECT_EQ(admit(rc.server.get(), rc.conn), Admission::serve);
  EXPECT_EQ(rc.conn.host, named(*set, "a.test"));
  EXPECT_EQ(rc.conn.verify, VerifyState::success);
  auto none = client(nullptr, TLS1_3_VERSION);
  ASSERT_EQ(SSL_CTX_set1_groups_list(none.get(), "X25519:P-256"), 1);
  RawConn anon(*set, none.get(), "a.test");
  SideResult cr2, sr2;
  drive(anon.client.get(), anon.server.get(), cr2, sr2);
  EXPECT_EQ(anon.hellos, 2);
  EXPECT_FALSE(sr2.done);  // still needs a certificate
  EXPECT_EQ(cr2.alert, SSL_AD_CERTIFICATE_REQUIRED);
  ERR_clear_error();
}

}  // namespace

// ---- key files ----------------------------------------------------------------------------

// A private key file others may read (or its group rewrite) is refused at load, naming the
// file and the mode; 0640 (root:originguard-gk, a Secret's 0440) is fine.
TEST_F(GkTlsPolicy, KeyFileOpenToOthersIsRefused) {
  const fs::path key = path("loose.key");
  write_key(key, srv_->key.get());
  auto with_key = [&] {
    HostConfig h = host({"a.test"});
    h.keys = {key};
    GatekeeperConfig cfg;
    cfg.path = "test.toml";
    cfg.hosts = {h};
    return PolicySet::build(cfg, stats_, clock_.fn());
  };
  for (auto mode : {fs::perms(0644), fs::perms(0604), fs::perms(0620), fs::perms(0606)}) {
    fs::permissions(key, mode);
    auto set = with_key();
    ASSERT_FALSE(set) << static_cast<unsigned>(mode);
    EXPECT_NE(set.error().message.find(key.string()), std::string::npos) << set.error().message;
    EXPECT_NE(set.error().message.find("make it 0600 or 0640"), std::string::npos);
  }
  for (auto mode : {fs::perms(0600), fs::perms(0640), fs::perms(0440), fs::perms(0400)}) {
    fs::permissions(key, mode);
    auto set = with_key();
    EXPECT_TRUE(set) << static_cast<unsigned>(mode) << ": " << set.error().message;
  }
}
