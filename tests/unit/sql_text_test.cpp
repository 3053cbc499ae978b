// describe_statement(): what one statement's text says about transaction and session state.
// The transaction cases were checked against MariaDB 10.11 (@@in_transaction after each).
#include <lifeline/detail/sql_text.hpp>

#include <catch2/catch.hpp>

#include <string>

using lifeline::detail::autocommit_change;
using lifeline::detail::describe_statement;
using lifeline::detail::statement_info;

namespace {

// One expected answer, written as the flags that must be set (everything else must be clear).
struct expect {
    bool begins = false;
    bool ends = false;
    autocommit_change autocommit = autocommit_change::untouched;
    bool implicit = false;
    bool session = false;
    bool read_only = false;
    bool opaque = false;
};

void check(const std::string& sql, const expect& e) {
    const statement_info i = describe_statement(sql);
    INFO("sql: " << sql);
    CHECK(i.begins_transaction == e.begins);
    CHECK(i.ends_transaction == e.ends);
    CHECK(i.sets_autocommit == e.autocommit);
    CHECK(i.implicit_commit == e.implicit);
    CHECK(i.changes_session == e.session);
    CHECK(i.read_only_select == e.read_only);
    CHECK(i.opaque == e.opaque);
}

expect begins_with_commit() {
    expect e;
    e.begins = e.implicit = true;
    return e;
}
expect ends() {
    expect e;
    e.ends = true;
    return e;
}
expect begins() {
    expect e;
    e.begins = true;
    return e;
}
expect neutral() { return {}; }
expect read_only() {
    expect e;
    e.read_only = true;
    return e;
}
expect opaque() {
    expect e;
    e.opaque = true;
    return e;
}
expect implicit() {
    expect e;
    e.implicit = true;
    return e;
}
expect session() {
    expect e;
    e.session = true;
    return e;
}
expect autocommit_off() {
    expect e;
    e.autocommit = autocommit_change::off;
    e.session = true;
    return e;
}
expect autocommit_on() {
    expect e;
    e.autocommit = autocommit_change::on;
    e.session = true;
    e.implicit = true;  // commits if it was 0
    return e;
}

}  // namespace

TEST_CASE("sql_text: the reviewer's cases", "[sql_text][safety]") {
    check("ROLLBACK TO SAVEPOINT s", neutral());  // not a ROLLBACK: the transaction stays open
    check("rollback work to s", neutral());
    check("ROLLBACK TO s1", neutral());
    check("SET autocommit=0", autocommit_off());
    check("XA START 'x'", begins());
    check("/* c */ BEGIN", begins_with_commit());
    check("-- c\nBEGIN", begins_with_commit());
    check("# c\nSTART TRANSACTION", begins_with_commit());
    check("SET SESSION autocommit = OFF", autocommit_off());
    check("SET @@session.autocommit = OFF", autocommit_off());
    check("SET a=1, autocommit=0", autocommit_off());
}

TEST_CASE("sql_text: transaction boundaries", "[sql_text][safety]") {
    check("BEGIN", begins_with_commit());
    check("begin work", begins_with_commit());
    check("  Begin ;", begins_with_commit());
    check("START TRANSACTION", begins_with_commit());
    check("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", begins_with_commit());
    check("start transaction read write", begins_with_commit());
    check("BEGIN NOT ATOMIC SELECT 1; END", opaque());  // compound statement
    check("COMMIT", ends());
    check("commit work", ends());
    check("COMMIT AND NO CHAIN", ends());
    check("COMMIT WORK AND NO CHAIN NO RELEASE", ends());
    check("COMMIT RELEASE", ends());
    check("COMMIT AND CHAIN", begins());  // a new transaction is open right away
    check("ROLLBACK", ends());
    check("ROLLBACK WORK", ends());
    check("ROLLBACK AND CHAIN", begins());
    check("ROLLBACK WORK TO SAVEPOINT s", neutral());
    check("SAVEPOINT s", neutral());
    check("RELEASE SAVEPOINT s", neutral());
    check("COMMIT banana", opaque());
    check("XA BEGIN 'x'", begins());
    check("xa start 'x', 'b', 1", begins());
    check("XA END 'x'", neutral());      // measured: @@in_transaction stays 1
    check("XA PREPARE 'x'", neutral());  // ... until XA COMMIT / ROLLBACK
    check("XA COMMIT 'x'", ends());
    check("XA COMMIT 'x' ONE PHASE", ends());
    check("XA ROLLBACK 'x'", ends());
    check("XA RECOVER", neutral());
}

