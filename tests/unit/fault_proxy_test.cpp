// lifeline::testing::fault_proxy against in-test loopback servers: an echo server, and a fake MySQL
// upstream that records what it received and answers every client packet with an OK packet.
#include <lifeline/testing/fault_proxy.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using lifeline::testing::commit_cut;
using lifeline::testing::cut_kind;
using lifeline::testing::direction;
using lifeline::testing::fault_proxy;
namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

// A loopback server on its own thread: echoes, or plays a MySQL server that answers each complete
// client packet with an OK packet. Records every byte received and how each connection ended.
class upstream {
public:
    enum class kind { echo, mysql_ok };

    explicit upstream(kind k) : kind_(k), acceptor_(io_, {asio::ip::address_v4::loopback(), 0}) {
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~upstream() {
        asio::post(io_, [this] {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
            for (auto& s : sockets_) s->close(ignored);
            io_.stop();
        });
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    std::string received() const {
        std::lock_guard<std::mutex> lock(mu_);
        return received_;
    }
    // "eof", "reset", another read error's message, or "write: <error>", per finished connection.
    std::vector<std::string> endings() const {
        std::lock_guard<std::mutex> lock(mu_);
        return endings_;
    }
    // Polls (bounded) until pred holds.
    bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 3s) const {
        const auto until = clock_type::now() + limit;
        while (clock_type::now() < until) {
            if (pred()) return true;
            std::this_thread::sleep_for(5ms);
        }
        return pred();
    }

private:
    struct conn {
        std::shared_ptr<asio::ip::tcp::socket> socket;
        std::array<char, 4096> buf{};
        std::string pending;  // mysql_ok: bytes of an incomplete packet
        std::string reply;
    };

    void accept() {
        acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
            if (ec) return;
            auto c = std::make_shared<conn>();
            c->socket = std::make_shared<asio::ip::tcp::socket>(std::move(s));
            sockets_.push_back(c->socket);
            read(c);
            accept();
        });
    }

    void read(std::shared_ptr<conn> c) {
        c->socket->async_read_some(asio::buffer(c->buf), [this, c](const boost::system::error_code& ec, std::size_t n) {
            if (ec) {
                std::lock_guard<std::mutex> lock(mu_);
                endings_.push_back(ec == asio::error::eof               ? "eof"
                                   : ec == asio::error::connection_reset ? "reset"
                                                                         : ec.message());
                return;
            }
            {
                std::lock_guard<std::mutex> lock(mu_);
                received_.append(c->buf.data(), n);
            }
            c->reply.clear();
            if (kind_ == kind::echo) {
                c->reply.assign(c->buf.data(), n);
            } else {
                c->pending.append(c->buf.data(), n);
                while (c->pending.size() >= 4) {
                    const auto* h = reinterpret_cast<const unsigned char*>(c->pending.data());
                    const std::size_t len = h[0] | (h[1] << 8) | (h[2] << 16);
                    if (c->pending.size() < 4 + len) break;
                    const char seq = static_cast<char>(h[3] + 1);
                    c->pending.erase(0, 4 + len);
                    // OK packet: header 0x00, affected rows 0, insert id 0, status 2, warnings 0.
                    c->reply += std::string("\x07\x00\x00", 3) + seq + std::string("\x00\x00\x00\x02\x00\x00\x00", 7);
                }
            }
            if (c->reply.empty()) {
                read(c);
                return;
            }
            asio::async_write(*c->socket, asio::buffer(c->reply),
                              [this, c](const boost::system::error_code& wec, std::size_t) {
                                  if (!wec) return read(c);
                                  std::lock_guard<std::mutex> lock(mu_);
                                  endings_.push_back("write: " + wec.message());
                              });
        });
    }

    kind kind_;
    asio::io_context io_;
    asio::ip::tcp::acceptor acceptor_;
    std::vector<std::shared_ptr<asio::ip::tcp::socket>> sockets_;  // io thread only
    mutable std::mutex mu_;
    std::string received_;
    std::vector<std::string> endings_;
    std::thread thread_;
};

