// Errors inside the library are C++ exceptions carrying an xdit_status; the C entry points turn
// them into a status and a thread-local message (see api_guard.h). Nothing in the library aborts.
#pragma once

#include <stdexcept>
#include <string>

#include "xdit/xdit.h"

namespace xdit {

class Error : public std::runtime_error {
public:
    Error(xdit_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    xdit_status status() const noexcept { return status_; }

private:
    xdit_status status_;
};

[[noreturn]] inline void fail(xdit_status status, const std::string& message) { throw Error(status, message); }
[[noreturn]] inline void invalid(const std::string& message) { fail(XDIT_STATUS_INVALID_ARGUMENT, message); }

// Stores the message returned by xdit_last_error() on this thread.
void set_last_error(const std::string& message) noexcept;

}  // namespace xdit
