// lifeline test harness — see test_server.hpp.
#include "test_server.hpp"

#include <mysql.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lifeline::test {
namespace {

using clock_type = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return (v && *v) ? std::string(v) : fallback;
}

std::string require_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v)
        throw server_error(std::string("lifeline test harness: ") + name +
                           " is not set. Integration tests need the throwaway MariaDB server: run them "
                           "through ctest (which wraps them in lifeline_with_server), or as "
                           "`lifeline_with_server -- <test binary>`.");
    return v;
}

// A zombie still answers kill(pid, 0); only a process that is not in state Z is alive.
bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;  // our child, now reaped
    if (::kill(pid, 0) != 0) return errno == EPERM;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) return true;
    return text[close + 2] != 'Z' && text[close + 2] != 'X';
}

// kill() only queues SIGSTOP/SIGCONT: wait until every thread really is (not) stopped, or a
// query sent right after freeze() could still be answered by a thread not yet stopped.
bool all_threads(pid_t pid, bool stopped) {
    std::error_code ec;
    bool any = false;
    for (auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream stat(t.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        auto close = text.rfind(')');
        if (close == std::string::npos || close + 2 >= text.size()) continue;
        any = true;
        char st = text[close + 2];
        if ((st == 'T' || st == 't') != stopped) return false;
    }
    return any || ec.value() != 0;
}

void wait_state(pid_t pid, bool stopped) {
    auto until = clock_type::now() + 5s;
    while (clock_type::now() < until && !all_threads(pid, stopped)) std::this_thread::sleep_for(1ms);
}

bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
    auto until = clock_type::now() + timeout;
    while (process_alive(pid)) {
        if (clock_type::now() > until) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

unsigned free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw server_error(std::string("cannot create a socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw server_error(std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
    }
    ::close(fd);
    unsigned port = ntohs(addr.sin_port);
    return port == 3306 ? free_port() : port;
}

// fork + exec with output to a log file. The child only calls async-signal-safe functions.
pid_t spawn_process(const std::vector<std::string>& args, const std::string& log_path, bool die_with_parent) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw server_error("cannot open " + log_path + ": " + std::strerror(errno));
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(log_fd);
        throw server_error(std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // A server must not outlive a harness that was killed (ctest timeout, SIGKILL).
        if (die_with_parent) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
        }
        int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(log_fd);
    return pid;
}

int run_process(const std::vector<std::string>& args, const std::string& log_path, std::chrono::seconds timeout) {
    pid_t pid = spawn_process(args, log_path, true);
    auto until = clock_type::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (clock_type::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(20ms);
    }
}

std::string tail_of(const std::string& path, std::size_t lines) {
    std::ifstream in(path);
    std::deque<std::string> last;
    for (std::string line; std::getline(in, line);) {
        last.push_back(line);
        if (last.size() > lines) last.pop_front();
    }
    std::string out;
    for (auto& l : last) out += "    " + l + "\n";
    return out.empty() ? "    (empty)\n" : out;
}

bool main_thread() { return ::syscall(SYS_gettid) == ::getpid(); }

}  // namespace

std::string find_program(const std::string& name, const std::string& package) {
    std::string path = env_or("PATH", "/usr/bin:/bin");
    path += ":/usr/sbin:/sbin:/usr/local/sbin:/usr/local/bin";
    std::stringstream ss(path);
    for (std::string dir; std::getline(ss, dir, ':');) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    throw server_error("lifeline test harness: '" + name + "' not found; install the Debian package " + package +
                       " (scripts/setup.sh does)");
}