// A blocking POSIX client with a receive timeout, so that a test can never hang.
class client {
public:
    explicit client(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { ::close(fd_); }

    void send(const std::string& s) {
        REQUIRE(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
    }
    // Sends one byte at a time, with pauses so that each byte travels in its own segment.
    void send_bytewise(const std::string& s) {
        for (char c : s) {
            REQUIRE(::send(fd_, &c, 1, MSG_NOSIGNAL) == 1);
            std::this_thread::sleep_for(2ms);
        }
    }

    struct result {
        std::string data;
        int error = 0;     // errno of the read that ended it (EAGAIN: timed out)
        bool eof = false;  // the peer closed in order
    };
    // Reads until `want` bytes arrived, EOF, an error, or the timeout.
    result recv(std::size_t want, std::chrono::milliseconds timeout = 5s) {
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
        tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        result r;
        char buf[4096];
        while (r.data.size() < want) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                r.data.append(buf, static_cast<std::size_t>(n));
            } else if (n == 0) {
                r.eof = true;
                break;
            } else {
                if (errno == EINTR) continue;
                r.error = errno;
                break;
            }
        }
        return r;
    }
    // Reads until EOF or error (bounded).
    result recv_to_end(std::chrono::milliseconds timeout = 5s) { return recv(~std::size_t{0}, timeout); }

private:
    int fd_ = -1;
};

std::string packet(const std::string& payload, unsigned char seq = 0) {
    std::string p;
    p += static_cast<char>(payload.size() & 0xff);
    p += static_cast<char>((payload.size() >> 8) & 0xff);
    p += static_cast<char>((payload.size() >> 16) & 0xff);
    p += static_cast<char>(seq);
    return p + payload;
}
std::string com_query(const std::string& sql) { return packet(std::string(1, '\x03') + sql); }

}  // namespace

TEST_CASE("fault_proxy: pass forwards both ways and counts", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    c.send("hello");
    auto r = c.recv(5);
    CHECK(r.data == "hello");
    auto s = proxy.stats();
    CHECK(s.accepted == 1);
    CHECK(s.bytes_client_to_server == 5);
    CHECK(s.bytes_server_to_client == 5);
    CHECK(s.cuts == 0);
}

TEST_CASE("fault_proxy: latency delays every chunk", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    proxy.latency(150ms);
    const auto start = clock_type::now();
    c.send("ping");
    CHECK(c.recv(4).data == "ping");
    CHECK(clock_type::now() - start >= 300ms);  // once each way
    proxy.pass();
    const auto again = clock_type::now();
    c.send("pong");
    CHECK(c.recv(4).data == "pong");
    CHECK(clock_type::now() - again < 150ms);
}

TEST_CASE("fault_proxy: blackhole is silence on an open connection; pass resumes", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    c.send("a");
    REQUIRE(c.recv(1).data == "a");
    proxy.blackhole();
    c.send("bc");
    auto r = c.recv(2, 300ms);
    CHECK(r.data.empty());
    CHECK((r.error == EAGAIN || r.error == EWOULDBLOCK));
    CHECK_FALSE(r.eof);
    CHECK(echo.received() == "a");  // nothing was forwarded
    proxy.pass();                  // nothing was dropped either
    CHECK(c.recv(2).data == "bc");
    CHECK(echo.endings().empty());
}

TEST_CASE("fault_proxy: cut_after client_to_server", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    const bool rst = GENERATE(true, false);
    proxy.cut_after(4, direction::client_to_server, rst ? cut_kind::rst : cut_kind::fin);
    c.send("0123456789");
    auto r = c.recv_to_end();
    CHECK(r.data.size() <= 4);  // the echo of the 4 bytes may or may not have made it back
    if (rst) {
        CHECK(r.error == ECONNRESET);
    } else {
        CHECK(r.eof);
    }
    REQUIRE(echo.wait_until([&] { return echo.endings().size() == 1; }));
    CHECK(echo.received() == "0123");
    if (rst) {
        CHECK(echo.endings().front() != "eof");  // a reset, seen by the read or by the echo's write
    } else {
        CHECK(echo.endings().front() == "eof");
    }
    CHECK(proxy.stats().cuts == 1);
    CHECK(proxy.stats().bytes_client_to_server == 4);
}

