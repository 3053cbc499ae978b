// lifeline — turn a MySQL Connector/C++ 1.1 sql::SQLException into a lifeline failure,
// diagnostics and classification.
//
//   try { stmt->execute(sql); }
//   catch (const sql::SQLException& e) {
//       auto r = lifeline::jdbc::report(e, lifeline::phase::read_result, in_transaction);
//   }
//
// Connector/C++ does not say where in the round trip it failed: the caller passes the phase it
// knows (connect while connecting, read_result for execute()/executeQuery(), fetch while reading a
// ResultSet). `lifeline::jdbc` is also the driver tag (lifeline::connection<lifeline::jdbc>), so the
// helpers are its static members.
//
// Error code 0: Connector/C++ throws its own errors with code 0 and sqlstate "" or "HY000" — a
// closed Connection/Statement ("Connection has been closed", sql::InvalidInstanceException), a
// wrong option type at connect (sql::InvalidArgumentException), unsupported methods. Such an error
// carries no server or client error number, so lifeline reports it as CR_UNKNOWN_ERROR (2000,
// HY000): the classifier then treats it conservatively, and the error_code is never the
// "no error" value 0. The driver's own text is kept in diagnostics::server_message.
#ifndef LIFELINE_DRIVER_JDBC_ERROR_HPP
#define LIFELINE_DRIVER_JDBC_ERROR_HPP

#include <lifeline/classification.hpp>
#include <lifeline/error.hpp>
#include <lifeline/phase.hpp>

#include <cppconn/exception.h>
#include <cppconn/version_info.h>

#include <string>
#include <system_error>
#include <utility>

namespace lifeline {

struct jdbc {
    // Everything about one failure: the error_code to return, what it means, what to log.
    struct failure_report {
        std::error_code code;
        classification what;
        diagnostics diag;
    };

    // CR_UNKNOWN_ERROR: what an exception with error code 0 (Connector/C++'s own errors) becomes.
    static constexpr unsigned unknown_client_code = 2000;

    // The failure as the classifier takes it. `sqlstate` borrows the exception's string: classify
    // it while the exception is alive (or use report(), which copies first).
    static failure make_failure(const sql::SQLException& e, phase where, bool in_transaction) noexcept {
        return failure{code_of(e), state_of(e), where, in_transaction};
    }

    // Owning copy of the error, for logs and for lifeline's error reports.
    static diagnostics make_diagnostics(const sql::SQLException& e, phase where) {
        diagnostics d;
        d.code = code_of(e);
        d.sqlstate = state_of(e);
        d.server_message = e.what();
        d.driver = driver_name();
        d.where = where;
        return d;
    }

    // Copies the exception into diagnostics first, then classifies from that copy: nothing dangles.
    // The failure views d.sqlstate only while classify() runs; d is moved afterwards.
    static failure_report report(const sql::SQLException& e, phase where, bool in_transaction) {
        diagnostics d = make_diagnostics(e, where);
        const classification what = classify(failure{d.code, d.sqlstate, d.where, in_transaction});
        const std::error_code code = make_driver_error_code(d.code);
        return failure_report{code, what, std::move(d)};
    }

    // "MySQL Connector/C++ 1.1.12" (the headers compiled against; 1.1 exposes no runtime version
    // without creating the driver instance).
    static const std::string& driver_name() {
        static const std::string name = "MySQL Connector/C++ " + std::to_string(MYCPPCONN_DM_MAJOR_VERSION) + "." +
                                        std::to_string(MYCPPCONN_DM_MINOR_VERSION) + "." +
                                        std::to_string(MYCPPCONN_DM_PATCH_VERSION);
        return name;
    }

private:
    // Code 0 (or a negative one) and a missing SQLSTATE get the values described at the top.
    static unsigned code_of(const sql::SQLException& e) noexcept {
        const int c = e.getErrorCode();
        return c > 0 ? static_cast<unsigned>(c) : unknown_client_code;
    }
    static const char* state_of(const sql::SQLException& e) noexcept {
        const char* s = e.getSQLStateCStr();
        return (e.getErrorCode() > 0 && s && *s) ? s : "HY000";
    }
};

}  // namespace lifeline

#endif  // LIFELINE_DRIVER_JDBC_ERROR_HPP
