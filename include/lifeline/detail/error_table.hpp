// lifeline — the classification table: one row per error number, sorted by number.
//
// A row says what the error means when it arrives while waiting for a statement's result in
// autocommit mode (phase read_result). Its `adjust` rule says how the phase and an open
// transaction change that; apply_rule() below implements the rules, classify() uses both.
// Numbers and symbols are checked against MariaDB Connector/C's errmsg.h and mysqld_error.h and
// the MySQL/MariaDB error references cited per row. Comments say why a row is what it is.
#ifndef LIFELINE_DETAIL_ERROR_TABLE_HPP
#define LIFELINE_DETAIL_ERROR_TABLE_HPP

#include <lifeline/detail/classification_types.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lifeline::detail {

// How the phase and an open transaction adjust a row. In every rule a failure during `connect`
// means nothing ran and no usable connection exists (see apply_rule).
enum class rule : std::uint8_t {
    in_flight,            // the command may have reached the server, then the connection died
    not_sent,             // the connection was dead before the command reached the server
    answer,               // the server (or client library) answered definitively: the row holds in every phase
    rollback,             // the server rolled back: the statement in autocommit, the whole transaction otherwise
    restart_transaction,  // only the statement was rolled back, but inside a transaction the server asks to restart it
    interrupted,          // the server stopped the statement (kill, time limit); a kill can race a COMMIT
};

struct error_row {
    unsigned code;
    std::string_view symbol;
    std::string_view sqlstate;  // the typical one; client errors always report HY000
    std::string_view origin;    // who produces it: "client library", "MySQL, MariaDB", "MariaDB", "MySQL 8.0.24+"
    connection_state connection;
    outcome statement;
    remedy action;
    rule adjust;
    std::string_view reason;
    std::string_view citation;  // the MySQL or MariaDB error reference page
};

