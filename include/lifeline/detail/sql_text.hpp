// lifeline — what a statement's text says about transaction and session state.
//
// `describe_statement(sql)` reads the leading keyword(s) of one statement the way the server's
// lexer does — past white space, /* */ comments, `-- ` and `#` line comments, case-insensitively,
// with string literals and `backquoted` identifiers skipped as units — and reports:
//
//   begins_transaction  a transaction is open after it: BEGIN [WORK], START TRANSACTION ...,
//                       XA START|BEGIN, COMMIT|ROLLBACK ... AND CHAIN
//   ends_transaction    none is open after it: COMMIT [WORK] [AND NO CHAIN] [[NO] RELEASE],
//                       ROLLBACK [WORK] (not ROLLBACK [WORK] TO [SAVEPOINT] s), XA COMMIT|ROLLBACK.
//                       XA END and XA PREPARE leave the XA transaction open (measured:
//                       @@in_transaction stays 1 until XA COMMIT/ROLLBACK).
//   sets_autocommit     off / on / untouched: SET [SESSION|LOCAL] autocommit = 0|1|ON|OFF|TRUE|FALSE,
//                       SET @@[session.|local.]autocommit := ..., also inside a list
//                       (SET a = 1, autocommit = 0). Any other value (DEFAULT, @v, an
//                       expression) makes the statement opaque. SET GLOBAL does not count.
//   implicit_commit     the statement commits an open transaction before it runs (MariaDB's list,
//                       https://mariadb.com/kb/en/sql-statements-that-cause-an-implicit-commit/):
//                       CREATE/ALTER/DROP of tables, databases, indexes, views, routines,
//                       triggers, events, users, roles, servers, sequences (not CREATE/DROP
//                       TEMPORARY TABLE), RENAME, TRUNCATE, LOCK TABLES, UNLOCK TABLES, GRANT,
//                       REVOKE, SET PASSWORD, ANALYZE/CHECK/OPTIMIZE/REPAIR TABLE, CACHE INDEX,
//                       LOAD INDEX INTO CACHE, FLUSH, RESET, START/STOP SLAVE, CHANGE MASTER,
//                       SHUTDOWN, BEGIN/START TRANSACTION inside a transaction. Also measured on
//                       10.11 though not listed: ALTER USER, SET DEFAULT ROLE, INSTALL/UNINSTALL.
//                       Conditional ones the text cannot settle: SET autocommit = 1 commits only
//                       if autocommit was 0 (the caller knows); UNLOCK TABLES only if LOCK TABLES
//                       was in force (so it is opaque too); LOAD INDEX INTO CACHE did not commit
//                       on 10.11 for InnoDB tables. A caller that must be exact asks the server
//                       (SELECT @@in_transaction) after such a statement inside a transaction.
//   changes_session     leaves session state a reconnect would lose: SET (session scope: system
//                       or user variables, NAMES, CHARACTER SET, ROLE, TRANSACTION), USE,
//                       PREPARE/DEALLOCATE/DROP PREPARE, CREATE/DROP TEMPORARY TABLE, LOCK/UNLOCK
//                       TABLES, FLUSH ... WITH READ LOCK|FOR EXPORT, HANDLER, and anywhere in the
//                       text GET_LOCK/RELEASE_LOCK/RELEASE_ALL_LOCKS, `@v :=` or INTO @v.
//   read_only_select    a plain SELECT/SHOW/DESCRIBE/EXPLAIN/VALUES/TABLE with no INTO, no
//                       FOR UPDATE/FOR SHARE/LOCK IN SHARE MODE, no `@v :=`, no
//                       GET_LOCK/RELEASE_LOCK, no NEXTVAL/SETVAL/NEXT VALUE FOR; for WITH and
//                       EXPLAIN/DESCRIBE also no INSERT/UPDATE/DELETE/REPLACE anywhere (MySQL runs
//                       WITH ... UPDATE and EXPLAIN ANALYZE). A stored function it calls may still
//                       write: the text cannot show that.
//   opaque              the text cannot tell the effect: CALL, EXECUTE, DO, HANDLER, BEGIN NOT
//                       ATOMIC, executable comments /*! ... */ and /*M! ... */, several
//                       statements (a `;` outside literals and comments followed by more text),
//                       an unterminated literal or comment, and any statement not recognised.
//
// Backslash escapes in literals depend on sql_mode (NO_BACKSLASH_ESCAPES): when a literal holds a
// backslash the text is read both ways and, if the answers differ, the statement is opaque.
//
// Pure function, no allocation, noexcept. Not a parser: it never says a statement is valid.
#ifndef LIFELINE_DETAIL_SQL_TEXT_HPP
#define LIFELINE_DETAIL_SQL_TEXT_HPP

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace lifeline::detail {

// True if sql starts (after white space) with kw, compared case-insensitively; kw is upper case.
inline bool starts_with_keyword(std::string_view sql, std::string_view kw) noexcept {
    std::size_t i = 0;
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    if (sql.size() - i < kw.size()) return false;
    for (std::size_t k = 0; k < kw.size(); ++k)
        if (std::toupper(static_cast<unsigned char>(sql[i + k])) != kw[k]) return false;
    return true;
}

enum class autocommit_change : std::uint8_t { untouched, off, on };

struct statement_info {
    std::string_view keyword;  // the first keyword as written (a view into the text; "" if none)
    bool begins_transaction = false;
    bool ends_transaction = false;
    autocommit_change sets_autocommit = autocommit_change::untouched;
    bool implicit_commit = false;
    bool changes_session = false;
    bool read_only_select = false;
    bool opaque = false;

    // Does the statement touch transaction state at all (so a tracker must look at it)?
    bool affects_transaction() const noexcept {
        return begins_transaction || ends_transaction || implicit_commit || opaque ||
               sets_autocommit != autocommit_change::untouched;
    }
    friend bool operator==(const statement_info& a, const statement_info& b) noexcept {
        return a.begins_transaction == b.begins_transaction && a.ends_transaction == b.ends_transaction &&
               a.sets_autocommit == b.sets_autocommit && a.implicit_commit == b.implicit_commit &&
               a.changes_session == b.changes_session && a.read_only_select == b.read_only_select &&
               a.opaque == b.opaque;
    }
    friend bool operator!=(const statement_info& a, const statement_info& b) noexcept { return !(a == b); }
};

namespace sql_lex {

enum class kind : std::uint8_t { end, word, string, quoted_ident, punct };

struct token {
    kind k = kind::end;
    std::string_view text;  // words and punctuation as written; literals with their quotes
};

// Upper-case ASCII keyword comparison.
inline bool ieq(std::string_view a, std::string_view upper) noexcept {
    if (a.size() != upper.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const char c = a[i];
        if ((c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c) != upper[i]) return false;  // ASCII only
    }
    return true;
}

inline bool is(const token& t, std::string_view upper) noexcept { return t.k == kind::word && ieq(t.text, upper); }
inline bool is_punct(const token& t, char c) noexcept {
    return t.k == kind::punct && t.text.size() == 1 && t.text[0] == c;
}

class lexer {
public:
    lexer(std::string_view sql, bool backslash_escapes) noexcept : s_(sql), backslash_(backslash_escapes) {}

    token next() noexcept {
        skip_space_and_comments();
        if (i_ >= s_.size()) return {};
        const std::size_t start = i_;
        const unsigned char c = static_cast<unsigned char>(s_[i_]);
        if (c == '\'' || c == '"') {
            quoted(static_cast<char>(c), backslash_);
            return {kind::string, s_.substr(start, i_ - start)};
        }
        if (c == '`') {
            quoted('`', false);
            return {kind::quoted_ident, s_.substr(start, i_ - start)};
        }
        if (word_char(c)) {
            while (i_ < s_.size() && word_char(static_cast<unsigned char>(s_[i_]))) ++i_;
            return {kind::word, s_.substr(start, i_ - start)};
        }
        if (c == ':' && i_ + 1 < s_.size() && s_[i_ + 1] == '=') {
            i_ += 2;
            return {kind::punct, s_.substr(start, 2)};
        }
        ++i_;
        return {kind::punct, s_.substr(start, 1)};
    }

    std::size_t offset() const noexcept { return i_; }
    bool executable_comment() const noexcept { return executable_comment_; }
    bool unterminated() const noexcept { return unterminated_; }
    bool backslash_in_literal() const noexcept { return backslash_in_literal_; }

private:
    static bool word_char(unsigned char c) noexcept { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

    void quoted(char q, bool escapes) noexcept {
        ++i_;
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if (c == '\\' && q != '`') {
                backslash_in_literal_ = true;
                if (escapes) {
                    i_ += 2;
                    continue;
                }
            }
            if (c == q) {
                if (i_ + 1 < s_.size() && s_[i_ + 1] == q) {  // doubled quote: one literal quote
                    i_ += 2;
                    continue;
                }
                ++i_;
                return;
            }
            ++i_;
        }
        i_ = s_.size();
        unterminated_ = true;
    }

    void skip_space_and_comments() noexcept {
        while (i_ < s_.size()) {
            const unsigned char c = static_cast<unsigned char>(s_[i_]);
            if (std::isspace(c)) {
                ++i_;
            } else if (c == '#') {
                line_comment();
            } else if (c == '-' && i_ + 1 < s_.size() && s_[i_ + 1] == '-' &&
                       (i_ + 2 >= s_.size() || std::isspace(static_cast<unsigned char>(s_[i_ + 2])) ||
                        std::iscntrl(static_cast<unsigned char>(s_[i_ + 2])))) {
                line_comment();  // "--" starts a comment only when followed by white space/control
            } else if (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '*') {
                // /*! ... */ and /*M! ... */ are executed by the server: their effect is unknown.
                if ((i_ + 2 < s_.size() && s_[i_ + 2] == '!') ||
                    (i_ + 3 < s_.size() && s_[i_ + 2] == 'M' && s_[i_ + 3] == '!'))
                    executable_comment_ = true;
                const auto close = s_.find("*/", i_ + 2);
                if (close == std::string_view::npos) {
                    unterminated_ = true;
                    i_ = s_.size();
                } else {
                    i_ = close + 2;
                }
            } else {
                return;
            }
        }
    }

    void line_comment() noexcept {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
    }

    std::string_view s_;
    std::size_t i_ = 0;
    bool backslash_;
    bool executable_comment_ = false;
    bool unterminated_ = false;
    bool backslash_in_literal_ = false;
};

// Facts gathered from the whole text (any depth), before looking at the leading keywords.
struct text_facts {
    bool several_statements = false;  // `;` followed by more text
    bool assigns_user_variable = false;  // `:=` (outside SET this is `@v := expr`)
    bool lock_function = false;          // GET_LOCK / RELEASE_LOCK / RELEASE_ALL_LOCKS
    bool into = false;                   // SELECT ... INTO (OUTFILE, DUMPFILE, @v)
    bool into_variable = false;          // INTO @v
    bool locking_read = false;           // FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE
    bool sequence_write = false;         // NEXTVAL( / SETVAL( / NEXT VALUE FOR
    bool dml_word = false;               // INSERT / UPDATE / DELETE / REPLACE anywhere (WITH ...)
    bool executable_comment = false;
    bool unterminated = false;
    bool backslash_in_literal = false;
};

inline text_facts scan_text(std::string_view sql, bool backslash_escapes) noexcept {
    text_facts f;
    lexer lx(sql, backslash_escapes);
    token prev2, prev, t;
    bool after_semicolon = false;
    while ((t = lx.next()).k != kind::end) {
        if (after_semicolon && !is_punct(t, ';')) f.several_statements = true;
        if (is_punct(t, ';')) after_semicolon = true;
        if (t.k == kind::punct && t.text == ":=") f.assigns_user_variable = true;
        if (is(t, "GET_LOCK") || is(t, "RELEASE_LOCK") || is(t, "RELEASE_ALL_LOCKS")) f.lock_function = true;
        if (is(t, "NEXTVAL") || is(t, "SETVAL") || (is(prev, "NEXT") && is(t, "VALUE"))) f.sequence_write = true;
        if (is(t, "INSERT") || is(t, "UPDATE") || is(t, "DELETE") || is(t, "REPLACE")) f.dml_word = true;
        if (is(prev, "INTO")) {
            f.into = true;
            if (is_punct(t, '@')) f.into_variable = true;
        }
        if (is(prev, "FOR") && (is(t, "UPDATE") || is(t, "SHARE"))) f.locking_read = true;
        if (is(prev2, "IN") && is(prev, "SHARE") && is(t, "MODE")) f.locking_read = true;
        prev2 = prev;
        prev = t;
    }
    if (is(prev, "INTO")) f.into = true;
    f.executable_comment = lx.executable_comment();
    f.unterminated = lx.unterminated();
    f.backslash_in_literal = lx.backslash_in_literal();
    return f;
}

// The statement's own classification from its leading keywords.
class classifier {
public:
    classifier(std::string_view sql, bool backslash_escapes, int depth) noexcept
        : sql_(sql), lx_(sql, backslash_escapes), backslash_(backslash_escapes), depth_(depth) {}

    void run(statement_info& r, const text_facts& f) noexcept {
        token t = lx_.next();
        while (is_punct(t, '(')) t = lx_.next();  // (SELECT ...) UNION (SELECT ...)
        if (t.k == kind::end) return;             // empty: the server answers "Query was empty"
        r.keyword = t.text;
        if (t.k != kind::word) return opaque(r);

        if (is(t, "SELECT") || is(t, "VALUES") || is(t, "TABLE")) return select(r, f, false);
        if (is(t, "WITH")) return select(r, f, true);
        if (is(t, "SHOW")) return select(r, f, false);
        // EXPLAIN ANALYZE (MySQL) runs the statement it explains: a DML word makes it not read-only.
        if (is(t, "DESCRIBE") || is(t, "DESC") || is(t, "EXPLAIN")) return select(r, f, true);
        if (is(t, "INSERT") || is(t, "UPDATE") || is(t, "DELETE") || is(t, "REPLACE") || is(t, "SAVEPOINT") ||
            is(t, "KILL") || is(t, "HELP") || is(t, "CHECKSUM"))
            return;  // no effect on transaction or session state of its own
        if (is(t, "RELEASE")) return expect_word(r, "SAVEPOINT");
        if (is(t, "BEGIN")) return begin(r);
        if (is(t, "START")) return start(r);
        if (is(t, "COMMIT")) return commit_or_rollback(r, false);
        if (is(t, "ROLLBACK")) return commit_or_rollback(r, true);
        if (is(t, "XA")) return xa(r);
        if (is(t, "SET")) return set(r);
        if (is(t, "USE") || is(t, "PREPARE") || is(t, "DEALLOCATE")) {
            r.changes_session = true;
            return;
        }
        if (is(t, "CREATE")) return create(r);
        if (is(t, "ALTER")) return alter(r);
        if (is(t, "DROP")) return drop(r);
        if (is(t, "RENAME")) return word_in(r, lx_.next(), {"TABLE", "TABLES", "USER"});
        if (is(t, "TRUNCATE") || is(t, "GRANT") || is(t, "REVOKE") || is(t, "FLUSH") || is(t, "RESET") ||
            is(t, "SHUTDOWN") || is(t, "INSTALL") || is(t, "UNINSTALL")) {
            r.implicit_commit = true;
            if (is(t, "FLUSH") && flush_takes_lock()) r.changes_session = true;
            return;
        }
        if (is(t, "LOCK")) {
            token n = lx_.next();
            if (!is(n, "TABLE") && !is(n, "TABLES")) return opaque(r);
            r.implicit_commit = r.changes_session = true;
            return;
        }
        if (is(t, "UNLOCK")) {
            token n = lx_.next();
            if (!is(n, "TABLE") && !is(n, "TABLES")) return opaque(r);
            // Commits only if LOCK TABLES was in force (measured: not otherwise): ask the server.
            r.implicit_commit = r.changes_session = r.opaque = true;
            return;
        }
        if (is(t, "ANALYZE") || is(t, "CHECK") || is(t, "OPTIMIZE") || is(t, "REPAIR")) {
            token n = lx_.next();
            if (is(n, "NO_WRITE_TO_BINLOG") || is(n, "LOCAL")) n = lx_.next();
            return word_in(r, n, {"TABLE", "TABLES"});  // ANALYZE SELECT ... (runs it): opaque
        }
        if (is(t, "CACHE")) return word_in(r, lx_.next(), {"INDEX"});
        if (is(t, "LOAD")) {
            token n = lx_.next();
            if (is(n, "DATA") || is(n, "XML")) return;  // DML
            return word_in(r, n, {"INDEX"});
        }
        if (is(t, "STOP")) return word_in(r, lx_.next(), {"SLAVE", "REPLICA", "ALL"});
        if (is(t, "CHANGE")) return word_in(r, lx_.next(), {"MASTER"});
        if (is(t, "HANDLER")) {
            r.changes_session = true;
            return opaque(r);
        }
        // CALL, EXECUTE, DO, BACKUP, PURGE, SIGNAL, GET DIAGNOSTICS, BINLOG, ... and the unknown.
        return opaque(r);
    }

private:
    static void opaque(statement_info& r) noexcept { r.opaque = true; }

    // implicit_commit if `t` is one of `words`, else opaque.
    static void word_in(statement_info& r, const token& t, std::initializer_list<std::string_view> words) noexcept {
        for (auto w : words)
            if (is(t, w)) {
                r.implicit_commit = true;
                return;
            }
        opaque(r);
    }

    void expect_word(statement_info& r, std::string_view w) noexcept {
        if (!is(lx_.next(), w)) opaque(r);
    }

    // No more tokens except trailing `;` (several statements are caught by text_facts).
    bool at_end() noexcept {
        token t = lx_.next();
        return t.k == kind::end || is_punct(t, ';');
    }

    void select(statement_info& r, const text_facts& f, bool with) noexcept {
        r.read_only_select = !f.into && !f.locking_read && !f.assigns_user_variable && !f.lock_function &&
                             !f.sequence_write && !(with && f.dml_word);
    }

    void begin(statement_info& r) noexcept {
        token t = lx_.next();
        if (is(t, "WORK")) t = lx_.next();
        if (t.k != kind::end && !is_punct(t, ';')) return opaque(r);  // BEGIN NOT ATOMIC ... END
        r.begins_transaction = r.implicit_commit = true;
    }

    void start(statement_info& r) noexcept {
        token t = lx_.next();
        if (is(t, "TRANSACTION")) {
            r.begins_transaction = r.implicit_commit = true;
            return;
        }
        if (is(t, "SLAVE") || is(t, "REPLICA") || is(t, "ALL")) {
            r.implicit_commit = true;
            return;
        }
        opaque(r);
    }

    // COMMIT [WORK] [AND [NO] CHAIN] [[NO] RELEASE];  ROLLBACK [WORK] TO [SAVEPOINT] s is neither.
    void commit_or_rollback(statement_info& r, bool rollback) noexcept {
        token t = lx_.next();
        if (is(t, "WORK")) t = lx_.next();
        if (rollback && is(t, "TO")) return;  // to a savepoint: the transaction stays open
        bool chain = false;
        if (is(t, "AND")) {
            t = lx_.next();
            if (is(t, "NO")) t = lx_.next();
            else chain = true;
            if (!is(t, "CHAIN")) return opaque(r);
            t = lx_.next();
        }
        if (is(t, "NO")) t = lx_.next();
        if (is(t, "RELEASE")) t = lx_.next();
        if (t.k != kind::end && !is_punct(t, ';')) return opaque(r);
        if (chain) r.begins_transaction = true;  // a new transaction is open right away
        else r.ends_transaction = true;
    }

    void xa(statement_info& r) noexcept {
        token t = lx_.next();
        if (is(t, "START") || is(t, "BEGIN")) r.begins_transaction = true;
        else if (is(t, "COMMIT") || is(t, "ROLLBACK")) r.ends_transaction = true;
        else if (!is(t, "END") && !is(t, "PREPARE") && !is(t, "RECOVER")) opaque(r);
        // XA END / PREPARE: the XA transaction is still this session's until COMMIT/ROLLBACK.
    }

    // Skips `= user` after DEFINER: CURRENT_USER[()], name[@host], 'name'@'host'.
    void skip_user() noexcept {
        token t = lx_.next();
        if (is(t, "CURRENT_USER") || is(t, "CURRENT_ROLE")) {
            auto save = lx_;
            if (is_punct(lx_.next(), '(') && is_punct(lx_.next(), ')')) return;
            lx_ = save;
            return;
        }
        auto save = lx_;
        if (is_punct(lx_.next(), '@')) {
            lx_.next();
            return;
        }
        lx_ = save;
    }

    // Reads past CREATE/ALTER modifiers; returns the object-type word (or what stopped it).
    token object_type() noexcept {
        for (int guard = 0; guard < 32; ++guard) {
            token t = lx_.next();
            if (is(t, "OR") || is(t, "REPLACE") || is(t, "ONLINE") || is(t, "OFFLINE") || is(t, "IGNORE") ||
                is(t, "AGGREGATE"))
                continue;
            if (is(t, "DEFINER")) {  // DEFINER = user
                if (!is_punct(lx_.next(), '=')) return {};
                skip_user();
                continue;
            }
            if (is(t, "ALGORITHM")) {  // ALGORITHM = UNDEFINED | MERGE | TEMPTABLE
                if (!is_punct(lx_.next(), '=')) return {};
                lx_.next();
                continue;
            }
            if (is(t, "SQL")) {  // SQL SECURITY DEFINER | INVOKER
                if (!is(lx_.next(), "SECURITY")) return {};
                lx_.next();
                continue;
            }
            return t;
        }
        return {};
    }

    bool mentions_soname() noexcept {
        for (token t = lx_.next(); t.k != kind::end; t = lx_.next())
            if (is(t, "SONAME")) return true;
        return false;
    }

    static bool ddl_object(const token& t) noexcept {
        for (auto w : {"TABLE", "TABLES", "DATABASE", "SCHEMA", "INDEX", "UNIQUE", "FULLTEXT", "SPATIAL", "VIEW",
                       "PROCEDURE", "TRIGGER", "EVENT", "USER", "ROLE", "SERVER", "SEQUENCE"})
            if (is(t, w)) return true;
        return false;
    }

    void create(statement_info& r) noexcept {
        token t = object_type();
        if (is(t, "TEMPORARY")) {  // CREATE [OR REPLACE] TEMPORARY TABLE|SEQUENCE: no commit
            r.changes_session = true;
            return;
        }
        if (ddl_object(t)) {
            r.implicit_commit = true;
            return;
        }
        // CREATE FUNCTION ... SONAME is a UDF, which does not commit; a stored function does.
        if (is(t, "FUNCTION")) {
            if (mentions_soname()) return opaque(r);
            r.implicit_commit = true;
            return;
        }
        opaque(r);  // PACKAGE, TABLESPACE, LOGFILE GROUP, ...
    }

    void alter(statement_info& r) noexcept {
        token t = object_type();
        if (ddl_object(t) || is(t, "FUNCTION")) {
            r.implicit_commit = true;  // measured on 10.11: ALTER TABLE of a TEMPORARY table commits too
            return;
        }
        opaque(r);
    }

    void drop(statement_info& r) noexcept {
        token t = lx_.next();
        if (is(t, "TEMPORARY") || is(t, "PREPARE")) {
            r.changes_session = true;
            return;
        }
        if (ddl_object(t)) {
            r.implicit_commit = true;  // measured: DROP TABLE (no TEMPORARY) of a temporary table commits
            return;
        }
        opaque(r);  // DROP FUNCTION: a stored function commits, a UDF does not; the text cannot tell
    }

    bool flush_takes_lock() noexcept {
        token prev2, prev;
        for (token t = lx_.next(); t.k != kind::end; t = lx_.next()) {
            if ((is(prev2, "WITH") && is(prev, "READ") && is(t, "LOCK")) || (is(prev, "FOR") && is(t, "EXPORT")))
                return true;
            prev2 = prev;
            prev = t;
        }
        return false;
    }

    static bool is_scope(const token& t) noexcept {
        return is(t, "GLOBAL") || is(t, "SESSION") || is(t, "LOCAL") || is(t, "PERSIST") || is(t, "PERSIST_ONLY");
    }
    static bool global_scope(const token& t) noexcept {
        return is(t, "GLOBAL") || is(t, "PERSIST") || is(t, "PERSIST_ONLY");
    }
    static std::string_view unquote(const token& t) noexcept {
        if (t.k == kind::quoted_ident && t.text.size() >= 2) return t.text.substr(1, t.text.size() - 2);
        return t.text;
    }

    // The value of a boolean session variable: 0 / 1 / ON / OFF / TRUE / FALSE, bare or quoted.
    static autocommit_change boolean_value(const token& t) noexcept {
        std::string_view v = t.text;
        if (t.k == kind::string) {
            if (v.size() < 2) return autocommit_change::untouched;
            v = v.substr(1, v.size() - 2);
        } else if (t.k != kind::word) {
            return autocommit_change::untouched;
        }
        if (v == "0" || ieq(v, "OFF") || ieq(v, "FALSE")) return autocommit_change::off;
        if (v == "1" || ieq(v, "ON") || ieq(v, "TRUE")) return autocommit_change::on;
        return autocommit_change::untouched;
    }

    void set(statement_info& r) noexcept {
        auto save = lx_;
        token t = lx_.next();
        if (is(t, "STATEMENT")) return set_statement(r);
        token t2 = lx_.next();
        if (is(t, "PASSWORD")) {
            r.implicit_commit = true;
            return;
        }
        if (is(t, "DEFAULT") && is(t2, "ROLE")) {
            r.implicit_commit = true;  // measured on 10.11 (it writes the grant tables)
            return;
        }
        if (is(t, "TRANSACTION") || ((is(t, "SESSION") || is(t, "LOCAL")) && is(t2, "TRANSACTION")) ||
            is(t, "NAMES") || is(t, "CHARACTER") || is(t, "CHARSET") || is(t, "ROLE")) {
            r.changes_session = true;  // SET TRANSACTION: the next transaction's characteristics
            return;
        }
        if (global_scope(t) && is(t2, "TRANSACTION")) return;
        lx_ = save;
        set_list(r);
    }

    // SET STATEMENT var = value [, ...] FOR statement: the variables last for that statement only.
    void set_statement(statement_info& r) noexcept {
        int depth = 0;
        for (token t = lx_.next(); t.k != kind::end; t = lx_.next()) {
            if (is_punct(t, '(')) ++depth;
            else if (is_punct(t, ')')) --depth;
            else if (depth == 0 && is(t, "FOR")) {
                if (depth_ >= 4) return opaque(r);
                statement_info inner = describe(sql_.substr(lx_.offset()), backslash_, depth_ + 1);
                const auto kw = r.keyword;
                r = inner;
                r.keyword = kw;
                return;
            }
        }
        opaque(r);
    }

    // SET [scope] name = value [, [scope] name = value ...]
    void set_list(statement_info& r) noexcept {
        for (;;) {
            token t = lx_.next();
            bool global = false;
            bool user_variable = false;
            if (is_scope(t)) {
                global = global_scope(t);
                t = lx_.next();
            } else if (is_punct(t, '@')) {
                t = lx_.next();
                if (is_punct(t, '@')) {  // @@[global.|session.|local.]name
                    t = lx_.next();
                    auto save = lx_;
                    if (is_scope(t) && is_punct(lx_.next(), '.')) {
                        global = global_scope(t);
                        t = lx_.next();
                    } else {
                        lx_ = save;
                    }
                } else {
                    user_variable = true;  // @name, @'name', @`name`
                }
            }
            if (t.k != kind::word && t.k != kind::quoted_ident && !(user_variable && t.k == kind::string))
                return opaque(r);
            const std::string_view name = unquote(t);
            token eq = lx_.next();
            if (is_punct(eq, '.')) return opaque(r);  // structured variable (key caches): unusual
            if (!is_punct(eq, '=') && !(eq.k == kind::punct && eq.text == ":=")) return opaque(r);
            // The value: tokens up to a `,` at paren depth 0.
            token first = lx_.next(), t_end;
            int values = 0, depth = 0;
            for (token v = first; v.k != kind::end; v = lx_.next()) {
                if (is_punct(v, '(')) ++depth;
                else if (is_punct(v, ')')) --depth;
                else if (depth == 0 && (is_punct(v, ',') || is_punct(v, ';'))) {
                    t_end = v;
                    break;
                }
                ++values;
            }
            if (!global) r.changes_session = true;
            if (!global && !user_variable && ieq(name, "AUTOCOMMIT")) {
                const autocommit_change v = values == 1 ? boolean_value(first) : autocommit_change::untouched;
                if (v == autocommit_change::untouched) return opaque(r);  // DEFAULT, @v, an expression
                r.sets_autocommit = v;
                r.implicit_commit = v == autocommit_change::on;  // if it was 0: the caller knows
            }
            if (!is_punct(t_end, ',')) return;
        }
    }

public:
    static statement_info describe(std::string_view sql, bool backslash_escapes, int depth,
                                   bool* backslash_seen = nullptr) noexcept {
        statement_info r;
        const text_facts f = scan_text(sql, backslash_escapes);
        if (backslash_seen) *backslash_seen = f.backslash_in_literal;
        classifier c(sql, backslash_escapes, depth);
        c.run(r, f);
        if (f.assigns_user_variable || f.into_variable || f.lock_function) r.changes_session = true;
        if (f.several_statements || f.executable_comment || f.unterminated) {
            r.opaque = true;
            r.read_only_select = false;
        }
        if (r.opaque) r.read_only_select = false;
        return r;
    }

private:
    std::string_view sql_;
    lexer lx_;
    bool backslash_;
    int depth_;
};

}  // namespace sql_lex

// What one statement's text says about transaction and session state (see the top of this file).
inline statement_info describe_statement(std::string_view sql) noexcept {
    bool backslash = false;
    statement_info r = sql_lex::classifier::describe(sql, true, 0, &backslash);
    if (backslash) {
        // With NO_BACKSLASH_ESCAPES, 'a\' ends at the second quote: the rest may read differently.
        statement_info other = sql_lex::classifier::describe(sql, false, 0);
        if (other != r) {
            r.opaque = true;
            r.read_only_select = false;
        }
    }
    return r;
}

// What lifeline's own statement path needs to know about one statement (one lexer pass).
struct statement_effects {
    bool acknowledges_loss = false;  // BEGIN / START TRANSACTION / ROLLBACK (not TO SAVEPOINT): the
                                     // caller starts over, acknowledging an earlier transaction_lost
    bool changes_session = false;    // the session may now differ from the registered one
    bool may_release_locks = false;  // RELEASE_LOCK() / RELEASE_ALL_LOCKS(): lifeline's session lock may go
};

inline bool contains_keyword_ci(std::string_view sql, std::string_view upper) noexcept {
    for (std::size_t i = 0; i + upper.size() <= sql.size(); ++i) {
        std::size_t k = 0;
        while (k < upper.size() && std::toupper(static_cast<unsigned char>(sql[i + k])) == upper[k]) ++k;
        if (k == upper.size()) return true;
    }
    return false;
}

// The hot path's shortcut: a plain SELECT / INSERT / UPDATE / DELETE / REPLACE whose text has no
// '@' (variables), no "LOCK" (GET_LOCK, RELEASE_LOCK, LOCK TABLES), no comment, no ';' cannot touch
// the session or the transaction state; one byte scan decides, the lexer is not needed.
inline bool plain_dml(std::string_view sql) noexcept {
    std::size_t i = 0;
    while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\n' || sql[i] == '\t' || sql[i] == '\r')) ++i;
    if (i >= sql.size()) return false;
    std::string_view word;
    switch (sql[i] | 0x20) {
    case 's': word = "SELECT"; break;
    case 'i': word = "INSERT"; break;
    case 'u': word = "UPDATE"; break;
    case 'd': word = "DELETE"; break;
    case 'r': word = "REPLACE"; break;
    default: return false;
    }
    const std::size_t end = i + word.size();
    if (end >= sql.size() || !sql_lex::ieq(sql.substr(i, word.size()), word)) return false;
    const char after = sql[end];
    if (!(after == ' ' || after == '\n' || after == '\t' || after == '\r')) return false;
    const char* p = sql.data() + end;
    const char* const stop = sql.data() + sql.size();
    for (; p < stop; ++p) {
        switch (*p) {
        case '@': case '/': case '#': case ';': return false;
        case '-':
            if (p + 1 < stop && p[1] == '-') return false;
            break;
        case 'L': case 'l':
            if (p + 3 < stop && (p[1] | 0x20) == 'o' && (p[2] | 0x20) == 'c' && (p[3] | 0x20) == 'k') return false;
            break;
        default: break;
        }
    }
    return true;
}

inline statement_effects effects_of(std::string_view sql) noexcept {
    if (plain_dml(sql)) return {};
    const statement_info info = describe_statement(sql);
    statement_effects e;
    e.acknowledges_loss = info.begins_transaction || (info.ends_transaction && sql_lex::ieq(info.keyword, "ROLLBACK"));
    e.changes_session = info.changes_session || info.opaque || info.sets_autocommit != autocommit_change::untouched;
    e.may_release_locks = (info.changes_session || info.opaque) && contains_keyword_ci(sql, "RELEASE_");
    return e;
}

// effects_of() reads the whole text, and a service sends the same statement again and again: one
// entry, matched on the exact bytes (so the answer is always effects_of's own), texts up to 512 bytes.
class effects_cache {
public:
    statement_effects operator()(std::string_view sql) {
        if (valid_ && sql == text_) return fx_;
        const statement_effects fx = effects_of(sql);
        valid_ = false;
        if (sql.size() <= max_text) {
            text_.assign(sql.data(), sql.size());
            fx_ = fx;
            valid_ = true;
        }
        return fx;
    }

private:
    static constexpr std::size_t max_text = 512;
    std::string text_;
    statement_effects fx_{};
    bool valid_ = false;
};

}  // namespace lifeline::detail

#endif  // LIFELINE_DETAIL_SQL_TEXT_HPP

