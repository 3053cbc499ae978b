// The retry decision over every row of the classification table, every phase, every
// declaration and transaction state: nothing unsafe is ever re-sent.
#include <lifeline/policy.hpp>

#include <catch2/catch.hpp>

using namespace lifeline;

TEST_CASE("decide(): an unknown outcome is re-sent only when idempotent or after verification", "[unit][retry]") {
    const auto table = detail::error_table();
    int checked = 0;
    for (std::size_t i = 0; i < table.size(); ++i) {
        for (phase p : {phase::connect, phase::send, phase::read_result, phase::fetch, phase::commit}) {
            for (bool in_txn : {false, true}) {
                failure f{table[i].code, table[i].sqlstate, p, in_txn};
                classification c = classify(f);
                for (bool idem : {false, true}) {
                    for (bool verify : {false, true}) {
                        decision d = decide(c, decision_input{idem, verify, in_txn});
                        INFO("code " << table[i].code << " phase " << to_string(p) << " txn " << in_txn
                                     << " idempotent " << idem << " verify " << verify);
                        ++checked;
                        if (in_txn) CHECK(d.step == next_step::fail);
                        if (c.statement == outcome::unknown && !idem)
                            CHECK(d.step != next_step::retry);
                        if (c.statement == outcome::failed) CHECK(d.step == next_step::fail);
                        // Interrupted (1927: connection killed) re-runs only idempotent work.
                        if (c.statement == outcome::interrupted && d.step != next_step::fail)
                            CHECK((idem && c.action == remedy::retry_if_idempotent));
                        if (d.step == next_step::verify_then_retry) CHECK(verify);
                    }
                }
            }
        }
    }
    CHECK(checked > 1000);
}

TEST_CASE("decide(): what certainly did not run is re-sent without any declaration", "[unit][retry]") {
    classification gone{connection_state::broken, outcome::not_executed, remedy::reconnect_and_retry, "gone"};
    auto d = decide(gone, decision_input{false, false, false});
    CHECK(d.step == next_step::retry);
    CHECK_FALSE(d.backoff);
    auto busy = decide({connection_state::broken, outcome::not_executed, remedy::retry_after_backoff, "busy"},
                       decision_input{});
    CHECK(busy.step == next_step::retry);
    CHECK(busy.backoff);
}

TEST_CASE("decide(): lost inside a transaction says the transaction is lost", "[unit][retry]") {
    classification lost{connection_state::broken, outcome::transaction_rolled_back, remedy::retry_transaction, "x"};
    auto d = decide(lost, decision_input{true, true, true});
    CHECK(d.step == next_step::fail);
    CHECK(d.error == errc::transaction_lost);
}