TEST_CASE("fault_proxy: cut_after server_to_client", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    const bool rst = GENERATE(true, false);
    proxy.cut_after(4, direction::server_to_client, rst ? cut_kind::rst : cut_kind::fin);
    c.send("0123456789");
    auto r = c.recv_to_end();
    CHECK(r.data == "0123");
    if (rst) {
        CHECK(r.error == ECONNRESET);
    } else {
        CHECK(r.eof);
    }
    CHECK(proxy.stats().cuts == 1);
    CHECK(proxy.stats().bytes_server_to_client == 4);
}

TEST_CASE("fault_proxy: cut_after 0 cuts on the next chunk; cut_all cuts everything now", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client a(proxy.port());
    client b(proxy.port());
    a.send("x");
    b.send("y");
    REQUIRE(a.recv(1).data == "x");
    REQUIRE(b.recv(1).data == "y");
    proxy.cut_all(cut_kind::rst);
    CHECK(a.recv_to_end().error == ECONNRESET);
    CHECK(b.recv_to_end().error == ECONNRESET);
    CHECK(proxy.stats().cuts == 2);

    proxy.cut_after(0, direction::client_to_server, cut_kind::fin);
    client c(proxy.port());
    c.send("z");
    auto r = c.recv_to_end();
    CHECK(r.data.empty());
    CHECK(r.eof);
    CHECK(proxy.stats().cuts == 3);
}

TEST_CASE("fault_proxy: refuse_new resets new connections only", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client old(proxy.port());
    old.send("1");
    REQUIRE(old.recv(1).data == "1");
    proxy.refuse_new(true);
    {
        client refused(proxy.port());
        auto r = refused.recv_to_end();
        CHECK(r.error == ECONNRESET);
        CHECK(r.data.empty());
    }
    old.send("2");
    CHECK(old.recv(1).data == "2");
    proxy.refuse_new(false);
    client fresh(proxy.port());
    fresh.send("3");
    CHECK(fresh.recv(1).data == "3");
    CHECK(proxy.stats().refused == 1);
    CHECK(proxy.stats().accepted == 2);
}

TEST_CASE("fault_proxy: upstream must be a loopback address", "[unit][proxy]") {
    for (const char* host : {"10.0.0.1", "192.168.1.10", "0.0.0.0", "8.8.8.8", "example.com", "::", "", "127.0.0.1x"})
        CHECK_THROWS_AS(fault_proxy(host, 3306), std::invalid_argument);
    CHECK_THROWS_WITH(fault_proxy("10.0.0.1", 3306), Catch::Contains("not a loopback address"));
    for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) CHECK_NOTHROW(fault_proxy(host, 3306));
}

TEST_CASE("fault_proxy: stop() joins promptly mid-blackhole and is idempotent", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    std::optional<client> c;
    const auto start = [&] {
        fault_proxy proxy("127.0.0.1", echo.port());
        c.emplace(proxy.port());
        proxy.blackhole();
        c->send("stuck");
        std::this_thread::sleep_for(50ms);
        const auto t0 = clock_type::now();
        proxy.stop();
        proxy.stop();
        return clock_type::now() - t0;
    }();
    CHECK(start < 1s);
    auto r = c->recv_to_end(2s);
    CHECK((r.eof || r.error == ECONNRESET));
}

