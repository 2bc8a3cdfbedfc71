// The one place where exceptions stop: every extern "C" function runs its body through guard().
#pragma once

#include <new>
#include <utility>

#include "error.h"

namespace xdit {

template <class Body>
xdit_status guard(const char* function, Body&& body) noexcept {
    try {
        std::forward<Body>(body)();
        return XDIT_STATUS_OK;
    } catch (const Error& e) {
        set_last_error(std::string(function) + ": " + e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        set_last_error(std::string(function) + ": out of host memory");
        return XDIT_STATUS_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        set_last_error(std::string(function) + ": internal error: " + e.what());
        return XDIT_STATUS_INTERNAL;
    } catch (...) {
        set_last_error(std::string(function) + ": internal error: unknown exception");
        return XDIT_STATUS_INTERNAL;
    }
}

template <class T>
T& require(T* pointer, const char* what) {
    if (pointer == nullptr) invalid(std::string(what) + " is null");
    return *pointer;
}

}  // namespace xdit
