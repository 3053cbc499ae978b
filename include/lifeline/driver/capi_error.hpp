// lifeline — turn a MySQL C API error into a lifeline failure, diagnostics and classification.
//
// Works with MariaDB Connector/C and libmysqlclient (CMake's lifeline::capi defines
// LIFELINE_CAPI_MARIADB for the former). Call these right after the failing call, before anything
// else touches the handle: the driver keeps only the last error.
//
//   if (mysql_real_query(m, sql, len) != 0) {
//       auto r = lifeline::capi::report(m, lifeline::phase::read_result, in_transaction);
//       if (r.what.connection == lifeline::connection_state::broken) ...
//   }
//
// `lifeline::capi` is also the driver tag (lifeline::connection<lifeline::capi>), so the helpers
// are its static members: one name for the driver, whether you wrap it or only classify its errors.
//
// Error number 0 (the driver recorded no error, e.g. a non-blocking connect abandoned by the
// caller's own deadline): make_failure() and make_diagnostics() pass it through as 0, so callers
// can tell "the driver said nothing" apart; the classifier treats code 0 as the worst case
// (connection lost, statement in flight). report() turns it into CR_UNKNOWN_ERROR (2000, HY000),
// which classifies the same, so that its error_code is never the "no error" value.
#ifndef LIFELINE_DRIVER_CAPI_ERROR_HPP
#define LIFELINE_DRIVER_CAPI_ERROR_HPP

#include <lifeline/classification.hpp>
#include <lifeline/error.hpp>
#include <lifeline/phase.hpp>

#include <mysql.h>

#include <string>
#include <system_error>
#include <utility>

namespace lifeline {

struct capi {
    // Everything about one failure: the error_code to return, what it means, what to log.
    struct failure_report {
        std::error_code code;
        classification what;
        diagnostics diag;
    };

    // CR_OUT_OF_MEMORY: what a null handle means (mysql_init / mysql_stmt_init returned nullptr).
    static constexpr unsigned null_handle_code = 2008;
    // CR_UNKNOWN_ERROR: what report() makes of "failed, but the driver says error 0".
    static constexpr unsigned unknown_client_code = 2000;

    // The failure as the classifier takes it. `sqlstate` borrows the handle's own buffer: classify
    // it before the next call on the handle (or use report(), which copies first).
    static failure make_failure(MYSQL* m, phase where, bool in_transaction) noexcept {
        if (!m) return failure{null_handle_code, "HY000", where, in_transaction};
        return borrow(mysql_errno(m), mysql_sqlstate(m), where, in_transaction);
    }
    static failure make_failure(MYSQL_STMT* s, phase where, bool in_transaction) noexcept {
        if (!s) return failure{null_handle_code, "HY000", where, in_transaction};
        return borrow(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), where, in_transaction);
    }

    // Owning copy of the error, for logs and for lifeline's error reports.
    static diagnostics make_diagnostics(MYSQL* m, phase where) {
        if (!m) return null_handle(where, "mysql_init");
        return fill(mysql_errno(m), mysql_sqlstate(m), mysql_error(m), where);
    }
    static diagnostics make_diagnostics(MYSQL_STMT* s, phase where) {
        if (!s) return null_handle(where, "mysql_stmt_init");
        return fill(mysql_stmt_errno(s), mysql_stmt_sqlstate(s), mysql_stmt_error(s), where);
    }

    // Copies the error into diagnostics first, then classifies from that copy: nothing dangles.
    // Error 0 becomes CR_UNKNOWN_ERROR (see the top of this file).
    static failure_report report(MYSQL* m, phase where, bool in_transaction) {
        return from(make_diagnostics(m, where), in_transaction);
    }
    static failure_report report(MYSQL_STMT* s, phase where, bool in_transaction) {
        return from(make_diagnostics(s, where), in_transaction);
    }

    // "MariaDB Connector/C 3.3.20" or "libmysqlclient 8.0.36": the library actually loaded.
    static const std::string& driver_name() {
#ifdef LIFELINE_CAPI_MARIADB
        static const std::string name = std::string("MariaDB Connector/C ") + mysql_get_client_info();
#else
        static const std::string name = std::string("libmysqlclient ") + mysql_get_client_info();
#endif
        return name;
    }

private:
    static const char* or_empty(const char* s) noexcept { return s ? s : ""; }

    static failure borrow(unsigned code, const char* sqlstate, phase where, bool in_transaction) noexcept {
        return failure{code, or_empty(sqlstate), where, in_transaction};
    }

    static diagnostics fill(unsigned code, const char* sqlstate, const char* message, phase where) {
        diagnostics d;
        d.code = code;
        d.sqlstate = or_empty(sqlstate);
        d.server_message = or_empty(message);
        d.driver = driver_name();
        d.where = where;
        return d;
    }

    static diagnostics null_handle(phase where, const char* call) {
        diagnostics d = fill(null_handle_code, "HY000", nullptr, where);
        d.client_message = std::string(call) + " returned nullptr: out of memory";  // lifeline's words
        return d;
    }

    // The failure views d.sqlstate only while classify() runs; d is moved afterwards.
    static failure_report from(diagnostics d, bool in_transaction) {
        if (d.code == 0) {
            d.code = unknown_client_code;
            d.sqlstate = "HY000";
            d.client_message = "the driver reported a failure without an error number";
        }
        const classification what = classify(failure{d.code, d.sqlstate, d.where, in_transaction});
        const std::error_code code = make_driver_error_code(d.code);
        return failure_report{code, what, std::move(d)};
    }
};

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_CAPI_ERROR_HPP