TEST_CASE("sql_text: autocommit", "[sql_text][safety]") {
    check("SET autocommit = 1", autocommit_on());
    check("set AUTOCOMMIT=on", autocommit_on());
    check("SET autocommit = TRUE", autocommit_on());
    check("SET autocommit = 'OFF'", autocommit_off());
    check("SET LOCAL autocommit := 0", autocommit_off());
    check("SET @@autocommit=0", autocommit_off());
    check("SET @@local.autocommit=false", autocommit_off());
    check("SET `autocommit` = 0", autocommit_off());
    check("SET autocommit=0, autocommit=1", autocommit_on());  // the last one wins
    check("SET sql_mode = 'ANSI', @x = (SELECT 1), autocommit = 0", autocommit_off());
    check("SET autocommit = 0;", autocommit_off());
    // Values it cannot know: ask the server.
    expect unknown_value = opaque();
    unknown_value.session = true;
    check("SET autocommit = DEFAULT", unknown_value);
    check("SET autocommit = @saved", unknown_value);
    check("SET autocommit = 1 - 1", unknown_value);
    // Global scope does not change this session.
    check("SET GLOBAL autocommit = 0", neutral());
    check("SET @@global.autocommit = 0", neutral());
    // A user variable of that name is just a user variable.
    check("SET @autocommit = 0", session());
}

