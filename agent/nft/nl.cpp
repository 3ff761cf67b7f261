#include "nl.hpp"

#include <arpa/inet.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <new>
#include <optional>
#include <stdexcept>

#include <libnftnl/common.h>

namespace og::nft {
namespace {

template <class T>
T* checked(T* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Room reserved before building one message in place: set element messages stop just
// above 64 KiB (the nested attribute length is 16 bits), everything else is far smaller.
constexpr std::size_t kMsgRoom = std::size_t{160} * 1024;

}  // namespace

TablePtr make_table() { return TablePtr(checked(nftnl_table_alloc())); }
ChainPtr make_chain() { return ChainPtr(checked(nftnl_chain_alloc())); }
RulePtr make_rule() { return RulePtr(checked(nftnl_rule_alloc())); }
ExprPtr make_expr(const char* name) { return ExprPtr(checked(nftnl_expr_alloc(name))); }
SetPtr make_set() { return SetPtr(checked(nftnl_set_alloc())); }
SetElemPtr make_set_elem() { return SetElemPtr(checked(nftnl_set_elem_alloc())); }
ObjPtr make_obj() { return ObjPtr(checked(nftnl_obj_alloc())); }
GenPtr make_gen() { return GenPtr(checked(nftnl_gen_alloc())); }

std::vector<std::uint8_t> comment_udata(std::uint8_t type, std::string_view comment) {
  UdataPtr buf(checked(nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN)));
  const std::string c(comment.substr(0, NFTNL_UDATA_COMMENT_MAXLEN - 1));
  if (!nftnl_udata_put_strz(buf.get(), type, c.c_str())) throw std::bad_alloc();
  const auto* p = static_cast<const std::uint8_t*>(nftnl_udata_buf_data(buf.get()));
  return {p, p + nftnl_udata_buf_len(buf.get())};
}

std::string parse_comment_udata(const void* data, std::uint32_t len, std::uint8_t type) {
  if (data == nullptr || len == 0) return {};
  struct Found {
    std::uint8_t type;
    std::string text;
  } found{type, {}};
  auto cb = [](const nftnl_udata* attr, void* ctx) -> int {
    auto* f = static_cast<Found*>(ctx);
    if (nftnl_udata_type(attr) == f->type && nftnl_udata_len(attr) > 0) {
      const char* s = static_cast<const char*>(nftnl_udata_get(attr));
      f->text.assign(s, strnlen(s, nftnl_udata_len(attr)));
    }
    return 0;
  };
  nftnl_udata_parse(data, len, cb, &found);
  return found.text;
}

// ---- Batch ----------------------------------------------------------------------------

Batch::Batch(std::uint32_t first_seq) : first_seq_(first_seq), next_seq_(first_seq + 1) {
  buf_.resize(kMsgRoom);
  const nlmsghdr* nlh = nftnl_batch_begin(reinterpret_cast<char*>(buf_.data()), first_seq_);
  used_ = NLMSG_ALIGN(nlh->nlmsg_len);
}

nlmsghdr* Batch::start(std::uint16_t type, std::uint16_t flags, std::string what) {
  if (finished_) throw std::logic_error("nft batch: message added after finish()");
  if (elems_ && elems_->msg != 0) throw std::logic_error("nft batch: message added inside a set element list");
  // Grown to what the next message can take, no further: resize() writes every byte it adds,
  // and zeroed room nobody uses still counts as resident memory. The vector's own capacity
  // growth (or reserve()) keeps this amortised.
  if (buf_.size() < used_ + kMsgRoom) buf_.resize(used_ + kMsgRoom);
  const std::uint32_t seq = next_seq_++;
  what_.push_back(std::move(what));
  return nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(buf_.data() + used_), type, NFPROTO_INET,
                               static_cast<std::uint16_t>(flags | NLM_F_ACK), seq);
}

void Batch::commit(const nlmsghdr* nlh) { used_ += NLMSG_ALIGN(nlh->nlmsg_len); }

void Batch::add_table(std::uint16_t type, std::uint16_t flags, nftnl_table* t, std::string what) {
  nlmsghdr* nlh = start(type, flags, std::move(what));
  nftnl_table_nlmsg_build_payload(nlh, t);
  commit(nlh);
}

