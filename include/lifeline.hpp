// lifeline — keep C++ services talking to MySQL/MariaDB through error 2013 and its family.
//
// The umbrella header: the core, which needs no driver. Driver adapters live in their own
// headers (lifeline/driver/capi.hpp, lifeline/driver/jdbc.hpp) and the spdlog observer in
// lifeline/spdlog_observer.hpp, so including this header pulls in no driver at all.
#ifndef LIFELINE_HPP
#define LIFELINE_HPP

#include <lifeline/adopt.hpp>
#include <lifeline/backoff.hpp>
#include <lifeline/bulk_insert.hpp>
#include <lifeline/circuit_breaker.hpp>
#include <lifeline/classification.hpp>
#include <lifeline/clock.hpp>
#include <lifeline/cluster.hpp>
#include <lifeline/cluster_connection.hpp>
#include <lifeline/connection.hpp>
#include <lifeline/deadline.hpp>
#include <lifeline/declaration.hpp>
#include <lifeline/driver_traits.hpp>
#include <lifeline/error.hpp>
#include <lifeline/health.hpp>
#include <lifeline/observer.hpp>
#include <lifeline/options.hpp>
#include <lifeline/phase.hpp>
#include <lifeline/policy.hpp>
#include <lifeline/result.hpp>
#include <lifeline/retry_budget.hpp>
#include <lifeline/server_info.hpp>
#include <lifeline/session.hpp>

#endif  // LIFELINE_HPP