TEST_CASE("sql_text: implicit commits (MariaDB's list)", "[sql_text][safety]") {
    for (const char* sql :
         {"CREATE TABLE t (a INT)", "create table if not exists t (a int)", "CREATE OR REPLACE TABLE t (a INT)",
          "CREATE TABLE t2 AS SELECT * FROM t", "ALTER TABLE t ADD COLUMN b INT", "ALTER ONLINE TABLE t ADD b INT",
          "DROP TABLE t", "DROP TABLE IF EXISTS t1, t2", "RENAME TABLE a TO b", "TRUNCATE TABLE t", "TRUNCATE t",
          "CREATE INDEX i ON t(a)", "CREATE UNIQUE INDEX i ON t(a)", "DROP INDEX i ON t", "CREATE DATABASE d",
          "DROP SCHEMA d", "ALTER DATABASE d CHARACTER SET utf8mb4", "CREATE VIEW v AS SELECT 1",
          "CREATE DEFINER = 'app'@'%' SQL SECURITY INVOKER VIEW v AS SELECT 1",
          "CREATE ALGORITHM=MERGE DEFINER=CURRENT_USER VIEW v AS SELECT 1", "ALTER VIEW v AS SELECT 2",
          "DROP VIEW v", "CREATE PROCEDURE p() SELECT 1", "CREATE DEFINER=root@localhost PROCEDURE p() BEGIN END",
          "DROP PROCEDURE p", "CREATE FUNCTION f() RETURNS INT RETURN 1", "ALTER FUNCTION f COMMENT 'x'",
          "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", "DROP TRIGGER tr",
          "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1", "DROP EVENT e", "CREATE USER u", "DROP USER u",
          "RENAME USER a TO b", "ALTER USER u PASSWORD EXPIRE", "CREATE ROLE r", "DROP ROLE r",
          "CREATE SEQUENCE s", "ALTER SEQUENCE s RESTART", "DROP SEQUENCE s", "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'h')",
          "GRANT SELECT ON *.* TO u", "REVOKE SELECT ON *.* FROM u", "SET PASSWORD = PASSWORD('x')",
          "SET PASSWORD FOR u = 'x'", "SET DEFAULT ROLE NONE", "ANALYZE TABLE t", "ANALYZE NO_WRITE_TO_BINLOG TABLE t",
          "CHECK TABLE t", "OPTIMIZE TABLE t", "OPTIMIZE LOCAL TABLE t", "REPAIR TABLE t", "CACHE INDEX t IN c",
          "LOAD INDEX INTO CACHE t", "FLUSH STATUS", "FLUSH PRIVILEGES", "RESET QUERY CACHE", "SHUTDOWN",
          "START SLAVE", "STOP SLAVE", "CHANGE MASTER TO MASTER_HOST='h'", "INSTALL SONAME 'ha_blackhole'",
          "UNINSTALL PLUGIN x"})
        check(sql, implicit());
    // Not on the list: temporary tables, DML, reads.
    check("CREATE TEMPORARY TABLE t (a INT)", session());
    check("CREATE OR REPLACE TEMPORARY TABLE t (a INT)", session());
    check("DROP TEMPORARY TABLE t", session());
    check("DROP TEMPORARY TABLE IF EXISTS t", session());
    check("INSERT INTO t VALUES (1)", neutral());
    check("REPLACE INTO t VALUES (1)", neutral());
    check("UPDATE t SET a = 1", neutral());
    check("DELETE FROM t", neutral());
    check("LOAD DATA INFILE 'f' INTO TABLE t", neutral());
    check("CHECKSUM TABLE t", neutral());
    // Lock statements commit and leave session state.
    expect lock = implicit();
    lock.session = true;
    check("LOCK TABLES t WRITE", lock);
    check("lock table t read", lock);
    lock.opaque = true;  // commits only if LOCK TABLES was in force: ask the server
    check("UNLOCK TABLES", lock);
    expect flush_lock = implicit();
    flush_lock.session = true;
    check("FLUSH TABLES WITH READ LOCK", flush_lock);
    check("FLUSH TABLES t FOR EXPORT", flush_lock);
}

TEST_CASE("sql_text: session state", "[sql_text][safety]") {
    check("SET NAMES utf8mb4", session());
    check("SET CHARACTER SET utf8", session());
    check("SET @x = 1", session());
    check("SET @'x y' = 1", session());
    check("SET sql_mode = 'ANSI'", session());
    check("SET SESSION wait_timeout = 5", session());
    check("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", session());  // the next transaction's
    check("SET SESSION TRANSACTION READ ONLY", session());
    check("SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED", neutral());
    check("SET GLOBAL max_connections = 10", neutral());
    check("SET ROLE r", session());
    check("USE lifeline_test", session());
    check("PREPARE s FROM 'SELECT 1'", session());
    check("DEALLOCATE PREPARE s", session());
    check("DROP PREPARE s", session());
    check("SELECT GET_LOCK('x', 1)", session());  // not read-only either
    check("SELECT get_lock ('x', 1)", session());
    check("DO RELEASE_LOCK('x')", [] {
        expect e = opaque();
        e.session = true;
        return e;
    }());
    check("SELECT @a := 1", session());
    check("SELECT 1 INTO @a", session());
    check("UPDATE t SET a = (@n := @n + 1)", session());
    check("INSERT INTO t SELECT GET_LOCK('x', 0)", session());
    // In literals and quoted identifiers it is text, not a call.
    check("SELECT 'GET_LOCK(1)'", read_only());
    check("SELECT `get_lock` FROM t", read_only());
    check("SELECT \"@a := 1\"", read_only());
}