TEST_CASE("fault_proxy: an unreachable upstream closes the client", "[unit][proxy]") {
    std::uint16_t dead_port = 0;
    {
        upstream gone(upstream::kind::echo);
        dead_port = gone.port();
    }
    fault_proxy proxy("127.0.0.1", dead_port);
    client c(proxy.port());
    auto r = c.recv_to_end();
    CHECK((r.eof || r.error == ECONNRESET));
    CHECK(proxy.stats().upstream_failures == 1);
}

TEST_CASE("commit_detector: finds COMMIT at every split point", "[unit][proxy]") {
    using lifeline::testing::detail::commit_detector;
    auto run = [](const std::string& stream, std::size_t split) {
        commit_detector d;
        std::string out;
        std::optional<std::size_t> at;
        std::size_t found = d.feed(stream.data(), split, out, at);
        found += d.feed(stream.data() + split, stream.size() - split, out, at);
        CHECK(out == stream);  // the detector only delays, never changes the stream
        return std::make_pair(found, at);
    };
    const std::string before = com_query("SELECT 1") + packet("\x01\x02", 1);
    for (const std::string sql : {"COMMIT", "commit", "  \n\tCoMmIt WORK", "COMMIT;", "COMMIT AND CHAIN"}) {
        const std::string stream = before + com_query(sql) + com_query("SELECT 2");
        for (std::size_t split = 0; split <= stream.size(); ++split) {
            auto [found, at] = run(stream, split);
            CHECK(found == 1);
            CHECK(at == before.size());
        }
    }
    for (const std::string sql : {"COMMITTED", "SELECT 'COMMIT'", "ROLLBACK", "", "   ", "COMMI"}) {
        const std::string stream = com_query(sql);
        for (std::size_t split = 0; split <= stream.size(); ++split) CHECK(run(stream, split).first == 0);
    }
    // Not a command: a sequence id other than 0 (e.g. an auth or LOAD DATA packet), another command.
    CHECK(run(packet("\x03" "COMMIT", 1), 3).first == 0);
    CHECK(run(packet("\x16" "COMMIT"), 5).first == 0);  // COM_STMT_PREPARE
    // Large payloads flow through after the decision.
    const std::string big = com_query("SELECT '" + std::string(70000, 'x') + "'");
    CHECK(run(big, 9).first == 0);
}

TEST_CASE("fault_proxy: cut_on_commit(before_forward) never forwards a split COMMIT", "[unit][proxy]") {
    upstream server(upstream::kind::mysql_ok);
    fault_proxy proxy("127.0.0.1", server.port());
    client c(proxy.port());
    c.send(com_query("INSERT INTO t VALUES (1)"));
    REQUIRE(c.recv(11).data.size() == 11);  // OK
    proxy.cut_on_commit(commit_cut::before_forward);
    c.send_bytewise(com_query("COMMIT"));
    auto r = c.recv_to_end();
    CHECK(r.data.empty());
    CHECK(r.error == ECONNRESET);
    REQUIRE(server.wait_until([&] { return server.endings().size() == 1; }));
    CHECK(server.endings().front() == "reset");
    CHECK(server.received() == com_query("INSERT INTO t VALUES (1)"));
    CHECK(server.received().find("COMMIT") == std::string::npos);
    auto s = proxy.stats();
    CHECK(s.commits_seen == 1);
    CHECK(s.commits_cut == 1);
    CHECK(s.cuts == 1);
}

TEST_CASE("fault_proxy: cut_on_commit(after_forward) forwards COMMIT and swallows the reply", "[unit][proxy]") {
    upstream server(upstream::kind::mysql_ok);
    fault_proxy proxy("127.0.0.1", server.port());
    client c(proxy.port());
    proxy.cut_on_commit(commit_cut::after_forward);
    c.send(com_query("BEGIN"));  // other statements pass untouched
    REQUIRE(c.recv(11).data.size() == 11);
    c.send_bytewise(com_query(" commit"));
    auto r = c.recv_to_end();
    CHECK(r.data.empty());  // the server's OK never arrives
    CHECK(r.error == ECONNRESET);
    CHECK(server.wait_until([&] { return server.received() == com_query("BEGIN") + com_query(" commit"); }));
    auto s = proxy.stats();
    CHECK(s.commits_seen == 1);
    CHECK(s.commits_cut == 1);
    CHECK(s.bytes_server_to_client == 11);
}