void Batch::add_chain(std::uint16_t type, std::uint16_t flags, nftnl_chain* c, std::string what) {
  nlmsghdr* nlh = start(type, flags, std::move(what));
  nftnl_chain_nlmsg_build_payload(nlh, c);
  commit(nlh);
}

void Batch::add_rule(std::uint16_t type, std::uint16_t flags, nftnl_rule* r, std::string what) {
  nlmsghdr* nlh = start(type, flags, std::move(what));
  nftnl_rule_nlmsg_build_payload(nlh, r);
  commit(nlh);
}

void Batch::add_set(std::uint16_t type, std::uint16_t flags, nftnl_set* s, std::string what) {
  nlmsghdr* nlh = start(type, flags, std::move(what));
  nftnl_set_nlmsg_build_payload(nlh, s);
  commit(nlh);
}

void Batch::add_obj(std::uint16_t type, std::uint16_t flags, nftnl_obj* o, std::string what) {
  nlmsghdr* nlh = start(type, flags, std::move(what));
  nftnl_obj_nlmsg_build_payload(nlh, o);
  commit(nlh);
}

void Batch::add_set_elems(std::uint16_t type, std::uint16_t flags, nftnl_set* s, const std::string& what) {
  SetElemsIterPtr iter(checked(nftnl_set_elems_iter_create(s)));
  if (nftnl_set_elems_iter_cur(iter.get()) == nullptr) {
    nlmsghdr* nlh = start(type, flags, what);
    nftnl_set_elems_nlmsg_build_payload(nlh, s);
    commit(nlh);
    return;
  }
  int part = 0;
  while (nftnl_set_elems_iter_cur(iter.get()) != nullptr) {
    nlmsghdr* nlh = start(type, flags, what + " (part " + std::to_string(++part) + ")");
    const int more = nftnl_set_elems_nlmsg_build_payload_iter(nlh, iter.get());
    commit(nlh);
    if (more <= 0) break;
  }
}

namespace {

// Per element: LIST_ELEM nest + KEY nest + DATA_VALUE (key padded to 4) + FLAGS (interval end).
constexpr std::size_t elem_bytes(std::uint32_t key_len, bool interval_end) {
  return sizeof(nlattr) * 3 + NLA_ALIGN(key_len) + (interval_end ? sizeof(nlattr) + sizeof(std::uint32_t) : 0);
}

}  // namespace

std::size_t Batch::set_elems_bytes(std::size_t count, std::uint32_t key_len) {
  // Messages are cut just below 64 KiB: each one adds its header and the table/set names.
  const std::size_t per_msg =
      NLMSG_HDRLEN + sizeof(nfgenmsg) + 2 * (sizeof(nlattr) + NLA_ALIGN(NFT_NAME_MAXLEN)) + sizeof(nlattr);
  const std::size_t payload = count * elem_bytes(key_len, true);
  return payload + (payload / (UINT16_MAX / 2) + 1) * per_msg;
}

void Batch::reserve(std::size_t bytes) { buf_.reserve(used_ + bytes + kMsgRoom); }

void Batch::add_set_elems_raw(std::uint16_t type, std::uint16_t flags, const char* table, const char* set,
                              std::span<const RawElem> elems, const std::string& what) {
  if (elems.empty()) return;
  begin_set_elems(type, flags, table, set, what);
  for (const auto& e : elems) put_set_elem(e.key, e.len, e.interval_end);
  end_set_elems();
}

void Batch::begin_set_elems(std::uint16_t type, std::uint16_t flags, const char* table, const char* set,
                            std::string what) {
  if (elems_) throw std::logic_error("nft batch: set elements begun twice");
  elems_ = OpenElems{type, flags, table, set, std::move(what)};
}

void Batch::open_elems_msg() {
  auto& o = *elems_;
  nlmsghdr* nlh = start(o.type, o.flags, o.what + " (part " + std::to_string(++o.part) + ")");
  o.msg = used_;
  mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, o.table);
  mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, o.set);
  const nlattr* list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
  o.list = static_cast<std::size_t>(reinterpret_cast<const std::byte*>(list) - buf_.data());
  o.list_start = nlh->nlmsg_len;
}

