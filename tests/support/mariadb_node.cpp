// lifeline test harness — see mariadb_node.hpp.
#include "mariadb_node.hpp"

#include <mysql.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace lifeline::test::detail {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return (v && *v) ? std::string(v) : fallback;
}

// Alive and not a zombie. Reaps `pid` when it is our exited child.
bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    if (::kill(pid, 0) != 0) return errno == EPERM;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos || close + 2 >= text.size()) return false;
    return text[close + 2] != 'Z' && text[close + 2] != 'X';
}

bool wait_gone(pid_t pid, time_point until) {
    while (process_alive(pid)) {
        if (clock_type::now() > until) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

bool main_thread() { return ::syscall(SYS_gettid) == ::getpid(); }

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

struct spawn_spec {
    std::vector<std::string> args;
    std::string log_path;
    run_as user;
    std::string tmpdir;            // TMPDIR for the child (SST scripts use it); empty: inherited
    bool die_with_parent = true;   // PR_SET_PDEATHSIG (only honoured from the main thread, see below)
};

// fork + exec. The child is its own process-group leader (the SST scripts signal `-<mariadbd pid>`,
// and stopping a node kills its helpers too), switches to the server account, dies with the harness,
// and keeps no descriptor of ours. Between fork and exec it calls only async-signal-safe functions.
pid_t spawn_process(const spawn_spec& s) {
    std::vector<char*> argv;
    for (auto& a : s.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; e && *e; ++e)
        if (s.tmpdir.empty() || std::strncmp(*e, "TMPDIR=", 7) != 0) env_strings.emplace_back(*e);
    if (!s.tmpdir.empty()) env_strings.push_back("TMPDIR=" + s.tmpdir);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    int log_fd = ::open(s.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw server_error("lifeline test harness: cannot open " + s.log_path + ": " + std::strerror(errno));
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    // PDEATHSIG fires when the forking *thread* ends: only the main thread lives as long as the process.
    const bool die_with_parent = s.die_with_parent && main_thread();
    const pid_t parent = ::getpid();
    const run_as user = s.user;
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(log_fd);
        if (devnull >= 0) ::close(devnull);
        throw server_error(std::string("lifeline test harness: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::setpgid(0, 0);
        if (user.switch_user) {
            gid_t g = user.gid;
            if (::setgroups(1, &g) != 0 || ::setgid(user.gid) != 0 || ::setuid(user.uid) != 0) ::_exit(126);
        }
        // After the credential change, which would clear it.
        if (die_with_parent) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
        }
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
            for (int fd = 3; fd < 4096; ++fd) ::close(fd);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also here: no window in which a group kill would miss it
    ::close(log_fd);
    if (devnull >= 0) ::close(devnull);
    return pid;
}

// Exit code of `pid` (our child), 128+signal when killed by one, -1 when `until` passed (then killed).
int wait_exit(pid_t pid, time_point until) {
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0 && errno != EINTR) return -1;
        if (clock_type::now() > until) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(20ms);
    }
}

struct mysql_closer {
    void operator()(MYSQL* m) const noexcept { mysql_close(m); }
};
using mysql_ptr = std::unique_ptr<MYSQL, mysql_closer>;

mysql_ptr root_session(const std::string& socket, unsigned connect_timeout, unsigned read_timeout) {
    mysql_ptr m(mysql_init(nullptr));
    if (!m) throw server_error("lifeline test harness: mysql_init failed");
    mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &read_timeout);
    if (!mysql_real_connect(m.get(), nullptr, "root", "", nullptr, 0, socket.c_str(), 0))
        throw server_error("lifeline test harness: cannot connect as root to " + socket + ": " + mysql_error(m.get()));
    return m;
}

void run_statement(MYSQL* m, const std::string& sql, const std::string& where) {
    if (mysql_real_query(m, sql.data(), sql.size()) != 0)
        throw server_error("lifeline test harness: '" + sql + "' on " + where + " failed: " + mysql_error(m) + " (" +
                           std::to_string(mysql_errno(m)) + ")");
}

}  // namespace

