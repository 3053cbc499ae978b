// lifeline — what a failure means: is the connection still usable, did the statement run, and
// what is safe to do next.
//
// `classify()` is pure, constexpr and table-driven (lifeline/detail/error_table.hpp). It needs no
// driver: it reads the error number, the SQLSTATE, the phase of the round trip and whether a
// transaction was open. The same number means different things in different phases (a 2013 while
// connecting says nothing ran; a 2013 while waiting for a result says the statement may or may
// not have run), so the phase and the transaction adjust the table's row. Where the server's
// flavour changes a number's meaning (MariaDB's 4031, a Galera node's 1047), `failure::flavor`
// and `failure::galera` pick the flavour's row (detail::flavor_rows); unknown keeps the
// flavour-neutral row.
#ifndef LIFELINE_CLASSIFICATION_HPP
#define LIFELINE_CLASSIFICATION_HPP

#include <lifeline/detail/classification_types.hpp>
#include <lifeline/detail/error_table.hpp>
#include <lifeline/phase.hpp>


namespace lifeline {

// Pure and allocation-free; usable in constant expressions.
constexpr classification classify(const failure& f) noexcept {
    // A COMMIT always ends a transaction, whatever the caller's flag says.
    const bool in_transaction = f.in_transaction || f.where == phase::commit;
    return detail::apply_rule(detail::row_for(f.code, f.sqlstate, f.flavor, f.galera), f.where, in_transaction);
}

}  // namespace lifeline

#endif  // LIFELINE_CLASSIFICATION_HPP