TEST_CASE("sql_text: read-only SELECTs", "[sql_text][safety]") {
    check("SELECT 1", read_only());
    check("select * from t where a = 1", read_only());
    check("  /* hint */ SELECT 1", read_only());
    check("SELECT /*+ MAX_EXECUTION_TIME(1) */ 1", read_only());
    check("(SELECT 1) UNION (SELECT 2)", read_only());
    check("WITH c AS (SELECT 1) SELECT * FROM c", read_only());
    check("SHOW TABLES", read_only());
    check("DESCRIBE t", read_only());
    check("DESC t", read_only());
    check("EXPLAIN SELECT 1", read_only());
    check("VALUES (1), (2)", read_only());
    check("SELECT 1;", read_only());
    check("SELECT 1; -- done", read_only());
    check("SELECT 'a;b', `c;d`, \"e;f\" FROM t", read_only());
    check("SELECT 1 -- ; DROP TABLE t", read_only());
    check("SELECT 1 # ; DROP TABLE t", read_only());
    check("SELECT 1 /* ; DROP TABLE t */", read_only());
    check("SELECT 'it''s'", read_only());
    check("SELECT 1--1", read_only());  // "--" without a space is minus minus, not a comment
    // Not read-only.
    check("SELECT * FROM t FOR UPDATE", neutral());
    check("SELECT * FROM t WHERE a = 1 FOR UPDATE NOWAIT", neutral());
    check("SELECT * FROM t LOCK IN SHARE MODE", neutral());
    check("SELECT * FROM t FOR SHARE", neutral());
    check("SELECT * FROM t INTO OUTFILE '/tmp/x'", neutral());
    check("SELECT NEXTVAL(s)", neutral());
    check("SELECT NEXT VALUE FOR s", neutral());
    check("SELECT SETVAL(s, 10)", neutral());
    check("WITH c AS (SELECT 1) UPDATE t SET a = 1", neutral());
    check("EXPLAIN ANALYZE DELETE FROM t", neutral());  // MySQL runs it
}

TEST_CASE("sql_text: opaque statements", "[sql_text][safety]") {
    for (const char* sql :
         {"CALL p()", "EXECUTE s", "EXECUTE s USING @a", "DO SLEEP(1)", "HANDLER t READ FIRST",
          "/*!40101 SET autocommit=0 */", "SELECT 1 /*!, GET_LOCK('x', 1) */", "/*M!100101 BEGIN */",
          "SELECT 1; SELECT 2", "INSERT INTO t VALUES (1); COMMIT", "BEGIN; INSERT INTO t VALUES (1)",
          "SELECT 'unterminated", "SELECT 1 /* unterminated", "FROBNICATE", "PURGE BINARY LOGS BEFORE NOW()",
          "ANALYZE SELECT 1", "BACKUP STAGE START", "DROP FUNCTION f", "CREATE FUNCTION f RETURNS INT SONAME 'u.so'",
          "SIGNAL SQLSTATE '45000'", "GET DIAGNOSTICS @n = NUMBER", "42", "'text'"}) {
        INFO(sql);
        CHECK(describe_statement(sql).opaque);
        CHECK_FALSE(describe_statement(sql).read_only_select);
    }
    check("", neutral());
    check("   /* only a comment */  ", neutral());
}

TEST_CASE("sql_text: SET STATEMENT ... FOR describes the inner statement", "[sql_text][safety]") {
    check("SET STATEMENT max_statement_time = 1 FOR SELECT 1", read_only());
    check("SET STATEMENT max_statement_time=10 FOR COMMIT", ends());  // measured: it commits
    check("SET STATEMENT sql_mode = 'ANSI', lock_wait_timeout = (1) FOR UPDATE t SET a = 1", neutral());
    check("SET STATEMENT x = 1", opaque());  // no FOR: not a statement it knows
}

TEST_CASE("sql_text: backslashes are read both ways (NO_BACKSLASH_ESCAPES)", "[sql_text][safety]") {
    // With backslash escapes 'a\' ; SELECT 2' is one literal; without them the literal ends at
    // the backslash and a second statement follows. Both readings are possible: opaque.
    CHECK(describe_statement("SELECT 'a\\'; SELECT 2; '").opaque);
    // A backslash that changes nothing keeps the statement transparent.
    check("SELECT 'a\\nb'", read_only());
    check("INSERT INTO t VALUES ('C:\\\\dir')", neutral());
}

