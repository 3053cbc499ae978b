// lifeline-doctor — the password from a MySQL option file (--defaults-file), the way the mysql
// client reads it: the `password` key of the [client] group (and of [lifeline-doctor], which wins).
//
//   [client]
//   user     = app           # ignored: the user comes from the DSN
//   password = "s3cr#t"      # quotes keep '#' and spaces; \\ \" \' \n \t \s escapes
//
// Pure (an istream in, the value out) so it is unit-tested without files.
#ifndef LIFELINE_TOOLS_DOCTOR_OPTION_FILE_HPP
#define LIFELINE_TOOLS_DOCTOR_OPTION_FILE_HPP

#include <istream>
#include <optional>
#include <string>
#include <string_view>

namespace lifeline::doctor {

namespace detail {

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// An option's value: quoted (escapes decoded, '#' kept) or bare (a '#' starts a comment).
inline std::string option_value(std::string_view v) {
    v = trim(v);
    std::string out;
    if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
        const char q = v.front();
        for (std::size_t i = 1; i < v.size(); ++i) {
            char c = v[i];
            if (c == q) break;
            if (c == '\\' && i + 1 < v.size()) {
                const char n = v[++i];
                switch (n) {
                case 'n': c = '\n'; break;
                case 't': c = '\t'; break;
                case 'r': c = '\r'; break;
                case 'b': c = '\b'; break;
                case 's': c = ' '; break;
                default: c = n; break;  // \\ \" \'
                }
            }
            out += c;
        }
        return out;
    }
    if (auto hash = v.find('#'); hash != std::string_view::npos) v = trim(v.substr(0, hash));
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size() && v[i + 1] == 's') {
            out += ' ';
            ++i;
        } else {
            out += v[i];
        }
    }
    return out;
}

}  // namespace detail

// The password in [client] or [lifeline-doctor] (the later one in the file wins); nullopt if none.
inline std::optional<std::string> option_file_password(std::istream& in) {
    std::optional<std::string> found;
    bool in_group = false;
    for (std::string raw; std::getline(in, raw);) {
        std::string_view line = detail::trim(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';' || line.front() == '!') continue;
        if (line.front() == '[') {
            const auto close = line.find(']');
            const std::string_view group = detail::trim(line.substr(1, close == std::string_view::npos ? line.size() - 1 : close - 1));
            in_group = group == "client" || group == "lifeline-doctor";
            continue;
        }
        if (!in_group) continue;
        const auto eq = line.find('=');
        std::string key(detail::trim(line.substr(0, eq)));
        for (auto& c : key)
            if (c == '_') c = '-';
        if (key != "password") continue;
        found = eq == std::string_view::npos ? std::string() : detail::option_value(line.substr(eq + 1));
    }
    return found;
}

}  // namespace lifeline::doctor

#endif  // LIFELINE_TOOLS_DOCTOR_OPTION_FILE_HPP