// --- run_as, ports -----------------------------------------------------------------------------

run_as run_as::servers() {
    run_as r;
    if (::geteuid() != 0) {
        r.uid = ::geteuid();
        r.gid = ::getegid();
        return r;
    }
    struct passwd* pw = ::getpwnam("mysql");
    if (!pw)
        throw server_error("lifeline test harness: running as root, the test servers run as the 'mysql' account "
                           "(Galera's rsync SST cannot join as root), but it does not exist: install the Debian "
                           "package mariadb-server (scripts/setup.sh does)");
    r.switch_user = true;
    r.uid = pw->pw_uid;
    r.gid = pw->pw_gid;
    return r;
}

std::vector<unsigned> pick_ports(std::size_t count) {
    static std::mutex mutex;
    static std::set<unsigned> handed_out;
    static std::mt19937 random(std::random_device{}() ^ static_cast<unsigned>(::getpid()));

    // Below the ephemeral range; if that leaves no room, above it.
    unsigned eph_lo = 32768, eph_hi = 60999;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> eph_lo >> eph_hi;
    unsigned lo = 20000, hi = eph_lo;  // [lo, hi)
    if (eph_lo < 21024) {
        lo = eph_hi + 1;
        hi = 65536;
    }
    if (hi <= lo + count * 4)
        throw server_error("lifeline test harness: no port range outside the ephemeral range " + std::to_string(eph_lo) +
                           "-" + std::to_string(eph_hi) + " (net.ipv4.ip_local_port_range)");

    std::lock_guard<std::mutex> lock(mutex);
    std::vector<unsigned> ports;
    std::uniform_int_distribution<unsigned> pick(lo, hi - 1);
    for (int attempts = 0; ports.size() < count; ++attempts) {
        if (attempts > 10000) throw server_error("lifeline test harness: cannot find free ports on 127.0.0.1");
        unsigned port = pick(random);
        if (port == 3306 || handed_out.count(port)) continue;
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw server_error(std::string("lifeline test harness: socket: ") + std::strerror(errno));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;  // no SO_REUSEADDR: strict
        ::close(fd);
        if (!free) continue;
        handed_out.insert(port);
        ports.push_back(port);
    }
    return ports;
}

// --- cluster_dir -------------------------------------------------------------------------------