server server::start(const server_options& options) {
    const auto until = clock_type::now() + options.start_timeout;
    const std::string mariadbd = find_program("mariadbd", "mariadb-server");
    const std::string install_db = find_program("mariadb-install-db", "mariadb-server");

    std::string base = options.base_dir.empty() ? env_or("TMPDIR", "/tmp") : options.base_dir;
    std::string tmpl = base + "/lifeline-mariadb-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data()))
        throw server_error("lifeline test harness: cannot create a server directory under '" + base +
                           "': " + std::strerror(errno) + " (check that it exists and is writable)");

    server s;
    s.owner_ = true;
    s.dir_ = buf.data();
    s.endpoint_.socket = s.dir_ + "/mysqld.sock";
    if (s.endpoint_.socket.size() >= sizeof(sockaddr_un{}.sun_path))
        throw server_error("lifeline test harness: socket path '" + s.endpoint_.socket +
                           "' is too long for a Unix socket; use a shorter base_dir/TMPDIR");
    const std::string datadir = s.dir_ + "/data";
    const bool as_root = ::geteuid() == 0;
    fs::create_directory(s.dir_ + "/tmp");

    std::vector<std::string> install = {install_db, "--no-defaults", "--datadir=" + datadir,
                                        "--auth-root-authentication-method=normal", "--skip-test-db",
                                        // own tmpdir: concurrent servers collide on temp-table file names in /tmp
                                        "--tmpdir=" + s.dir_ + "/tmp"};
    if (as_root) install.push_back("--user=root");
    auto left = std::chrono::duration_cast<std::chrono::seconds>(until - clock_type::now());
    int rc = run_process(install, s.dir_ + "/install.log", std::max(left, std::chrono::seconds(1)));
    if (rc != 0)
        throw server_error("lifeline test harness: mariadb-install-db failed (exit " + std::to_string(rc) +
                           ") for datadir " + datadir + "; its output:\n" + tail_of(s.dir_ + "/install.log", 60));

    if (!options.prepare.empty()) {
        left = std::chrono::duration_cast<std::chrono::seconds>(until - clock_type::now());
        rc = run_process({options.prepare, s.dir_}, s.dir_ + "/prepare.log", std::max(left, std::chrono::seconds(1)));
        if (rc != 0)
            throw server_error("lifeline test harness: the prepare step '" + options.prepare + "' failed (exit " +
                               std::to_string(rc) + "); its output:\n" + tail_of(s.dir_ + "/prepare.log", 30));
    }
    auto expand = [&](std::string a) {  // "{dir}": the server's directory; "{semicolon}": ';' (CMake splits on ';')
        for (std::size_t at = a.find("{dir}"); at != std::string::npos; at = a.find("{dir}", at + s.dir_.size()))
            a.replace(at, 5, s.dir_);
        for (std::size_t at = a.find("{semicolon}"); at != std::string::npos; at = a.find("{semicolon}", at + 1))
            a.replace(at, 11, ";");
        return a;
    };

    const bool pick_port = options.port == 0;
    for (int attempt = 0;; ++attempt) {
        s.endpoint_.port = pick_port ? free_port() : options.port;
        s.args_ = {mariadbd,
                   "--no-defaults",
                   "--datadir=" + datadir,
                   "--port=" + std::to_string(s.endpoint_.port),
                   "--bind-address=127.0.0.1",
                   "--socket=" + s.endpoint_.socket,
                   "--tmpdir=" + s.dir_ + "/tmp",
                   "--pid-file=" + s.dir_ + "/mariadbd.pid",
                   "--log-error=" + s.dir_ + "/error.log",
                   "--skip-name-resolve",
                   // 128M: the redo a SIGKILL leaves behind (fast writers) is recovered in one batch. With 32M,
                   // 10.11's multi-batch recovery once refused to start ("Data structure corruption").
                   "--innodb-buffer-pool-size=128M",
                   // 2: a mariadbd crash (SIGKILL) loses nothing; only an OS crash could.
                   "--innodb-flush-log-at-trx-commit=2",
                   "--max-connections=500",
                   "--port-open-timeout=0"};
        if (as_root) s.args_.push_back("--user=root");
        for (auto& a : options.extra_args) s.args_.push_back(expand(a));
        try {
            s.spawn();
            s.wait_ready(until);
            break;
        } catch (const server_error&) {
            bool port_race = s.log_tail(30).find("Address already in use") != std::string::npos;
            if (pick_port && port_race && attempt < 3) continue;
            throw;
        }
    }

    s.admin_sql("CREATE DATABASE IF NOT EXISTS " + s.endpoint_.database);
    for (const char* host : {"%", "localhost"}) {
        std::string h = std::string("'") + host + "'";
        s.admin_sql("CREATE USER '" + s.endpoint_.app_user + "'@" + h + " IDENTIFIED BY '" +
                    s.endpoint_.app_password + "'");
        s.admin_sql("GRANT ALL PRIVILEGES ON " + s.endpoint_.database + ".* TO '" + s.endpoint_.app_user + "'@" + h);
        s.admin_sql("CREATE USER '" + s.endpoint_.admin_user + "'@" + h + " IDENTIFIED BY '" +
                    s.endpoint_.admin_password + "'");
        s.admin_sql("GRANT ALL PRIVILEGES ON *.* TO '" + s.endpoint_.admin_user + "'@" + h + " WITH GRANT OPTION");
    }
    s.write_state();
    // Which build tree started it, so the after-test sweep judges only its own servers.
    if (const char* owner = std::getenv("LIFELINE_HARNESS_OWNER"))
        std::ofstream(s.dir_ + "/owner", std::ios::trunc) << owner << "\n";
    return s;
}