void Batch::close_elems_msg() {
  auto& o = *elems_;
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data() + o.msg);
  mnl_attr_nest_end(nlh, reinterpret_cast<nlattr*>(buf_.data() + o.list));
  commit(nlh);
  o.msg = 0;
}

void Batch::put_set_elem(const std::uint8_t* key, std::uint32_t len, bool interval_end) {
  constexpr std::size_t kMaxElemBytes = elem_bytes(16, true);
  if (!elems_) throw std::logic_error("nft batch: set element outside begin/end");
  auto& o = *elems_;
  if (o.msg != 0) {
    // A nested attribute's length is 16 bits: start a new message before it overflows.
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data() + o.msg);
    if (nlh->nlmsg_len - o.list_start + kMaxElemBytes + sizeof(nlattr) > UINT16_MAX) close_elems_msg();
  }
  if (o.msg == 0) open_elems_msg();
  // start() left kMsgRoom (more than one whole message) free: no reallocation in here.
  auto* nlh = reinterpret_cast<nlmsghdr*>(buf_.data() + o.msg);
  nlattr* elem = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
  nlattr* k = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_KEY);
  mnl_attr_put(nlh, NFTA_DATA_VALUE, len, key);
  mnl_attr_nest_end(nlh, k);
  if (interval_end) mnl_attr_put_u32(nlh, NFTA_SET_ELEM_FLAGS, htonl(NFT_SET_ELEM_INTERVAL_END));
  mnl_attr_nest_end(nlh, elem);
}

void Batch::end_set_elems() {
  if (!elems_) throw std::logic_error("nft batch: set elements ended twice");
  if (elems_->msg != 0) close_elems_msg();
  elems_.reset();
}

void Batch::finish() {
  if (finished_) return;
  if (elems_) throw std::logic_error("nft batch: finish() inside a set element list");
  if (buf_.size() < used_ + kMsgRoom) buf_.resize(used_ + kMsgRoom);
  const nlmsghdr* nlh = nftnl_batch_end(reinterpret_cast<char*>(buf_.data() + used_), next_seq_++);
  used_ += NLMSG_ALIGN(nlh->nlmsg_len);
  finished_ = true;
}

std::string Batch::describe(std::uint32_t seq) const {
  if (seq <= first_seq_ || seq - first_seq_ - 1 >= what_.size()) return "message seq " + std::to_string(seq);
  return what_[seq - first_seq_ - 1];
}

// ---- Socket ---------------------------------------------------------------------------

Result<Socket> Socket::open() {
  MnlPtr s(mnl_socket_open(NETLINK_NETFILTER));
  if (!s) return fail_errno("netlink socket(NETLINK_NETFILTER)");
  if (mnl_socket_bind(s.get(), 0, MNL_SOCKET_AUTOPID) < 0) return fail_errno("netlink bind");
  // Capped ACKs keep error replies small (they would otherwise echo 64 KiB element
  // messages); extended ACKs carry the kernel's explanation of a refusal.
  int one = 1;
  mnl_socket_setsockopt(s.get(), NETLINK_CAP_ACK, &one, sizeof one);
  mnl_socket_setsockopt(s.get(), NETLINK_EXT_ACK, &one, sizeof one);
  Socket sock(std::move(s));
  sock.portid_ = mnl_socket_get_portid(sock.sock_.get());
  sock.seq_ = static_cast<std::uint32_t>(std::time(nullptr));
  return sock;
}

Status Socket::set_buffers(std::size_t send_bytes) {
  const int fd = mnl_socket_get_fd(sock_.get());
  // A batch must reach the kernel in one sendmsg(); root may exceed wmem_max.
  int snd = static_cast<int>(std::min<std::size_t>(send_bytes + 4096, 1U << 30));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) < 0) {
    return fail_errno("setsockopt(SO_SNDBUF)");
  }
  int rcv = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  }
  return {};
}

