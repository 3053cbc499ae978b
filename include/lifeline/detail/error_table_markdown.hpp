// lifeline — renders the classification table as Markdown for README.md.
//
// Generated from classify() itself, so the README cannot drift from the code:
// tests/unit/readme_table_test.cpp compares README.md against this rendering, and
// tools/gen_error_table.cpp prints or rewrites it.
#ifndef LIFELINE_DETAIL_ERROR_TABLE_MARKDOWN_HPP
#define LIFELINE_DETAIL_ERROR_TABLE_MARKDOWN_HPP

#include <string>
#include <string_view>

#include <lifeline/classification.hpp>

namespace lifeline::detail {

inline constexpr std::string_view error_table_begin_marker = "<!-- error-table:begin -->";
inline constexpr std::string_view error_table_end_marker = "<!-- error-table:end -->";

// "outcome → remedy", with the connection state in front when it differs from `base`.
inline std::string describe_change(const classification& c, const classification& base) {
    std::string out;
    if (c.connection != base.connection) {
        out += to_string(c.connection);
        out += ", ";
    }
    out += to_string(c.statement);
    out += " → ";
    out += to_string(c.action);
    return out;
}

// The phases and the in-transaction case where the handling differs from the row's own
// (read_result, autocommit). During connect only a changed remedy is listed: that nothing ran
// and the connection is broken holds for every code and is said once above the table. A COMMIT
// is always in a transaction, so commit is compared with the in-transaction case.
inline std::string describe_differences(unsigned code) {
    const auto at = [code](phase where, bool tx) { return classify(failure{code, {}, where, tx}); };
    const classification base = at(phase::read_result, false);
    const classification in_tx = at(phase::read_result, true);
    const classification commit = at(phase::commit, true);

    std::string out;
    const auto add = [&out](std::string_view label, const std::string& what) {
        if (!out.empty()) out += "; ";
        out += label;
        out += ": ";
        out += what;
    };
    const classification connect = at(phase::connect, false);
    if (connect.action != base.action) add("connect", describe_change(connect, base));
    for (phase where : {phase::send, phase::fetch}) {
        const classification c = at(where, false);
        if (c != base) add(to_string(where), describe_change(c, base));
    }
    if (in_tx != base) {
        add(commit == in_tx ? "in a transaction (also at commit)" : "in a transaction", describe_change(in_tx, base));
    }
    for (phase where : {phase::send, phase::fetch}) {
        const classification c = at(where, true);
        if (c != in_tx) {
            std::string label = "in a transaction, ";
            label += to_string(where);
            add(label, describe_change(c, base));
        }
    }
    if (commit != in_tx) add("commit", describe_change(commit, base));
    return out.empty() ? std::string("—") : out;
}

// The flavour column: what a known flavour (or a Galera node) makes of the code, in read_result
// and autocommit; "—" when the flavour changes nothing.
inline std::string describe_flavors(const error_row& row) {
    std::string out;
    for (const flavor_row& f : flavor_rows) {
        if (f.code != row.code) continue;
        if (!out.empty()) out += "; ";
        out += f.galera ? std::string("Galera") : std::string(to_string(f.flavor));
        if (f.unlisted) {
            out += ": never sent (handled as unlisted)";
            continue;
        }
        const classification c = classify(failure{f.code, {}, phase::read_result, false, f.flavor, f.galera});
        out += ": ";
        if (f.row.symbol != row.symbol) {
            out += "`";
            out += f.row.symbol;
            out += "`, ";
        }
        out += to_string(c.connection);
        out += ", ";
        out += to_string(c.statement);
        out += " → ";
        out += to_string(c.action);
    }
    return out.empty() ? std::string("—") : out;
}

// The text between the README markers: a legend, then one line per table row.
inline std::string render_error_table_markdown() {
    std::string out;
    out += "Each row gives the connection state, what became of the statement and what lifeline does when the error "
           "arrives while waiting for a statement's result in autocommit mode (phase `read_result`); "
           "\"other phases\" lists where that changes. During `connect` nothing ran and there is no usable "
           "connection, so every code means `broken`, `not_executed`, and a remedy that would re-run on the "
           "connection becomes `retry_after_backoff`. A `commit` always counts as in a transaction. "
           "Codes not listed: a client error (2000–2999, 5000–5999) is handled like 2013; a server error by its "
           "SQLSTATE — class `08` like a lost connection, `40001`/`40000` like a deadlock, `70100` like an "
           "interrupted statement — and otherwise as `usable`, `failed` → `do_not_retry`. The \"flavour\" column "
           "lists where the server lifeline identified at connect (MySQL or MariaDB, a Galera node) changes the "
           "meaning; with an unknown flavour the row itself applies.\n";
    out += "\n";
    out += "| code | symbol | from | SQLSTATE | connection | outcome → remedy | other phases | flavour | why |\n";
    out += "|---:|---|---|---|---|---|---|---|---|\n";
    for (const error_row& row : error_table()) {
        const classification base = classify(failure{row.code, {}, phase::read_result, false});
        out += "| ";
        out += std::to_string(row.code);
        out += " | [`";
        out += row.symbol;
        out += "`](";
        out += row.citation;
        out += ") | ";
        out += row.origin;
        out += " | ";
        out += row.sqlstate;
        out += " | ";
        out += to_string(base.connection);
        out += " | ";
        out += to_string(base.statement);
        out += " → ";
        out += to_string(base.action);
        out += " | ";
        out += describe_differences(row.code);
        out += " | ";
        out += describe_flavors(row);
        out += " | ";
        out += row.reason;
        out += " |\n";
    }
    return out;
}

// The whole README section: heading, a short introduction, and the rendering between markers.
inline std::string render_error_table_section() {
    std::string out;
    out += "## What lifeline does with each error\n\n";
    out += "Generated from `lifeline::classify()` (`include/lifeline/detail/error_table.hpp`); "
           "`tests/unit/readme_table_test.cpp` fails when this table and the code disagree, and "
           "`tools/gen_error_table.cpp` regenerates it.\n\n";
    out += error_table_begin_marker;
    out += "\n";
    out += render_error_table_markdown();
    out += error_table_end_marker;
    out += "\n";
    return out;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_ERROR_TABLE_MARKDOWN_HPP
