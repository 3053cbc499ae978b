// lifeline — keep C++ services talking to MySQL/MariaDB through error 2013 and its family.
//
// The umbrella header: the core, which needs no driver. Driver adapters live in their own
// headers (lifeline/driver/capi.hpp, lifeline/driver/jdbc.hpp) and the spdlog observer in
// lifeline/spdlog_observer.hpp, so including this header pulls in no driver at all.
#ifndef LIFELINE_HPP
#define LIFELINE_HPP

#include <lifeline/phase.hpp>

#endif  // LIFELINE_HPP
