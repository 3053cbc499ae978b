// lifeline — which server a connection talks to: MySQL or MariaDB, its version, a Galera node or not.
//
// Learnt at every connect in the same round trip as the session's identity (no extra cost):
// @@version, @@version_comment and, on MariaDB, @@global.wsrep_on. Classification uses the
// flavour where the same error number means different things (lifeline/classification.hpp):
// MariaDB numbers ER_REFERENCED_TRG_DOES_NOT_EXIST 4031, which MySQL 8 uses for "the server closed
// the idle connection"; a Galera node that is not ready answers 1047 with SQLSTATE 08S01, which a
// class-08 rule reads as a lost connection although the connection is fine and reconnecting to
// the same node does not help. An unknown flavour (the server answered none of lifeline's
// queries) keeps the flavour-neutral rules.
#ifndef LIFELINE_SERVER_INFO_HPP
#define LIFELINE_SERVER_INFO_HPP

#include <cstdint>
#include <string>
#include <string_view>

namespace lifeline {

enum class server_flavor : std::uint8_t {
    unknown,  // not learnt (yet): flavour-neutral classification
    mysql,    // Oracle MySQL and compatible builds (Percona Server)
    mariadb,
};

constexpr std::string_view to_string(server_flavor f) noexcept {
    switch (f) {
    case server_flavor::unknown: return "unknown";
    case server_flavor::mysql: return "MySQL";
    case server_flavor::mariadb: return "MariaDB";
    }
    return "invalid";
}

struct server_info {
    server_flavor flavor = server_flavor::unknown;
    bool galera = false;  // @@global.wsrep_on = ON: a Galera cluster node (false also when not learnt)
    unsigned major = 0, minor = 0, patch = 0;  // from @@version (0.0.0: unknown)
    std::string version;                       // @@version, e.g. "10.11.19-MariaDB-0+deb12u1"
    std::string version_comment;               // @@version_comment, e.g. "Debian 12"

    bool known() const noexcept { return flavor != server_flavor::unknown; }
    bool at_least(unsigned ma, unsigned mi, unsigned pa = 0) const noexcept {
        if (major != ma) return major > ma;
        if (minor != mi) return minor > mi;
        return patch >= pa;
    }
};

namespace detail {

// From the identity query's columns. `wsrep_on` is "1"/"ON" on a Galera node, empty when unknown.
inline server_info make_server_info(std::string_view version, std::string_view comment, std::string_view wsrep_on) {
    server_info s;
    s.version = std::string(version);
    s.version_comment = std::string(comment);
    if (version.empty()) return s;
    auto contains_nocase = [](std::string_view text, std::string_view word) {
        for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
            bool same = true;
            for (std::size_t j = 0; j < word.size() && same; ++j) {
                char a = text[i + j], b = word[j];
                if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
                same = a == b;
            }
            if (same) return true;
        }
        return false;
    };
    s.flavor = contains_nocase(version, "mariadb") ? server_flavor::mariadb : server_flavor::mysql;
    // MariaDB 10.x behind old clients and some proxies reports "5.5.5-10.11.2-MariaDB".
    if (s.flavor == server_flavor::mariadb && version.rfind("5.5.5-", 0) == 0) version.remove_prefix(6);
    unsigned* parts[] = {&s.major, &s.minor, &s.patch};
    std::size_t i = 0;
    for (unsigned* p : parts) {
        unsigned v = 0;
        std::size_t start = i;
        while (i < version.size() && version[i] >= '0' && version[i] <= '9' && i - start < 6)
            v = v * 10 + static_cast<unsigned>(version[i++] - '0');
        *p = v;
        if (i >= version.size() || version[i] != '.') break;
        ++i;
    }
    s.galera = wsrep_on == "1" || wsrep_on == "ON" || wsrep_on == "on";
    return s;
}

}  // namespace detail

}  // namespace lifeline

#endif  // LIFELINE_SERVER_INFO_HPP