TEST_CASE("fault_proxy: COMMIT passes in other modes and is counted", "[unit][proxy]") {
    upstream server(upstream::kind::mysql_ok);
    fault_proxy proxy("127.0.0.1", server.port());
    client c(proxy.port());
    c.send_bytewise(com_query("COMMIT"));
    CHECK(c.recv(11).data.size() == 11);
    CHECK(proxy.stats().commits_seen == 1);
    CHECK(proxy.stats().commits_cut == 0);
}

// Waits (bounded) until the proxy has silenced `n` connections; returns when that was seen.
static std::optional<clock_type::time_point> wait_idle_drops(const fault_proxy& proxy, std::uint64_t n,
                                                             std::chrono::milliseconds limit = 5s) {
    const auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
        if (proxy.stats().idle_drops >= n) return clock_type::now();
        std::this_thread::sleep_for(2ms);
    }
    return std::nullopt;
}

TEST_CASE("fault_proxy: drop_when_idle silences an idle connection for good, leaving it open", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    proxy.drop_when_idle(300ms);
    const auto sent = clock_type::now();
    c.send("a");
    REQUIRE(c.recv(1).data == "a");
    const auto dropped_at = wait_idle_drops(proxy, 1);
    REQUIRE(dropped_at);
    CHECK(*dropped_at - sent >= 300ms);  // the proxy's last traffic came after `sent`

    c.send("b");
    auto r = c.recv(1, 300ms);
    CHECK(r.data.empty());
    CHECK((r.error == EAGAIN || r.error == EWOULDBLOCK));  // silence, not EOF or reset
    CHECK_FALSE(r.eof);
    proxy.pass();  // the firewall has forgotten the connection: switching mode does not revive it
    r = c.recv(1, 300ms);
    CHECK(r.data.empty());
    CHECK_FALSE(r.eof);
    CHECK(echo.received() == "a");  // "b" never reached the server
    CHECK(echo.endings().empty());  // and the server side was not closed either

    client fresh(proxy.port());  // new connections are not affected
    fresh.send("c");
    CHECK(fresh.recv(1).data == "c");
    auto s = proxy.stats();
    CHECK(s.idle_drops == 1);
    CHECK(s.cuts == 0);
}

TEST_CASE("fault_proxy: drop_when_idle counts idleness from the last traffic", "[unit][proxy]") {
    upstream echo(upstream::kind::echo);
    fault_proxy proxy("127.0.0.1", echo.port());
    client c(proxy.port());
    c.send("x");
    REQUIRE(c.recv(1).data == "x");
    std::this_thread::sleep_for(200ms);  // idle before the mode is set: not counted
    const auto set_at = clock_type::now();
    proxy.drop_when_idle(400ms);
    // Traffic every 20 ms for a while: each chunk restarts the idle clock.
    std::chrono::nanoseconds max_gap{0};
    auto last = set_at, last_sent = set_at;
    for (int i = 0; i < 40; ++i) {
        std::this_thread::sleep_for(20ms);
        last_sent = clock_type::now();
        max_gap = std::max<std::chrono::nanoseconds>(max_gap, last_sent - last);
        c.send("y");
        if (c.recv(1, 2s).data != "y") break;
        last = clock_type::now();
    }
    // A drop during the traffic is only allowed if this machine stalled the loop for >= 400 ms.
    if (proxy.stats().idle_drops != 0) CHECK(max_gap >= 400ms);
    const auto dropped_at = wait_idle_drops(proxy, 1);
    REQUIRE(dropped_at);
    CHECK(*dropped_at - set_at >= 400ms);
    CHECK(*dropped_at - last_sent >= 400ms);  // counted from the last chunk, not from the mode change
}
