// Optional C libraries (MPI, NCCL, cuBLASLt) are loaded at run time (dlopen) into tables of function
// pointers, so that the library builds and loads without them; whatever a candidate lacks is named.
#pragma once

#include <dlfcn.h>

#include <string>

namespace xdit {

// Binds `name` from `library` into `slot`; a missing symbol is appended to `missing` ("a, b, ...").
template <class F>
void bind_symbol(void* library, const char* name, F& slot, std::string& missing) {
    slot = reinterpret_cast<F>(dlsym(library, name));
    if (slot == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
}

}  // namespace xdit