// The rows. Keep them sorted by code (checked by a static_assert below).
inline constexpr error_row error_row_data[] = {
    // Refused at connect: max_connections reached. Transient by nature.
    {1040, "ER_CON_COUNT_ERROR", "08004", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "too many connections: the server refused the connection; try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_con_count_error"},
    {1044, "ER_DBACCESS_DENIED_ERROR", "42000", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "access to the database denied: fix the grants or the schema name; a retry cannot help",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_dbaccess_denied_error"},
    // Retrying a wrong password only adds failed logins (and may lock the account).
    {1045, "ER_ACCESS_DENIED_ERROR", "28000", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "access denied: wrong user or password; a retry cannot help",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_access_denied_error"},
    // "Unknown command" — in practice Galera's "WSREP has not yet prepared node for application use":
    // this node serves nothing until it rejoins, so drop the connection (a load balancer may hand
    // out a synced node) and come back after a pause. Nothing ran.
    {1047, "ER_UNKNOWN_COM_ERROR", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "the server refused the command (Galera: node not ready for queries): nothing ran; reconnect after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_unknown_com_error"},
    // A shutdown kills running statements the way KILL does, and a kill can land after the
    // statement's own commit; the socket then closes, so nothing can be asked: treat as in flight.
    // On connect it is a refusal (the server is going down): retry after backoff.
    {1053, "ER_SERVER_SHUTDOWN", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "server shutdown in progress: the statement was aborted or had just finished; the connection is closing",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_server_shutdown"},
    {1062, "ER_DUP_ENTRY", "23000", "MySQL, MariaDB", connection_state::usable, outcome::failed,
     remedy::do_not_retry, rule::answer,
     "duplicate key: the statement failed; running it again fails the same way",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_dup_entry"},
    {1064, "ER_PARSE_ERROR", "42000", "MySQL, MariaDB", connection_state::usable, outcome::failed,
     remedy::do_not_retry, rule::answer,
     "SQL syntax error: fix the statement",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_parse_error"},
    // Blocked after max_connect_errors: every further attempt is refused until FLUSH HOSTS.
    {1129, "ER_HOST_IS_BLOCKED", "HY000", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "host blocked after too many connection errors: run FLUSH HOSTS or raise max_connect_errors",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_host_is_blocked"},
    {1130, "ER_HOST_NOT_PRIVILEGED", "HY000", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "this host may not connect to the server: grant the account access from this host",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_host_not_privileged"},
    // The server could not start a thread for the new connection: overload, transient.
    {1135, "ER_CANT_CREATE_THREAD", "HY000", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "the server could not create a thread for the connection (out of resources): try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_cant_create_thread"},
    {1146, "ER_NO_SUCH_TABLE", "42S02", "MySQL, MariaDB", connection_state::usable, outcome::failed,
     remedy::do_not_retry, rule::answer,
     "table does not exist: fix the schema or the statement",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_no_such_table"},
    // Measured here: a statement just over a 16 MB limit gets 1153 and the next query 2006 (or,
    // racing the close, 2013); from ~20 MB on the send itself usually fails with 2006 first. The
    // server refuses the packet and drops the connection either way (lifeline checks the size
    // against @@max_allowed_packet before sending, so neither reaches the server).
    {1153, "ER_NET_PACKET_TOO_LARGE", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::not_executed,
     remedy::shrink_payload, rule::answer,
     "packet larger than the server's max_allowed_packet: the server refused it and closed the connection",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_net_packet_too_large"},
    // 1158/1159: the server could not read the whole command (or LOAD DATA LOCAL's data), so it did
    // not complete it, and it drops the connection after a network error.
    {1158, "ER_NET_READ_ERROR", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::statement_rolled_back,
     remedy::reconnect_and_retry, rule::answer,
     "the server failed reading the command from the network and dropped the connection; the command did not complete",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_net_read_error"},
    {1159, "ER_NET_READ_INTERRUPTED", "08S01", "MySQL, MariaDB", connection_state::broken,
     outcome::statement_rolled_back, remedy::reconnect_and_retry, rule::answer,
     "the server timed out (net_read_timeout) reading the command and dropped the connection; it did not complete",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_net_read_interrupted"},
    // 1160/1161: the server failed to send the result, so the statement had run; in autocommit it
    // has probably committed, but "probably" is not enough for a write.
    {1160, "ER_NET_ERROR_ON_WRITE", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "the server failed sending the result and dropped the connection: the statement probably ran",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_net_error_on_write"},
    {1161, "ER_NET_WRITE_INTERRUPTED", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "the server timed out (net_write_timeout) sending the result and dropped the connection: the statement probably ran",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_net_write_interrupted"},
    // Whether a failed engine commit was rolled back depends on the engine and on where in the
    // two-phase commit it failed (Group Replication conflicts surface as "Got error 149 during
    // COMMIT"), so the outcome is unknown even though the server answered.
    {1180, "ER_ERROR_DURING_COMMIT", "HY000", "MySQL, MariaDB", connection_state::usable, outcome::unknown,
     remedy::verify_then_retry, rule::answer,
     "the storage engine failed the COMMIT: whether the transaction survived depends on the engine; verify",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_error_during_commit"},
    // After a failed ROLLBACK the session's transaction state is unknown; closing the connection
    // makes the server roll back for certain.
    {1181, "ER_ERROR_DURING_ROLLBACK", "HY000", "MySQL, MariaDB", connection_state::broken, outcome::failed,
     remedy::do_not_retry, rule::answer,
     "ROLLBACK failed: the session's state is unknown, so the connection is discarded (the server then rolls back)",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_error_during_rollback"},
    // Sent as the server aborts a connection (init_connect failed, killed, network error).
    {1184, "ER_NEW_ABORTING_CONNECTION", "08S01", "MySQL, MariaDB", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "the server aborted the connection: treated as a connection lost with the statement in flight",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_new_aborting_connection"},
    {1203, "ER_TOO_MANY_USER_CONNECTIONS", "42000", "MySQL, MariaDB", connection_state::broken,
     outcome::not_executed, remedy::retry_after_backoff, rule::answer,
     "this account reached max_user_connections: the server refused the connection; try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_too_many_user_connections"},
    // Measured: only the statement is rolled back (innodb_rollback_on_timeout=OFF, the default);
    // the connection and the transaction stay. With innodb_rollback_on_timeout=ON the server rolls
    // back the whole transaction — retry_transaction is right in both cases.
    {1205, "ER_LOCK_WAIT_TIMEOUT", "HY000", "MySQL, MariaDB", connection_state::usable,
     outcome::statement_rolled_back, remedy::retry_after_backoff, rule::restart_transaction,
     "lock wait timeout: only the statement was rolled back; retry after a pause (in a transaction: re-run it)",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_lock_wait_timeout"},
    // Measured: InnoDB rolls back the whole transaction. In autocommit that transaction was just
    // the statement, so the statement is retried after a pause (no transaction to re-run). Galera
    // reports certification conflicts with the same code, also at COMMIT.
    {1213, "ER_LOCK_DEADLOCK", "40001", "MySQL, MariaDB", connection_state::usable, outcome::statement_rolled_back,
     remedy::retry_after_backoff, rule::rollback,
     "deadlock found: the transaction was rolled back (in autocommit: the statement); run it again",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_lock_deadlock"},
    // read_only/super_read_only: what a replica or a failed-over old primary says to a write
    // (measured). The same number serves other options (e.g. --secure-file-priv); rerouting those
    // is harmless — the primary refuses too — and the retry budget bounds it.
    {1290, "ER_OPTION_PREVENTS_STATEMENT", "HY000", "MySQL, MariaDB", connection_state::usable,
     outcome::not_executed, remedy::reroute_to_primary, rule::answer,
     "the server runs with an option that forbids the statement (read_only: a replica or demoted primary)",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_option_prevents_statement"},
    // Unlike 1153 the server built the oversized value itself and keeps the connection.
    {1301, "ER_WARN_ALLOWED_PACKET_OVERFLOWED", "HY000", "MySQL, MariaDB", connection_state::usable,
     outcome::failed, remedy::shrink_payload, rule::answer,
     "a function result exceeded max_allowed_packet: make the value smaller or raise max_allowed_packet",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_warn_allowed_packet_overflowed"},
    // KILL QUERY (measured: raised while fetching; the connection stays usable). Retrying would
    // overrule whoever killed it. Connector/J maps SQLSTATE 70100 to SQLTimeoutException and
    // HikariCP then evicts the healthy connection (HikariCP #1388, #1631); lifeline keeps it.
    // Caveat: MySQL also sends 1317 for KILL CONNECTION (THD::send_kill_message turns it into
    // KILL_QUERY unless the server is shutting down) and then closes the socket; the pool's
    // liveness poll finds that closed socket before the connection is reused.
    {1317, "ER_QUERY_INTERRUPTED", "70100", "MySQL, MariaDB", connection_state::usable, outcome::interrupted,
     remedy::do_not_retry, rule::interrupted,
     "the statement was killed (KILL QUERY): the connection stays usable; an operator's decision, not retried",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_query_interrupted"},
    // A concurrent DDL invalidated the transaction's snapshot; the server says "please retry".
    {1412, "ER_TABLE_DEF_CHANGED", "HY000", "MySQL, MariaDB", connection_state::usable, outcome::not_executed,
     remedy::retry_now, rule::restart_transaction,
     "table definition changed since the transaction's snapshot: retry (in a transaction: re-run it)",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_table_def_changed"},
    {1615, "ER_NEED_REPREPARE", "HY000", "MySQL, MariaDB", connection_state::usable, outcome::not_executed,
     remedy::retry_now, rule::answer,
     "prepared statement needs to be re-prepared (its tables changed): prepare it again and run it",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_need_reprepare"},
    {1637, "ER_TOO_MANY_CONCURRENT_TRXS", "HY000", "MySQL, MariaDB", connection_state::usable,
     outcome::not_executed, remedy::retry_after_backoff, rule::answer,
     "InnoDB has too many active transactions (undo slots exhausted): try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_too_many_concurrent_trxs"},
    // A write in a READ ONLY transaction: servers and proxies that make replicas' transactions
    // read-only by default answer this. If the application itself said START TRANSACTION READ
    // ONLY, the primary refuses too and the retry budget ends it.
    {1792, "ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION", "25006", "MySQL, MariaDB", connection_state::usable,
     outcome::not_executed, remedy::reroute_to_primary, rule::answer,
     "write inside a READ ONLY transaction: run it where writes are allowed (the primary)",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_cant_execute_in_read_only_transaction"},
    {1836, "ER_READ_ONLY_MODE", "HY000", "MySQL, MariaDB", connection_state::usable, outcome::not_executed,
     remedy::reroute_to_primary, rule::answer,
     "the server runs in read-only mode: send writes to the primary",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_read_only_mode"},
    // MariaDB only (MySQL's 1xxx range ends at 1887). Same SQLSTATE 70100 as 1317 and 1969, but
    // here the connection is gone (MariaDB CONJ-492); code that maps 70100 to "timeout, connection
    // fine" keeps a dead connection, code that maps it to "evict" throws away healthy ones after
    // 1317/1969. A connection kill is often failover or reaping, sometimes an operator stopping
    // this very statement: re-run only idempotent work.
    {1927, "ER_CONNECTION_KILLED", "70100", "MariaDB", connection_state::broken, outcome::interrupted,
     remedy::retry_if_idempotent, rule::interrupted,
     "the connection was killed (KILL CONNECTION): the statement was stopped and the connection is gone",
     "https://mariadb.com/kb/en/e1927/"},
    // MariaDB max_statement_time (measured: 1969 after the limit, connection alive). The same
    // statement would hit the same limit again.
    {1969, "ER_STATEMENT_TIMEOUT", "70100", "MariaDB", connection_state::usable, outcome::interrupted,
     remedy::do_not_retry, rule::interrupted,
     "max_statement_time exceeded: the statement was stopped, the connection stays usable; a retry would time out again",
     "https://mariadb.com/kb/en/e1969/"},
    // The client library cannot say what happened: assume the worst, as for 2013.
    {2000, "CR_UNKNOWN_ERROR", "HY000", "client library", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "unknown client error: treated as a connection lost with the statement in flight",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_unknown_error"},
    {2001, "CR_SOCKET_CREATE_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "could not create a socket (file descriptors exhausted?): try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_socket_create_error"},
    // Measured: MariaDB Connector/C reports 2002 for a refused TCP connect too, not only sockets.
    {2002, "CR_CONNECTION_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "could not connect (nothing listening, refused or timed out): try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_connection_error"},
    {2003, "CR_CONN_HOST_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "could not connect to the host (refused, unreachable or timed out): try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_conn_host_error"},
    {2004, "CR_IPSOCK_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "could not create a TCP socket: try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_ipsock_error"},
    // Name resolution fails transiently (resolver timeouts, a failover's DNS switch), so lifeline
    // retries with backoff; a typo in the host name exhausts the retry budget and is reported.
    {2005, "CR_UNKNOWN_HOST", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "host name did not resolve: DNS may be briefly unavailable, so try again after a pause (a typo ends in an error)",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_unknown_host"},
    // The write failed: the connection was already dead (measured after wait_timeout). A failed
    // write delivers no complete command, so the server cannot have run it — the same rule as Go's
    // driver.ErrBadConn, which is only returned when nothing was written.
    {2006, "CR_SERVER_GONE_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::reconnect_and_retry, rule::not_sent,
     "server has gone away: the connection was dead before the command reached the server, so nothing ran",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_server_gone_error"},
    {2007, "CR_VERSION_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "protocol mismatch between client library and server: upgrade one of them",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_version_error"},
    // Out of memory inside the client library leaves the protocol state unknown.
    {2008, "CR_OUT_OF_MEMORY", "HY000", "client library", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "the client library ran out of memory: the connection's state and the statement's fate are unknown",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_out_of_memory"},
    {2012, "CR_SERVER_HANDSHAKE_ERR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "error during the connection handshake: try again after a pause",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_server_handshake_err"},
    // The socket died after the command was written (measured for KILL CONNECTION, shutdown, crash
    // and a silent drop caught by a read timeout) — and also for an idle connection killed before
    // the write, which the client cannot tell apart. So: unknown. During connect (handshake) it is
    // "nothing ran", which apply_rule derives from the phase.
    {2013, "CR_SERVER_LOST", "HY000", "client library", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "server closed the connection while the statement was in flight: it may or may not have run",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_server_lost"},
    // A bug in the caller (an unread result): the command is refused before it is sent, but the
    // connection is in an unsafe state. SQLAlchemy treats it as a disconnect; so does lifeline.
    {2014, "CR_COMMANDS_OUT_OF_SYNC", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "commands out of sync (a result was left unread): a bug in the caller; the connection is discarded",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_commands_out_of_sync"},
    // The client's own max_allowed_packet: usually a result row too large to read, after which the
    // stream is out of sync; the statement had run. Running it again fails again.
    {2020, "CR_NET_PACKET_TOO_LARGE", "HY000", "client library", connection_state::broken, outcome::unknown,
     remedy::do_not_retry, rule::answer,
     "a packet exceeded the client's max_allowed_packet: raise it on the client or make rows/statements smaller",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_net_packet_too_large"},
    // Certificates, TLS versions, ciphers: configuration, not a transient fault.
    {2026, "CR_SSL_CONNECTION_ERROR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "TLS connection error: check certificates, TLS versions and ciphers; a retry cannot help",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_ssl_connection_error"},
    {2027, "CR_MALFORMED_PACKET", "HY000", "client library", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "malformed packet: the protocol stream is corrupt; the statement's fate is unknown",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_malformed_packet"},
    {2030, "CR_NO_PREPARE_STMT", "HY000", "client library", connection_state::usable, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "statement not prepared: a bug in the caller",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_no_prepare_stmt"},
    {2031, "CR_PARAMS_NOT_BOUND", "HY000", "client library", connection_state::usable, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "no data supplied for the statement's parameters: a bug in the caller",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_params_not_bound"},
    // A message template: libraries report 2013 with this text. Listed in case one reports 2055.
    {2055, "CR_SERVER_LOST_EXTENDED", "HY000", "client library", connection_state::broken, outcome::unknown,
     remedy::verify_then_retry, rule::in_flight,
     "lost connection to the server (extended form of 2013): the statement may or may not have run",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_server_lost_extended"},
    // The handle was invalidated by an earlier call (e.g. change_user or a reconnect); the
    // connection is fine and the statement never went out.
    {2056, "CR_STMT_CLOSED", "HY000", "client library", connection_state::usable, outcome::not_executed,
     remedy::retry_now, rule::answer,
     "the statement handle was closed by an earlier call (e.g. a reconnect): prepare it again and run it",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_stmt_closed"},
    {2059, "CR_AUTH_PLUGIN_CANNOT_LOAD", "HY000", "client library", connection_state::broken,
     outcome::not_executed, remedy::do_not_retry, rule::answer,
     "the authentication plugin could not be loaded: install it or change the account's plugin",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_auth_plugin_cannot_load"},
    {2061, "CR_AUTH_PLUGIN_ERR", "HY000", "client library", connection_state::broken, outcome::not_executed,
     remedy::do_not_retry, rule::answer,
     "the authentication plugin failed (e.g. caching_sha2_password without TLS or an RSA key): fix the setup",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/client-error-reference.html#error_cr_auth_plugin_err"},
    // MySQL's MAX_EXECUTION_TIME (SELECT only); MariaDB cannot produce it (its 3024 is ER_UNUSED_1,
    // never sent; it reports 1969 instead). The same SELECT would time out again.
    {3024, "ER_QUERY_TIMEOUT", "HY000", "MySQL 5.7.8+", connection_state::usable, outcome::interrupted,
     remedy::do_not_retry, rule::interrupted,
     "MAX_EXECUTION_TIME exceeded: the SELECT was stopped, the connection stays usable; a retry would time out again",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_query_timeout"},
    // offline_mode: the server is being taken out of service and disconnects ordinary clients on
    // their next request, which therefore did not run.
    {3032, "ER_SERVER_OFFLINE_MODE", "HY000", "MySQL 5.7.5+", connection_state::broken, outcome::not_executed,
     remedy::retry_after_backoff, rule::answer,
     "the server is in offline mode and closed the connection before running the statement; try again later",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_server_offline_mode"},
    // Group Replication certification conflict: rolled back at COMMIT (a deadlock by another name).
    {3101, "ER_TRANSACTION_ROLLBACK_DURING_COMMIT", "40000", "MySQL", connection_state::usable,
     outcome::statement_rolled_back, remedy::retry_after_backoff, rule::rollback,
     "the transaction was rolled back at COMMIT (Group Replication conflict): run it again",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_transaction_rollback_during_commit"},
    // MySQL 8.0.24+: the server closed the idle connection (wait_timeout) and said why; the client
    // reads it in place of the next command's answer, so that command never ran. Missing it broke
    // SQLAlchemy's pre-ping (issue #8036); Boost.MySQL treats server codes as non-fatal and keeps
    // the dead connection. MariaDB numbers ER_REFERENCED_TRG_DOES_NOT_EXIST 4031 (CREATE TRIGGER
    // ... FOLLOWS a missing trigger): that statement did not run either, so outside a transaction
    // a retry is harmless and fails the same way.
    {4031, "ER_CLIENT_INTERACTION_TIMEOUT", "HY000", "MySQL 8.0.24+", connection_state::broken,
     outcome::not_executed, remedy::reconnect_and_retry, rule::not_sent,
     "the server closed the idle connection (wait_timeout) before the command arrived: nothing ran",
     "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_client_interaction_timeout"},
};

// Span-like view over the rows, for tests and documentation.
class error_table_view {
public:
    constexpr error_table_view(const error_row* data, std::size_t size) noexcept : data_(data), size_(size) {}
    constexpr const error_row* begin() const noexcept { return data_; }
    constexpr const error_row* end() const noexcept { return data_ + size_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr const error_row& operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    const error_row* data_;
    std::size_t size_;
};

constexpr error_table_view error_table() noexcept {
    return {error_row_data, sizeof(error_row_data) / sizeof(error_row_data[0])};
}

constexpr bool error_table_is_sorted() noexcept {
    const error_table_view t = error_table();
    for (std::size_t i = 1; i < t.size(); ++i) {
        if (!(t[i - 1].code < t[i].code)) return false;
    }
    return true;
}
static_assert(error_table_is_sorted(), "error_row_data must be sorted by code, without duplicates");

// Binary search: the row's index, or error_table().size() when the code has no row. (Indices, not
// pointers, so constant evaluation also works under -fsanitize=undefined, where GCC refuses to
// compare pointers to a constexpr array against null.)
constexpr std::size_t find_error_index(unsigned code) noexcept {
    const error_table_view t = error_table();
    std::size_t lo = 0, hi = t.size();
    while (lo < hi) {
        const std::size_t mid = lo + (hi - lo) / 2;
        if (t[mid].code < code) lo = mid + 1;
        else hi = mid;
    }
    return lo < t.size() && t[lo].code == code ? lo : t.size();
}

// The code's row, or nullptr.
constexpr const error_row* find_error_row(unsigned code) noexcept {
    const std::size_t i = find_error_index(code);
    return i < error_table().size() ? &error_table()[i] : nullptr;
}

// Client library codes: 2000-2999 (MySQL and MariaDB) and MariaDB Connector/C's own 5000-5999.
// Over the classic protocol no server sends 5xxx (MySQL keeps that range for the X Plugin).
constexpr bool is_client_code(unsigned code) noexcept {
    return (code >= 2000 && code <= 2999) || (code >= 5000 && code <= 5999);
}

// Rows for codes the table does not list.
inline constexpr error_row unknown_client_row{
    0, "", "HY000", "client library", connection_state::broken, outcome::unknown, remedy::verify_then_retry,
    rule::in_flight, "unlisted client error: treated as a connection lost with the statement in flight", ""};
inline constexpr error_row unknown_server_row{
    0, "", "", "server", connection_state::usable, outcome::failed, remedy::do_not_retry, rule::answer,
    "unlisted server error: the server answered and the connection stays usable; not retried", ""};
inline constexpr error_row sqlstate_08_row{
    0, "", "08", "server", connection_state::broken, outcome::unknown, remedy::verify_then_retry, rule::in_flight,
    "unlisted error with SQLSTATE class 08 (connection exception): treated as a connection lost in flight", ""};
inline constexpr error_row sqlstate_40001_row{
    0, "", "40001", "server", connection_state::usable, outcome::statement_rolled_back,
    remedy::retry_after_backoff, rule::rollback,
    "unlisted error with SQLSTATE 40001/40000 (transaction rollback): treated like a deadlock", ""};
inline constexpr error_row sqlstate_70100_row{
    0, "", "70100", "server", connection_state::usable, outcome::interrupted, remedy::do_not_retry,
    rule::interrupted,
    "unlisted error with SQLSTATE 70100 (interrupted): the connection stays usable; not retried", ""};

// --- flavour rows: where the server's flavour changes what a number means ----------------------
// A row here replaces the table's row for that code when the failure comes from that flavour (or
// from a Galera node, whatever its flavour). `unlisted`: that flavour never sends the number, so
// it is handled like any number the table does not list (by SQLSTATE, then range). With an
// unknown flavour (the server could not be identified) the table's own row applies.
struct flavor_row {
    unsigned code;
    server_flavor flavor;  // unknown with galera = true: any Galera node
    bool galera;
    bool unlisted;
    error_row row;         // ignored when unlisted (except symbol, origin and reason, for the docs)
};

inline constexpr flavor_row flavor_rows[] = {
    // Measured on a single-node Galera cluster with wsrep_reject_queries=ALL (and the recipes'
    // non-Primary node): 1047 08S01 for every statement that touches a table, while SELECT 1 and
    // SET still work on the same connection. The node is not serving; a new connection to it gets
    // the same answer, so reconnecting only adds load. Nothing ran: retry on this connection
    // after a pause (the node may rejoin, the operator may lift the rejection), within the deadline.
    {1047, server_flavor::unknown, true, false,
     {1047, "ER_UNKNOWN_COM_ERROR", "08S01", "Galera", connection_state::usable, outcome::not_executed,
      remedy::retry_after_backoff, rule::answer,
      "Galera: WSREP has not yet prepared node for application use (non-Primary, joining, or rejecting queries): "
      "the connection is fine and nothing ran; a reconnect to the same node does not help, so retry after a pause",
      "https://mariadb.com/kb/en/wsrep_reject_queries/"}},
    // MariaDB's 4031 is ER_REFERENCED_TRG_DOES_NOT_EXIST (CREATE TRIGGER ... FOLLOWS/PRECEDES a
    // trigger that does not exist): an ordinary refusal, the connection is fine (measured).
    {4031, server_flavor::mariadb, false, false,
     {4031, "ER_REFERENCED_TRG_DOES_NOT_EXIST", "HY000", "MariaDB", connection_state::usable, outcome::failed,
      remedy::do_not_retry, rule::answer,
      "MariaDB: the trigger named in FOLLOWS/PRECEDES does not exist: the statement failed, the connection is fine",
      "https://mariadb.com/kb/en/mariadb-error-codes/"}},
    // MySQL 8.0.24+: the table's row, without the MariaDB caveat.
    {4031, server_flavor::mysql, false, false,
     {4031, "ER_CLIENT_INTERACTION_TIMEOUT", "HY000", "MySQL 8.0.24+", connection_state::broken,
      outcome::not_executed, remedy::reconnect_and_retry, rule::not_sent,
      "MySQL: the server closed the idle connection (wait_timeout) before the command arrived: nothing ran",
      "https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_client_interaction_timeout"}},
    // MariaDB stops MAX_EXECUTION_TIME-like limits with 1969; its 3024 is never sent.
    {3024, server_flavor::mariadb, false, true,
     {3024, "(unused)", "", "MariaDB", connection_state::usable, outcome::failed, remedy::do_not_retry, rule::answer,
      "MariaDB never sends 3024 (its statement time limit answers 1969)", ""}},
    // MySQL's 1xxx range ends below 1927/1969: those numbers mean nothing there.
    {1927, server_flavor::mysql, false, true,
     {1927, "(unused)", "", "MySQL", connection_state::usable, outcome::failed, remedy::do_not_retry, rule::answer,
      "MySQL never sends 1927 (a killed connection answers 1317 or 2013 there)", ""}},
    {1969, server_flavor::mysql, false, true,
     {1969, "(unused)", "", "MySQL", connection_state::usable, outcome::failed, remedy::do_not_retry, rule::answer,
      "MySQL never sends 1969 (its MAX_EXECUTION_TIME answers 3024)", ""}},
};

constexpr std::size_t flavor_row_count() noexcept { return sizeof(flavor_rows) / sizeof(flavor_rows[0]); }

// The flavour row for this failure's code and server, as an index (flavor_row_count(): none).
constexpr std::size_t find_flavor_index(unsigned code, server_flavor flavor, bool galera) noexcept {
    for (std::size_t i = 0; i < flavor_row_count(); ++i) {
        const flavor_row& r = flavor_rows[i];
        if (r.code != code) continue;
        if (r.galera ? galera : (flavor != server_flavor::unknown && r.flavor == flavor)) return i;
    }
    return flavor_row_count();
}

// The row that governs `code`: its own, else a default chosen by SQLSTATE (server codes and code
// 0), else by range. Client codes ignore SQLSTATE: the client library always reports HY000.
// A flavour row (above) comes first when the server's flavour is known.
constexpr const error_row& row_for(unsigned code, std::string_view sqlstate, server_flavor flavor = server_flavor::unknown,
                                   bool galera = false) noexcept {
    bool unlisted = false;
    if (const std::size_t f = find_flavor_index(code, flavor, galera); f < flavor_row_count()) {
        if (!flavor_rows[f].unlisted) return flavor_rows[f].row;
        unlisted = true;
    }
    if (!unlisted)
        if (const std::size_t i = find_error_index(code); i < error_table().size()) return error_table()[i];
    if (code != 0 && is_client_code(code)) return unknown_client_row;
    if (sqlstate.size() >= 2 && sqlstate.substr(0, 2) == "08") return sqlstate_08_row;
    if (sqlstate == "40001" || sqlstate == "40000") return sqlstate_40001_row;
    if (sqlstate == "70100") return sqlstate_70100_row;
    // Code 0 without a telling SQLSTATE: the driver knows nothing; assume the worst.
    return code == 0 ? unknown_client_row : unknown_server_row;
}

inline constexpr std::string_view reason_connect =
    "failed while connecting (handshake, authentication or session restore): no statement ran";
inline constexpr std::string_view reason_result_lost =
    "the connection died while rows were being read: the statement ran, its result is lost";
inline constexpr std::string_view reason_commit_in_flight =
    "the connection died during COMMIT: the transaction may or may not be committed; verify before re-running";
inline constexpr std::string_view reason_transaction_lost =
    "the connection is gone inside a transaction: the server rolls the whole transaction back; re-run it";
inline constexpr std::string_view reason_interrupted_commit =
    "COMMIT was interrupted: the kill or time limit may have landed after the commit; verify";

// During connect nothing can have run; a remedy that would re-run on the connection becomes a
// pause before the next connect, so a refusing server is not hammered.
constexpr remedy remedy_at_connect(remedy r) noexcept {
    switch (r) {
    case remedy::do_not_retry:
    case remedy::shrink_payload:
    case remedy::reroute_to_primary: return r;
    default: return remedy::retry_after_backoff;
    }
}

// Applies the row's rule for the phase and transaction state. `in_transaction` is already true
// for phase::commit (see classify()).
constexpr classification apply_rule(const error_row& row, phase where, bool in_transaction) noexcept {
    constexpr auto broken = connection_state::broken;
    const classification as_listed{row.connection, row.statement, row.action, row.reason};
    const classification transaction_lost{broken, outcome::transaction_rolled_back, remedy::retry_transaction,
                                          reason_transaction_lost};

    if (where == phase::connect) {
        const remedy r = remedy_at_connect(row.action);
        return {broken, outcome::not_executed, r, r == row.action ? row.reason : reason_connect};
    }
    switch (row.adjust) {
    case rule::in_flight:
        // A lost COMMIT is the one case where not even the transaction's fate is known.
        if (where == phase::commit) return {broken, outcome::unknown, remedy::verify_then_retry, reason_commit_in_flight};
        if (in_transaction) return transaction_lost;
        if (where == phase::fetch) return {broken, outcome::unknown, remedy::retry_if_idempotent, reason_result_lost};
        return as_listed;
    case rule::not_sent:
        // Also at COMMIT: a COMMIT that never arrived committed nothing.
        if (in_transaction) return transaction_lost;
        // While fetching, the statement itself had already run (a cursor fetch is its own command).
        if (where == phase::fetch) return {broken, outcome::unknown, remedy::retry_if_idempotent, reason_result_lost};
        return as_listed;
    case rule::answer:
        if (in_transaction && row.connection == broken) {
            // Closing the connection ends the transaction; a permanent problem stays permanent.
            if (row.action == remedy::do_not_retry || row.action == remedy::shrink_payload)
                return {broken, outcome::transaction_rolled_back, row.action, row.reason};
            return transaction_lost;
        }
        return as_listed;
    case rule::rollback:
        if (in_transaction) return {row.connection, outcome::transaction_rolled_back, remedy::retry_transaction, row.reason};
        return as_listed;
    case rule::restart_transaction:
        if (in_transaction) return {row.connection, row.statement, remedy::retry_transaction, row.reason};
        return as_listed;
    case rule::interrupted:
        if (where == phase::commit) {
            const remedy r = row.action == remedy::do_not_retry ? remedy::do_not_retry : remedy::verify_then_retry;
            return {row.connection, outcome::unknown, r, reason_interrupted_commit};
        }
        if (in_transaction && row.connection == broken) return transaction_lost;
        return as_listed;
    }
    return as_listed;
}

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_ERROR_TABLE_HPP