namespace {

// Kernel's textual reason from an extended ACK ("" when none).
std::string ext_ack_message(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  std::size_t off = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += mnl_nlmsg_get_payload_len(&err->msg);
  const auto* base = static_cast<const char*>(mnl_nlmsg_get_payload(nlh));
  const std::size_t total = mnl_nlmsg_get_payload_len(nlh);
  std::string text;
  while (off + sizeof(nlattr) <= total) {
    const auto* attr = reinterpret_cast<const nlattr*>(base + off);
    if (attr->nla_len < sizeof(nlattr) || off + attr->nla_len > total) break;
    if ((attr->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* s = static_cast<const char*>(mnl_attr_get_payload(attr));
      text.assign(s, strnlen(s, mnl_attr_get_payload_len(attr)));
    }
    off += NLA_ALIGN(attr->nla_len);
  }
  return text;
}

}  // namespace

Status Socket::commit(const Batch& batch) {
  const auto bytes = batch.bytes();
  if (auto st = set_buffers(bytes.size()); !st) return st;
  if (mnl_socket_sendto(sock_.get(), bytes.data(), bytes.size()) < 0) {
    return fail_errno("netlink send of nf_tables batch (" + std::to_string(bytes.size()) + " bytes)");
  }
  const int fd = mnl_socket_get_fd(sock_.get());
  std::vector<char> buf(std::size_t{64} * 1024);
  std::size_t acks = 0;
  std::optional<Error> first_error;
  // The kernel processes the whole batch inside sendmsg(), so every ACK is queued by now;
  // the poll timeout only guards against a kernel that behaves otherwise.
  while (acks < batch.ack_count()) {
    pollfd pfd{fd, POLLIN, 0};
    const int pr = poll(&pfd, 1, first_error ? 0 : 10000);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return fail_errno("poll netlink socket");
    if (pr == 0) {
      if (first_error) break;
      return fail("nf_tables batch: timed out waiting for kernel acknowledgements (" + std::to_string(acks) + " of " +
                  std::to_string(batch.ack_count()) + ")");
    }
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("netlink recv of nf_tables batch acknowledgements");
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      ++acks;
      const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (err->error != 0 && !first_error) {
        std::string msg = batch.describe(nlh->nlmsg_seq) + ": " + std::strerror(-err->error);
        if (auto ext = ext_ack_message(nlh); !ext.empty()) msg += " (" + ext + ")";
        first_error = Error{"nf_tables transaction rejected, nothing changed: " + msg, -err->error};
      }
    }
  }
  if (first_error) return fail(*first_error);
  return {};
}

namespace {
struct RequestCtx {
  const std::function<Status(const nlmsghdr*)>* on_msg;
  std::optional<Error> error;
};

int request_cb(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<RequestCtx*>(data);
  if (auto st = (*ctx->on_msg)(nlh); !st) {
    ctx->error = st.error();
    return MNL_CB_ERROR;
  }
  return MNL_CB_OK;
}
}  // namespace

Status Socket::request(std::uint16_t type, bool dump, const std::function<void(nlmsghdr*)>& fill,
                       const std::function<Status(const nlmsghdr*)>& on_msg) {
  std::array<char, 8192> req{};
  const std::uint32_t seq = ++seq_;
  nlmsghdr* nlh = nftnl_nlmsg_build_hdr(req.data(), type, NFPROTO_INET,
                                        static_cast<std::uint16_t>(dump ? NLM_F_DUMP : NLM_F_ACK), seq);
  fill(nlh);
  if (mnl_socket_sendto(sock_.get(), nlh, nlh->nlmsg_len) < 0) return fail_errno("netlink send");
  std::vector<char> buf(std::size_t{256} * 1024);
  RequestCtx ctx{&on_msg, std::nullopt};
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_.get(), buf.data(), buf.size());
    if (n < 0) return fail_errno("netlink recv");
    const int ret = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq, portid_, request_cb, &ctx);
    if (ret == MNL_CB_STOP) return {};
    if (ret < 0) {
      if (ctx.error) return fail(*ctx.error);
      return fail_errno("netlink reply");
    }
  }
}

}  // namespace og::nft
