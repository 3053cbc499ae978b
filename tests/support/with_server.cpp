// lifeline_with_server — runs a command next to a throwaway MariaDB server.
//
//   lifeline_with_server [--port N] [--base-dir DIR] [--server-arg ARG]... [--prepare CMD] -- command [args...]
//
// --prepare CMD runs `CMD <server directory>` before the server starts (e.g. to generate TLS
// certificates there); "{dir}" in a --server-arg becomes that directory.
//
// Starts a server (test_server.hpp), exports LIFELINE_TEST_*, runs the command, then stops the
// server and removes its directory — also when the command fails, crashes or this wrapper gets
// SIGINT/SIGTERM/SIGHUP. If the server cannot start, it says why and exits 1: the test fails.
// It is a child subreaper, so servers that a test restarted are reaped and stopped here too.
#include "test_server.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t child_pid = 0;

void forward(int sig) {
    if (child_pid > 0) ::kill(child_pid, sig);
}

int usage() {
    std::cerr << "usage: lifeline_with_server [--port N] [--base-dir DIR] [--server-arg ARG]... [--prepare CMD] -- command "
                 "[args...]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    lifeline::test::server_options options;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (i + 1 >= argc) return usage();
        if (a == "--port") {
            options.port = static_cast<unsigned>(std::stoul(argv[++i]));
        } else if (a == "--base-dir") {
            options.base_dir = argv[++i];
        } else if (a == "--server-arg") {
            options.extra_args.push_back(argv[++i]);
        } else if (a == "--prepare") {
            options.prepare = argv[++i];
        } else {
            return usage();
        }
    }
    if (i >= argc) return usage();

    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa {};
    sa.sa_handler = forward;
    ::sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);

    try {
        auto srv = lifeline::test::server::start(options);
        srv.export_environment();
        std::cerr << "lifeline_with_server: MariaDB on 127.0.0.1:" << srv.where().port << " in " << srv.dir() << "\n";

        pid_t parent = ::getpid();
        pid_t pid = ::fork();
        if (pid < 0) throw lifeline::test::server_error(std::string("fork: ") + std::strerror(errno));
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed wrapper takes the test with it
            if (::getppid() != parent) ::_exit(127);
            ::execvp(argv[i], argv + i);
            std::cerr << "lifeline_with_server: cannot run " << argv[i] << ": " << std::strerror(errno) << "\n";
            ::_exit(127);
        }
        child_pid = pid;
        int status = 0, code = 1;
        for (;;) {
            int st = 0;
            pid_t r = ::waitpid(-1, &st, 0);  // reaps orphaned servers too
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) break;
            if (r == pid) {
                status = st;
                break;
            }
        }
        if (WIFEXITED(status)) code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status)) {
            std::cerr << "lifeline_with_server: " << argv[i] << " died of signal " << WTERMSIG(status) << "\n";
            code = 128 + WTERMSIG(status);
        }
        child_pid = 0;
        // srv's destructor stops whatever server is current and removes the directory.
        return code;
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n"
                  << "lifeline_with_server: FAILED to provide a MariaDB server; the tests cannot run.\n";
        return 1;
    }
}
