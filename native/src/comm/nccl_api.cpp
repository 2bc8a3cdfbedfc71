#include "nccl_api.h"

#include <cstdlib>

#include "../core/dynamic_library.h"
#include "../core/error.h"

namespace xdit::nccl {

namespace {

Api load(std::string& error) {
    std::string tried;
    const char* candidates[] = {std::getenv("XDIT_NCCL_LIB"), "libnccl.so.2", "libnccl.so"};
    for (const char* name : candidates) {
        if (name == nullptr || *name == '\0') continue;
        void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            tried += std::string("\n  ") + name + ": " + dlerror();
            continue;
        }
        Api a{};
        std::string missing;
        bind_symbol(handle, "ncclGetVersion", a.GetVersion, missing);
        bind_symbol(handle, "ncclGetUniqueId", a.GetUniqueId, missing);
        bind_symbol(handle, "ncclCommInitRank", a.CommInitRank, missing);
        bind_symbol(handle, "ncclCommDestroy", a.CommDestroy, missing);
        bind_symbol(handle, "ncclCommAbort", a.CommAbort, missing);
        bind_symbol(handle, "ncclCommGetAsyncError", a.CommGetAsyncError, missing);
        bind_symbol(handle, "ncclCommUserRank", a.CommUserRank, missing);
        bind_symbol(handle, "ncclCommCount", a.CommCount, missing);
        bind_symbol(handle, "ncclGetErrorString", a.GetErrorString, missing);
        bind_symbol(handle, "ncclAllGather", a.AllGather, missing);
        bind_symbol(handle, "ncclBroadcast", a.Broadcast, missing);
        bind_symbol(handle, "ncclSend", a.Send, missing);
        bind_symbol(handle, "ncclRecv", a.Recv, missing);
        bind_symbol(handle, "ncclGroupStart", a.GroupStart, missing);
        bind_symbol(handle, "ncclGroupEnd", a.GroupEnd, missing);
        if (!missing.empty()) {
            tried += std::string("\n  ") + name + ": lacks " + missing + " (NCCL 2.7 or newer is needed)";
            dlclose(handle);
            continue;
        }
        std::string optional;
        bind_symbol(handle, "ncclCommSplit", a.CommSplit, optional);
        bind_symbol(handle, "ncclGetLastError", a.GetLastError, optional);
        a.path = name;
        return a;  // stays loaded for the life of the process
    }
    error = "NCCL could not be loaded (libnccl.so.2; on GPU machines it often ships inside PyTorch's packages, "
            "site-packages/nvidia/nccl/lib — set XDIT_NCCL_LIB to its path); tried:" + tried;
    return Api{};
}

}  // namespace

const Api& api() {
    static std::string error;
    static const Api loaded = load(error);
    if (loaded.GetUniqueId == nullptr) fail(XDIT_STATUS_UNAVAILABLE, error);
    return loaded;
}

}  // namespace xdit::nccl