server server::attach() {
    server s;
    s.owner_ = false;
    s.dir_ = require_env("LIFELINE_TEST_SERVER_DIR");
    s.endpoint_.host = require_env("LIFELINE_TEST_HOST");
    s.endpoint_.port = static_cast<unsigned>(std::stoul(require_env("LIFELINE_TEST_PORT")));
    s.endpoint_.socket = require_env("LIFELINE_TEST_SOCKET");
    s.endpoint_.database = require_env("LIFELINE_TEST_DATABASE");
    s.endpoint_.app_user = require_env("LIFELINE_TEST_USER");
    s.endpoint_.app_password = require_env("LIFELINE_TEST_PASSWORD");
    s.endpoint_.admin_user = require_env("LIFELINE_TEST_ADMIN_USER");
    s.endpoint_.admin_password = require_env("LIFELINE_TEST_ADMIN_PASSWORD");
    std::ifstream args(s.dir_ + "/mariadbd.args");
    for (std::string line; std::getline(args, line);)
        if (!line.empty()) s.args_.push_back(line);
    if (s.args_.empty())
        throw server_error("lifeline test harness: " + s.dir_ + "/mariadbd.args is missing; the server directory is gone");
    return s;
}

server::server(server&& other) noexcept
    : dir_(std::move(other.dir_)),
      endpoint_(std::move(other.endpoint_)),
      args_(std::move(other.args_)),
      owner_(other.owner_),
      frozen_(other.frozen_) {
    other.owner_ = false;
    other.dir_.clear();
    other.args_.clear();
}

server::~server() {
    if (dir_.empty()) return;
    try {
        if (owner_) {
            stop();
            std::error_code ec;
            fs::remove_all(dir_, ec);
        } else {
            // Leave the shared server as the next test expects it: running and not frozen.
            if (frozen_) thaw();
            if (!running()) start_again();
        }
    } catch (...) {
    }
}

pid_t server::pid() const {
    std::ifstream in(dir_ + "/harness.pid");
    long p = 0;
    if (!(in >> p)) return 0;
    return process_alive(static_cast<pid_t>(p)) ? static_cast<pid_t>(p) : 0;
}

bool server::running() const { return pid() != 0; }

void server::spawn() {
    pid_t pid = spawn_process(args_, dir_ + "/mariadbd.out", main_thread());
    std::ofstream(dir_ + "/harness.pid", std::ios::trunc) << pid << "\n";
}