TEST_CASE("sql_text: keyword is reported as written", "[sql_text][safety]") {
    CHECK(describe_statement("  /* x */ bEgIn").keyword == "bEgIn");
    CHECK(describe_statement("(SELECT 1)").keyword == "SELECT");
    CHECK(describe_statement("").keyword.empty());
}

TEST_CASE("sql_text: the hot path's shortcut never disagrees with the lexer", "[sql_text][safety]") {
    using namespace lifeline::detail;
    const char* statements[] = {
        "SELECT 1", "select name from users where id = 7", "INSERT INTO t VALUES (1)", "UPDATE t SET v = v + 1",
        "DELETE FROM t WHERE id = 3", "REPLACE INTO t VALUES (1)", "SELECT @x := 1", "SELECT GET_LOCK('a', 0)",
        "SELECT RELEASE_ALL_LOCKS()", "SELECT 1; SELECT 2", "SELECT /*!50000 1 */", "SELECT 1 -- c", "SELECT 1 # c",
        "INSERT INTO t SELECT * FROM u FOR UPDATE", "SELECT * FROM t LOCK IN SHARE MODE", "SELECT 1 INTO @v",
        "  SELECT\t1", "SELECTX 1", "SELECT", "UPDATE t SET a = 'x@y'", "INSERT INTO t VALUES ('a;b')",
        "SELECT * FROM locks", "DELETE FROM blocklist", "SELECT 'lock'", "SELECT 1 FROM t WHERE a - 1 > 0"};
    for (const char* sql : statements) {
        INFO(sql);
        if (plain_dml(sql)) {
            const statement_info full = describe_statement(sql);
            CHECK_FALSE(full.changes_session);
            CHECK_FALSE(full.opaque);
            CHECK_FALSE(full.affects_transaction());
        }
    }
    CHECK(plain_dml("SELECT 1"));
    CHECK(plain_dml("INSERT INTO t VALUES (1)"));
    CHECK_FALSE(plain_dml("SELECT @x := 1"));
    CHECK_FALSE(plain_dml("SELECT GET_LOCK('a', 0)"));
    CHECK_FALSE(plain_dml("SELECT /*!50000 1 */"));
    CHECK_FALSE(plain_dml("SET autocommit = 0"));
}

TEST_CASE("sql_text: the effects cache answers what effects_of answers, statement after statement", "[sql_text][safety]") {
    using lifeline::detail::effects_cache;
    using lifeline::detail::effects_of;
    using lifeline::detail::statement_effects;
    auto same = [](statement_effects a, statement_effects b) {
        return a.acknowledges_loss == b.acknowledges_loss && a.changes_session == b.changes_session &&
               a.may_release_locks == b.may_release_locks;
    };
    const std::string long_set = "SET @v = '" + std::string(600, 'x') + "'";  // beyond the cached size
    const std::string long_select = "SELECT '" + std::string(600, 'x') + "'";
    // Same lengths, different effects: ROLLBACK / SELECT 1 ... and texts that differ in one byte.
    const std::string texts[] = {"SELECT 1", "ROLLBACK", "SELECT 1", "SET @a=1", "SET @a=1", "SELECT 2",
                                 "SELECT RELEASE_LOCK('x')", "SELECT RELEASE_LOCK('y')", "SELECT 1", long_set,
                                 long_select, long_set, "BEGIN", "BEGIN", "USE db", "SELECT 1", long_select, "USE db"};
    effects_cache cache;
    int differing = 0;
    for (const auto& t : texts) {
        INFO(t.substr(0, 40));
        CHECK(same(cache(t), effects_of(t)));
        differing += !same(effects_of(t), effects_of("SELECT 1"));
    }
    CHECK(differing >= 8);  // the sequence switches between statements whose effects differ
}