namespace {
// The guardian: waits for EOF on stdin (the harness process closed its end, or died), then kills
// what the node directories' harness.pid files name (their process groups: servers and SST helpers),
// waits (bounded) until they are gone and removes the directory. Signals from the terminal or a
// killed process group must not stop it before it has done so.
const char* const guardian_script = R"sh(trap '' INT TERM HUP QUIT
while read -r _; do :; done
d=$1
pids=
for f in "$d"/*/harness.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f" 2>/dev/null)
  case "$p" in ''|*[!0-9]*) continue;; esac
  kill -KILL -"$p" 2>/dev/null
  [ "$(cat /proc/$p/comm 2>/dev/null)" = mariadbd ] && kill -KILL "$p" 2>/dev/null
  pids="$pids $p"
done
n=0
while [ $n -lt 100 ]; do
  alive=0
  for p in $pids; do
    s=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/$p/status 2>/dev/null)
    case "$s" in ''|Z|X) ;; *) alive=1;; esac
  done
  [ $alive = 0 ] && break
  sleep 0.1
  n=$((n+1))
done
rm -rf "$d"
)sh";
}  // namespace

cluster_dir::cluster_dir(const std::string& base_dir, const std::string& kind) {
    std::string base = base_dir.empty() ? env_or("TMPDIR", "/tmp") : base_dir;
    std::string tmpl = base + "/lifeline-mariadb-" + kind + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data()))
        throw server_error("lifeline test harness: cannot create a directory under '" + base +
                           "': " + std::strerror(errno) + " (check that it exists and is writable)");
    path_ = buf.data();
    ::chmod(path_.c_str(), 0755);  // the server account must reach its node directory
    std::ofstream(path_ + "/harness.pid", std::ios::trunc) << ::getpid() << "\n";
    if (const char* owner = std::getenv("LIFELINE_HARNESS_OWNER"))
        std::ofstream(path_ + "/owner", std::ios::trunc) << owner << "\n";

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        std::error_code ec;
        fs::remove_all(path_, ec);
        throw server_error(std::string("lifeline test harness: pipe: ") + std::strerror(errno));
    }
    const std::string sh = "/bin/sh";
    std::vector<std::string> args = {sh, "-c", guardian_script, "lifeline-guardian", path_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        if (devnull >= 0) ::close(devnull);
        std::error_code ec;
        fs::remove_all(path_, ec);
        throw server_error(std::string("lifeline test harness: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::setpgid(0, 0);  // not in the test's process group: a group kill must not take it too
        ::dup2(fds[0], 0);
        if (devnull >= 0) {
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
        }
        if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
            for (int fd = 3; fd < 4096; ++fd) ::close(fd);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[0]);
    if (devnull >= 0) ::close(devnull);
    guardian_pipe_ = fds[1];
    guardian_ = pid;
}

cluster_dir::~cluster_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (guardian_pipe_ >= 0) ::close(guardian_pipe_);
    if (guardian_ > 0 && wait_exit(guardian_, clock_type::now() + 10s) < 0) {
        // wait_exit killed it; nothing was left for it to do
    }
}

// --- node --------------------------------------------------------------------------------------

node::node(std::string dir, unsigned port, run_as user)
    : dir_(std::move(dir)), datadir_(dir_ + "/data"), socket_(dir_ + "/sock"), port_(port), user_(user) {
    if (socket_.size() >= sizeof(sockaddr_un{}.sun_path))
        throw server_error("lifeline test harness: socket path '" + socket_ +
                           "' is too long for a Unix socket; use a shorter base_dir/TMPDIR");
}

node::~node() {
    if (pid_ > 0) {
        try {
            kill();
        } catch (...) {
        }
    }
}

void node::prepare(const std::vector<std::string>& settings) {
    fs::create_directories(datadir_);
    fs::create_directories(dir_ + "/tmp");
    {
        std::ofstream cnf(dir_ + "/my.cnf", std::ios::trunc);
        cnf << "[mariadbd]\n"
            << "datadir=" << datadir_ << "\n"
            << "socket=" << socket_ << "\n"
            << "pid-file=" << dir_ << "/mariadbd.pid\n"
            << "log-error=" << dir_ << "/error.log\n"
            << "tmpdir=" << dir_ << "/tmp\n"
            << "port=" << port_ << "\n"
            << "bind-address=127.0.0.1\n"
            << "skip-name-resolve\n"
            << "port-open-timeout=0\n";
        for (auto& s : settings) cnf << s << "\n";
        if (!cnf) throw server_error("lifeline test harness: cannot write " + dir_ + "/my.cnf");
    }
    if (const char* owner = std::getenv("LIFELINE_HARNESS_OWNER"))
        std::ofstream(dir_ + "/owner", std::ios::trunc) << owner << "\n";
    if (user_.switch_user) {
        for (const std::string& p : {dir_, datadir_, dir_ + "/tmp", dir_ + "/my.cnf"})
            if (::chown(p.c_str(), user_.uid, user_.gid) != 0)
                throw server_error("lifeline test harness: chown " + p + ": " + std::strerror(errno));
    }
}

std::vector<std::string> node::install_command() const {
    return {find_program("mariadb-install-db", "mariadb-server"),
            "--no-defaults",
            "--datadir=" + datadir_,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--tmpdir=" + dir_ + "/tmp"};
}

void node::spawn(const std::vector<std::string>& extra_args) {
    if (running()) throw server_error("lifeline test harness: node " + dir_ + " is already running");
    spawn_spec s;
    s.args = {find_program("mariadbd", "mariadb-server"), "--defaults-file=" + dir_ + "/my.cnf",
              // also on the command line: integration.no_servers_left recognises harness servers by it
              "--datadir=" + datadir_};
    s.args.insert(s.args.end(), extra_args.begin(), extra_args.end());
    s.log_path = dir_ + "/mariadbd.out";
    s.user = user_;
    s.tmpdir = dir_ + "/tmp";
    std::ofstream args(dir_ + "/mariadbd.args", std::ios::trunc);
    for (auto& a : s.args) args << a << "\n";
    pid_ = spawn_process(s);
    std::ofstream(dir_ + "/harness.pid", std::ios::trunc) << pid_ << "\n";
}

void node::wait_ready(time_point until) {
    for (;;) {
        if (pid() == 0) {
            std::string tail = log_tail(25);
            std::string msg = "lifeline test harness: mariadbd exited during start-up (port " + std::to_string(port_) +
                              ", " + dir_ + "); its error log ends with:\n" + tail;
            if (tail.find("Address already in use") != std::string::npos ||
                tail.find("has been taken by another program") != std::string::npos)
                throw port_taken(msg);
            throw server_error(msg);
        }
        bool ok = false;
        try {
            root_session(socket_, 1, 5);
            ok = true;
        } catch (const server_error&) {
        }
        if (ok) return;
        if (clock_type::now() > until) {
            std::string tail = log_tail(25);
            kill();
            throw server_error("lifeline test harness: mariadbd did not accept connections in time (port " +
                               std::to_string(port_) + ", " + dir_ + "); its error log ends with:\n" + tail);
        }
        std::this_thread::sleep_for(25ms);
    }
}

int node::run_once(const std::vector<std::string>& args, const std::string& log_name, time_point until) const {
    spawn_spec s;
    s.args = {find_program("mariadbd", "mariadb-server"), "--defaults-file=" + dir_ + "/my.cnf",
              "--datadir=" + datadir_};
    s.args.insert(s.args.end(), args.begin(), args.end());
    s.log_path = dir_ + "/" + log_name + ".out";
    s.user = user_;
    s.tmpdir = dir_ + "/tmp";
    return wait_exit(spawn_process(s), until);
}

pid_t node::pid() const {
    if (pid_ > 0 && !process_alive(pid_)) forget_pid();
    return pid_;
}

void node::forget_pid() const {
    pid_ = 0;
    std::error_code ec;
    fs::remove(dir_ + "/harness.pid", ec);
}

void node::signal_stop() {
    if (pid_t p = pid()) {
        ::kill(p, SIGCONT);
        ::kill(p, SIGTERM);
    }
}

void node::stop(time_point until) {
    pid_t p = pid();
    if (p == 0) return;
    signal_stop();
    if (!wait_gone(p, until)) {
        ::kill(-p, SIGKILL);
        ::kill(p, SIGKILL);
        wait_gone(p, clock_type::now() + 10s);
    }
    ::kill(-p, SIGKILL);  // whatever its helpers left behind
    forget_pid();
}

void node::kill() {
    pid_t p = pid_;
    if (p <= 0) return;
    ::kill(-p, SIGKILL);
    ::kill(p, SIGKILL);
    if (!wait_gone(p, clock_type::now() + 10s))
        throw server_error("lifeline test harness: mariadbd " + std::to_string(p) + " survived SIGKILL for 10 s");
    forget_pid();
}

void node::exec(const std::string& sql, unsigned read_timeout) const { exec_all({sql}, read_timeout); }

void node::exec_all(const std::vector<std::string>& statements, unsigned read_timeout) const {
    auto m = root_session(socket_, 5, read_timeout);
    for (auto& sql : statements) {
        run_statement(m.get(), sql, dir_);
        if (MYSQL_RES* r = mysql_store_result(m.get())) mysql_free_result(r);
    }
}

std::vector<row> node::query(const std::string& sql, unsigned read_timeout) const {
    auto m = root_session(socket_, 5, read_timeout);
    run_statement(m.get(), sql, dir_);
    std::vector<row> rows;
    MYSQL_RES* r = mysql_store_result(m.get());
    if (!r) return rows;
    unsigned n = mysql_num_fields(r);
    MYSQL_FIELD* fields = mysql_fetch_fields(r);
    while (MYSQL_ROW data = mysql_fetch_row(r)) {
        row one;
        for (unsigned i = 0; i < n; ++i) one[fields[i].name] = data[i] ? data[i] : "";
        rows.push_back(std::move(one));
    }
    mysql_free_result(r);
    return rows;
}

std::string node::scalar(const std::string& sql, unsigned read_timeout) const {
    auto m = root_session(socket_, 5, read_timeout);
    run_statement(m.get(), sql, dir_);
    MYSQL_RES* r = mysql_store_result(m.get());
    if (!r) return {};
    MYSQL_ROW data = mysql_fetch_row(r);
    std::string v = (data && data[0]) ? data[0] : "";
    mysql_free_result(r);
    return v;
}

std::string node::global_status(const std::string& name) const {
    auto rows = query("SHOW GLOBAL STATUS LIKE '" + name + "'");
    return rows.empty() ? std::string() : rows.front()["Value"];
}

std::string node::log_tail(std::size_t lines) const { return tail_of(dir_ + "/error.log", lines); }

// --- helpers -----------------------------------------------------------------------------------

void install_all(const std::vector<node*>& nodes, time_point until) {
    std::vector<pid_t> pids;
    for (node* n : nodes) {
        spawn_spec s;
        s.args = n->install_command();
        s.log_path = n->dir() + "/install.log";
        s.user = n->user();
        s.tmpdir = n->dir() + "/tmp";
        pids.push_back(spawn_process(s));
    }
    std::string failures;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        int rc = wait_exit(pids[i], until);
        if (rc != 0)
            failures += "lifeline test harness: mariadb-install-db failed (exit " + std::to_string(rc) + ", -1: timed out) for " +
                        nodes[i]->datadir() + "; its output:\n" + tail_of(nodes[i]->dir() + "/install.log", 40);
    }
    if (!failures.empty()) throw server_error(failures);
}

void wait_until(time_point until, const std::string& what, const std::function<bool()>& done,
                const std::function<std::string()>& why) {
    std::string last_error;
    for (;;) {
        try {
            if (done()) return;
        } catch (const give_up&) {
            throw;
        } catch (const std::exception& e) {
            last_error = e.what();
        }
        if (clock_type::now() > until) {
            std::string msg = "lifeline test harness: timed out waiting for " + what;
            if (why) {
                try {
                    msg += "; " + why();
                } catch (const std::exception& e) {
                    msg += std::string("; (state unreadable: ") + e.what() + ")";
                }
            }
            if (!last_error.empty()) msg += "; last error: " + last_error;
            throw server_error(msg);
        }
        std::this_thread::sleep_for(20ms);
    }
}

std::vector<std::string> user_statements(const endpoint& e) {
    std::vector<std::string> out = {"CREATE DATABASE IF NOT EXISTS " + e.database};
    for (const char* host : {"%", "localhost"}) {
        std::string h = std::string("'") + host + "'";
        out.push_back("CREATE USER '" + e.app_user + "'@" + h + " IDENTIFIED BY '" + e.app_password + "'");
        out.push_back("GRANT ALL PRIVILEGES ON " + e.database + ".* TO '" + e.app_user + "'@" + h);
        out.push_back("CREATE USER '" + e.admin_user + "'@" + h + " IDENTIFIED BY '" + e.admin_password + "'");
        out.push_back("GRANT ALL PRIVILEGES ON *.* TO '" + e.admin_user + "'@" + h + " WITH GRANT OPTION");
    }
    return out;
}

}  // namespace lifeline::test::detail