void server::wait_ready(clock_type::time_point until) {
    for (;;) {
        pid_t p = pid();
        if (p == 0)
            throw server_error("lifeline test harness: mariadbd exited during start-up (port " +
                               std::to_string(endpoint_.port) + ", datadir " + dir_ +
                               "/data); its error log ends with:\n" + log_tail(15));
        MYSQL* m = mysql_init(nullptr);
        unsigned timeout = 1;
        mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
        bool ok = mysql_real_connect(m, nullptr, "root", "", nullptr, 0, endpoint_.socket.c_str(), 0) != nullptr;
        mysql_close(m);
        if (ok) return;
        if (clock_type::now() > until) {
            ::kill(p, SIGKILL);
            wait_gone(p, 5s);
            throw server_error("lifeline test harness: mariadbd did not accept connections in time (port " +
                               std::to_string(endpoint_.port) + "); its error log ends with:\n" + log_tail(15));
        }
        std::this_thread::sleep_for(25ms);
    }
}

void server::write_state() const {
    std::ofstream out(dir_ + "/mariadbd.args", std::ios::trunc);
    for (auto& a : args_) out << a << "\n";
}

void server::stop() {
    pid_t p = pid();
    if (p == 0) return;
    ::kill(p, SIGCONT);  // a frozen server cannot shut down
    frozen_ = false;
    ::kill(p, SIGTERM);
    if (!wait_gone(p, 30s)) {
        ::kill(p, SIGKILL);
        wait_gone(p, 10s);
    }
}

void server::crash() {
    pid_t p = pid();
    if (p == 0) return;
    ::kill(p, SIGKILL);
    frozen_ = false;
    if (!wait_gone(p, 10s)) throw server_error("lifeline test harness: mariadbd survived SIGKILL for 10 s");
}

void server::start_again() {
    if (running()) throw server_error("lifeline test harness: start_again() while the server is running");
    spawn();
    wait_ready(clock_type::now() + 60s);  // crash recovery may take longer than a fresh start
}

void server::freeze() {
    pid_t p = pid();
    if (p == 0) throw server_error("lifeline test harness: freeze() while the server is not running");
    ::kill(p, SIGSTOP);
    wait_state(p, true);
    frozen_ = true;
}

void server::thaw() {
    pid_t p = pid();
    if (p != 0) {
        ::kill(p, SIGCONT);
        wait_state(p, false);
    }
    frozen_ = false;
}

void server::export_environment() const {
    ::setenv("LIFELINE_TEST_SERVER_DIR", dir_.c_str(), 1);
    ::setenv("LIFELINE_TEST_HOST", endpoint_.host.c_str(), 1);
    ::setenv("LIFELINE_TEST_PORT", std::to_string(endpoint_.port).c_str(), 1);
    ::setenv("LIFELINE_TEST_SOCKET", endpoint_.socket.c_str(), 1);
    ::setenv("LIFELINE_TEST_DATABASE", endpoint_.database.c_str(), 1);
    ::setenv("LIFELINE_TEST_USER", endpoint_.app_user.c_str(), 1);
    ::setenv("LIFELINE_TEST_PASSWORD", endpoint_.app_password.c_str(), 1);
    ::setenv("LIFELINE_TEST_ADMIN_USER", endpoint_.admin_user.c_str(), 1);
    ::setenv("LIFELINE_TEST_ADMIN_PASSWORD", endpoint_.admin_password.c_str(), 1);
}

std::string server::log_tail(std::size_t lines) const { return tail_of(dir_ + "/error.log", lines); }

void server::admin_sql(const std::string& sql) const {
    MYSQL* m = mysql_init(nullptr);
    unsigned timeout = 5;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, nullptr, "root", "", nullptr, 0, endpoint_.socket.c_str(), 0) ||
        mysql_real_query(m, sql.data(), sql.size()) != 0) {
        std::string why = mysql_error(m);
        mysql_close(m);
        throw server_error("lifeline test harness: '" + sql + "' failed: " + why);
    }
    if (MYSQL_RES* r = mysql_store_result(m)) mysql_free_result(r);
    mysql_close(m);
}

}  // namespace lifeline::test
