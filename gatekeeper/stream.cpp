#include "stream.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <string>

namespace og::gk {

namespace asio = boost::asio;
using asio::awaitable;

namespace {
auto redirect(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }
}  // namespace

// ---- Deadline -------------------------------------------------------------------------

struct Deadline::State : std::enable_shared_from_this<State> {
  explicit State(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  clock::time_point deadline = clock::time_point::max();
  clock::time_point armed_for = clock::time_point::max();  // the timer's expiry while a wait is pending
  bool expired = false;
  std::function<void()> on_expiry;

  void arm(clock::time_point at) {
    armed_for = at;
    timer.expires_at(at);  // cancels a pending wait, whose handler then sees operation_aborted
    timer.async_wait([self = shared_from_this(), at](const error_code& ec) {
      if (ec || self->armed_for != at) return;  // cancelled, re-armed or destroyed
      self->armed_for = clock::time_point::max();
      if (self->deadline == clock::time_point::max()) return;
      if (clock::now() < self->deadline) {
        self->arm(self->deadline);  // moved later since this wait began
        return;
      }
      self->expired = true;
      self->deadline = clock::time_point::max();
      if (self->on_expiry) self->on_expiry();
    });
  }
};

Deadline::Deadline(const asio::any_io_executor& ex) : st_(std::make_shared<State>(ex)) {}

Deadline::~Deadline() {
  st_->on_expiry = nullptr;
  st_->deadline = clock::time_point::max();
  st_->armed_for = clock::time_point::max();
  st_->timer.cancel();
}

void Deadline::on_expiry(std::function<void()> f) { st_->on_expiry = std::move(f); }

void Deadline::expires_after(clock::duration d) {
  st_->expired = false;
  st_->deadline = clock::now() + d;
  // An armed timer firing earlier re-arms itself; only an earlier deadline needs a re-arm now.
  if (st_->deadline < st_->armed_for) st_->arm(st_->deadline);
}

void Deadline::disarm() { st_->deadline = clock::time_point::max(); }

bool Deadline::expired() const { return st_->expired; }

namespace {
// An expired deadline stays expired until re-armed: no new wait starts under it (a completion
// queued before the expiry must not continue into a wait that nothing covers).
bool past(const Deadline* d) { return d && d->expired(); }
}  // namespace

error_code waited(const error_code& ec, const Deadline* d) {
  if (ec == asio::error::operation_aborted && d && d->expired()) return asio::error::timed_out;
  return ec;
}

// ---- TlsStream ------------------------------------------------------------------------

TlsStream::TlsStream(asio::ip::tcp::socket sock, SslPtr ssl, Deadline* deadline)
    : sock_(std::move(sock)), ssl_(std::move(ssl)), deadline_(deadline) {
  error_code ignored;
  sock_.non_blocking(true, ignored);
  SSL_set_fd(ssl_.get(), sock_.native_handle());
  SSL_set_read_ahead(ssl_.get(), 1);  // whole records per read(); record buffers: see handshake()
}

void TlsStream::cancel() {
  error_code ignored;
  sock_.cancel(ignored);
}

void TlsStream::close() {
  error_code ignored;
  sock_.close(ignored);
  forget_fd();
}

void TlsStream::forget_fd() {
  // The closed fd's number is the next accept's or connect's, on any worker: a coroutine still
  // resuming on this stream must not read or write it through OpenSSL (EBADF instead).
  SSL_set_fd(ssl_.get(), -1);
}

awaitable<bool> TlsStream::wait_for(int r, error_code& ec) {
  const int e = SSL_get_error(ssl_.get(), r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    if (past(deadline_)) {
      ec = asio::error::timed_out;
      co_return false;
    }
    co_await sock_.async_wait(e == SSL_ERROR_WANT_READ ? asio::socket_base::wait_read : asio::socket_base::wait_write,
                              redirect(ec));
    ec = waited(ec, deadline_);
    co_return !ec;
  }
  if (e == SSL_ERROR_ZERO_RETURN) {
    ec = asio::error::eof;
  } else if (e == SSL_ERROR_SYSCALL) {
    const int err = errno;
    // OpenSSL 3 reports a FIN without close_notify as SSL_ERROR_SSL "unexpected eof"; older
    // paths as SYSCALL with errno 0. Both are a truncated stream.
    ec = err ? error_code(err, asio::error::get_system_category()) : error_code(asio::ssl::error::stream_truncated);
  } else {
    const unsigned long code = ERR_peek_last_error();
    // A FIN without close_notify: the stream may have been cut (a truncation attack on a
    // close-delimited body), so it is not reported as a clean eof.
    ec = ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING
             ? error_code(asio::ssl::error::stream_truncated)
             : error_code(static_cast<int>(code ? code : 1), asio::error::get_ssl_category());
  }
  ERR_clear_error();
  co_return false;
}

awaitable<error_code> TlsStream::handshake() {
  error_code ec;
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) {
      // From here on no record buffers while idle (nginx keeps none in idle connections either).
      SSL_set_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS);
      (void)SSL_free_buffers(ssl_.get());  // refuses, harmlessly, when read-ahead already holds data
      co_return error_code{};
    }
    // Buffers are kept while a flight is written (RELEASE_BUFFERS would free and re-allocate
    // them per record) and given back while the peer is awaited: a stalled handshake holds none.
    if (SSL_get_error(ssl_.get(), r) == SSL_ERROR_WANT_READ) (void)SSL_free_buffers(ssl_.get());
    if (!co_await wait_for(r, ec)) co_return ec;
  }
}

