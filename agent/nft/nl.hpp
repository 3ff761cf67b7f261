// Thin RAII layer over libmnl + libnftnl: owned nftnl_* objects, a netfilter netlink socket,
// and a batch buffer that holds one nf_tables transaction (BATCH_BEGIN .. BATCH_END).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "originguard/handle.hpp"
#include "originguard/result.hpp"

namespace og::nft {

using og::Unique;

using TablePtr = Unique<nftnl_table, nftnl_table_free>;
using ChainPtr = Unique<nftnl_chain, nftnl_chain_free>;
using RulePtr = Unique<nftnl_rule, nftnl_rule_free>;
using ExprPtr = Unique<nftnl_expr, nftnl_expr_free>;
using SetPtr = Unique<nftnl_set, nftnl_set_free>;
using SetElemPtr = Unique<nftnl_set_elem, nftnl_set_elem_free>;
using ObjPtr = Unique<nftnl_obj, nftnl_obj_free>;
using GenPtr = Unique<nftnl_gen, nftnl_gen_free>;
using UdataPtr = Unique<nftnl_udata_buf, nftnl_udata_buf_free>;
using SetElemsIterPtr = Unique<nftnl_set_elems_iter, nftnl_set_elems_iter_destroy>;
using ExprIterPtr = Unique<nftnl_expr_iter, nftnl_expr_iter_destroy>;

// Allocation failures are out-of-memory, not recoverable errors: they throw std::bad_alloc.
TablePtr make_table();
ChainPtr make_chain();
RulePtr make_rule();
ExprPtr make_expr(const char* name);
SetPtr make_set();
SetElemPtr make_set_elem();
ObjPtr make_obj();
GenPtr make_gen();

// Userdata holding one NUL-terminated comment TLV (what `nft` prints as `comment "..."`).
// `type` is the NFTNL_UDATA_*_COMMENT value of the object kind.
std::vector<std::uint8_t> comment_udata(std::uint8_t type, std::string_view comment);
// Reads the comment TLV back ("" when absent).
std::string parse_comment_udata(const void* data, std::uint32_t len, std::uint8_t type);

// One nf_tables transaction. Every message between BEGIN and END asks for an ACK so a
// failure can be traced to the message that caused it (see describe()).
class Batch {
 public:
  explicit Batch(std::uint32_t first_seq);
  Batch(Batch&&) noexcept = default;
  Batch& operator=(Batch&&) noexcept = default;

  void add_table(std::uint16_t type, std::uint16_t flags, nftnl_table* t, std::string what);
  void add_chain(std::uint16_t type, std::uint16_t flags, nftnl_chain* c, std::string what);
  void add_rule(std::uint16_t type, std::uint16_t flags, nftnl_rule* r, std::string what);
  void add_set(std::uint16_t type, std::uint16_t flags, nftnl_set* s, std::string what);
  void add_obj(std::uint16_t type, std::uint16_t flags, nftnl_obj* o, std::string what);
  // NEWSETELEM / DELSETELEM; splits the elements over as many messages as the 16-bit
  // attribute length requires (still one transaction). With no elements: one message
  // naming only the set, i.e. a flush for DELSETELEM.
  void add_set_elems(std::uint16_t type, std::uint16_t flags, nftnl_set* s, const std::string& what);
  // NEWSETELEM with `elems` (keys in network byte order, interval-end flag), encoded straight
  // into the buffer: no per-element libnftnl object, which dominates the cost at 100k
  // elements. Same layout and splitting as libnftnl's iterator (NFTA_LIST_ELEM entries).
  struct RawElem {
    const std::uint8_t* key;
    std::uint32_t len;
    bool interval_end;
  };
  void add_set_elems_raw(std::uint16_t type, std::uint16_t flags, const char* table, const char* set,
                         std::span<const RawElem> elems, const std::string& what);
  // The same, one element at a time, so that a caller deriving elements from a large set
  // needs no list of them: begin, put each element, end. Nothing else may be added between
  // begin and end.
  void begin_set_elems(std::uint16_t type, std::uint16_t flags, const char* table, const char* set, std::string what);
  void put_set_elem(const std::uint8_t* key, std::uint32_t len, bool interval_end);
  void end_set_elems();
  // Bytes of set element payload a NEWSETELEM of `count` elements with keys of `key_len`
  // bytes takes at most (for reserve()).
  [[nodiscard]] static std::size_t set_elems_bytes(std::size_t count, std::uint32_t key_len);
  // Makes room for `bytes` more of messages up front: a batch of 100k elements then grows
  // in place instead of doubling (and copying) its buffer several times.
  void reserve(std::size_t bytes);
  // Appends BATCH_END; no message may be added afterwards.
  void finish();

  [[nodiscard]] std::span<const std::byte> bytes() const { return {buf_.data(), used_}; }
  [[nodiscard]] std::uint32_t first_seq() const { return first_seq_; }
  // Number of messages that will be acknowledged (all but BEGIN/END).
  [[nodiscard]] std::size_t ack_count() const { return what_.size(); }
  // What the message with sequence number `seq` does, for error messages.
  [[nodiscard]] std::string describe(std::uint32_t seq) const;

 private:
  nlmsghdr* start(std::uint16_t type, std::uint16_t flags, std::string what);
  void commit(const nlmsghdr* nlh);

  std::vector<std::byte> buf_;
  std::size_t used_ = 0;
  std::uint32_t first_seq_;
  std::uint32_t next_seq_;
  std::vector<std::string> what_;  // index: seq - first_seq_ - 1
  bool finished_ = false;
  // The set element message being filled (begin_set_elems), by offsets: buf_ may move.
  struct OpenElems {
    std::uint16_t type, flags;
    const char* table;
    const char* set;
    std::string what{};
    int part = 0;
    std::size_t msg = 0;         // offset of its nlmsghdr in buf_ (0: no message open)
    std::size_t list = 0;        // offset of the NFTA_SET_ELEM_LIST_ELEMENTS nest
    std::size_t list_start = 0;  // nlmsg_len when the list began
  };
  std::optional<OpenElems> elems_;
  void open_elems_msg();
  void close_elems_msg();
};

// A NETLINK_NETFILTER socket in the caller's network namespace.
class Socket {
 public:
  static Result<Socket> open();

  // Sends a finished batch and waits for every ACK. The first error (with the message it
  // refers to and the kernel's extended ACK text, if any) fails the whole call; the kernel
  // has then rolled the transaction back.
  Status commit(const Batch& batch);

  // Sends one GET request (built by `fill` into the header) and feeds every reply message
  // to `on_msg`. With dump=false a single object is requested; ENOENT is returned as an
  // error with sys_errno == ENOENT.
  Status request(std::uint16_t type, bool dump, const std::function<void(nlmsghdr*)>& fill,
                 const std::function<Status(const nlmsghdr*)>& on_msg);

 private:
  using MnlPtr = Unique<mnl_socket, mnl_socket_close>;
  explicit Socket(MnlPtr s) : sock_(std::move(s)) {}
  Status set_buffers(std::size_t send_bytes);

  MnlPtr sock_;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = 0;
};

}  // namespace og::nft