awaitable<std::size_t> TlsStream::read_some(void* p, std::size_t n, error_code& ec) {
  ec = {};
  for (;;) {
    ERR_clear_error();
    errno = 0;
    std::size_t got = 0;
    const int r = SSL_read_ex(ssl_.get(), p, n, &got);
    if (r == 1) co_return got;
    if (!co_await wait_for(r, ec)) co_return 0;
  }
}

awaitable<error_code> TlsStream::write_all(const void* p, std::size_t n) {
  error_code ec;
  const auto* c = static_cast<const char*>(p);
  while (n) {
    ERR_clear_error();
    errno = 0;
    std::size_t put = 0;
    const int r = SSL_write_ex(ssl_.get(), c, n, &put);
    if (r == 1) {
      c += put;
      n -= put;
      continue;
    }
    if (!co_await wait_for(r, ec)) co_return ec;
  }
  co_return ec;
}

awaitable<error_code> TlsStream::write_all2(const void* a, std::size_t na, const void* b, std::size_t nb) {
  if (nb == 0) co_return co_await write_all(a, na);
  if (na + nb <= 16384) {
    std::string joined;
    joined.reserve(na + nb);
    joined.append(static_cast<const char*>(a), na).append(static_cast<const char*>(b), nb);
    co_return co_await write_all(joined.data(), joined.size());
  }
  if (auto ec = co_await write_all(a, na)) co_return ec;
  co_return co_await write_all(b, nb);
}

awaitable<error_code> TlsStream::wait_readable() {
  error_code ec;
  if (SSL_has_pending(ssl_.get())) co_return ec;
  if (past(deadline_)) co_return asio::error::timed_out;
  co_await sock_.async_wait(asio::socket_base::wait_read, redirect(ec));
  co_return waited(ec, deadline_);
}

awaitable<error_code> TlsStream::socket_write(std::string_view bytes) {
  error_code ec;
  if (past(deadline_)) co_return asio::error::timed_out;
  co_await asio::async_write(sock_, asio::buffer(bytes), redirect(ec));
  co_return waited(ec, deadline_);
}

awaitable<void> TlsStream::shutdown() {
  send_close_notify();
  co_return;
}

void TlsStream::send_close_notify() {
  ERR_clear_error();
  // One attempt: close_notify goes out if the socket takes it; the peer's is not awaited.
  if (SSL_shutdown(ssl_.get()) < 0) ERR_clear_error();
}

void TlsStream::abort() {
  error_code ignored;
  sock_.set_option(asio::socket_base::linger(true, 0), ignored);
  sock_.close(ignored);
  forget_fd();
}

bool TlsStream::idle_clean() {
  ERR_clear_error();
  errno = 0;
  char c;
  std::size_t got = 0;
  // Non-blocking: reads what the socket has, processes records, returns WANT_READ without data.
  const int r = SSL_peek_ex(ssl_.get(), &c, 1, &got);
  const bool clean = r != 1 && SSL_get_error(ssl_.get(), r) == SSL_ERROR_WANT_READ;
  ERR_clear_error();
  return clean;
}

// ---- PlainStream ----------------------------------------------------------------------

template <class Proto>
bool PlainStream<Proto>::idle_clean() {
  char c;
  const ssize_t n = ::recv(sock_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

template <class Proto>
awaitable<std::size_t> PlainStream<Proto>::read_some(void* p, std::size_t n, error_code& ec) {
  if (past(deadline_)) {
    ec = asio::error::timed_out;
    co_return 0;
  }
  std::size_t got = co_await sock_.async_read_some(asio::buffer(p, n), redirect(ec));
  ec = waited(ec, deadline_);
  co_return got;
}

template <class Proto>
awaitable<error_code> PlainStream<Proto>::write_all(const void* p, std::size_t n) {
  error_code ec;
  if (past(deadline_)) co_return asio::error::timed_out;
  co_await asio::async_write(sock_, asio::buffer(p, n), redirect(ec));
  co_return waited(ec, deadline_);
}

template <class Proto>
awaitable<error_code> PlainStream<Proto>::write_all2(const void* a, std::size_t na, const void* b, std::size_t nb) {
  error_code ec;
  if (past(deadline_)) co_return asio::error::timed_out;
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a, na), asio::buffer(b, nb)};
  co_await asio::async_write(sock_, bufs, redirect(ec));
  co_return waited(ec, deadline_);
}

template <class Proto>
awaitable<error_code> PlainStream<Proto>::wait_readable() {
  error_code ec;
  if (past(deadline_)) co_return asio::error::timed_out;
  co_await sock_.async_wait(asio::socket_base::wait_read, redirect(ec));
  co_return waited(ec, deadline_);
}

template class PlainStream<asio::ip::tcp>;
template class PlainStream<asio::local::stream_protocol>;

}  // namespace og::gk
