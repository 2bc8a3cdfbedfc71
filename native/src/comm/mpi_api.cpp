#include "mpi_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "../core/dynamic_library.h"
#include "../core/error.h"

namespace xdit::mpi {

namespace {

Api load(std::string& error) {
    Api a{};
    std::string tried;
    const char* candidates[] = {std::getenv("XDIT_MPI_LIB"), "libmpi.so.40", "libmpi.so"};
    for (const char* name : candidates) {
        if (name == nullptr || *name == '\0') continue;
        // RTLD_GLOBAL: Open MPI loads its own components (mca_*.so) that resolve symbols of libmpi.
        void* handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
        if (handle == nullptr) {
            tried += std::string("\n  ") + name + ": " + dlerror();
            continue;
        }
        std::string missing;
        bind_symbol(handle, "MPI_Initialized", a.Initialized, missing);
        bind_symbol(handle, "MPI_Finalized", a.Finalized, missing);
        bind_symbol(handle, "MPI_Init_thread", a.Init_thread, missing);
        bind_symbol(handle, "MPI_Finalize", a.Finalize, missing);
        bind_symbol(handle, "MPI_Comm_rank", a.Comm_rank, missing);
        bind_symbol(handle, "MPI_Comm_size", a.Comm_size, missing);
        bind_symbol(handle, "MPI_Comm_dup", a.Comm_dup, missing);
        bind_symbol(handle, "MPI_Comm_split", a.Comm_split, missing);
        bind_symbol(handle, "MPI_Comm_free", a.Comm_free, missing);
        bind_symbol(handle, "MPI_Comm_set_errhandler", a.Comm_set_errhandler, missing);
        bind_symbol(handle, "MPI_Iallgather", a.Iallgather, missing);
        bind_symbol(handle, "MPI_Ialltoall", a.Ialltoall, missing);
        bind_symbol(handle, "MPI_Ibcast", a.Ibcast, missing);
        bind_symbol(handle, "MPI_Isend", a.Isend, missing);
        bind_symbol(handle, "MPI_Irecv", a.Irecv, missing);
        bind_symbol(handle, "MPI_Ibarrier", a.Ibarrier, missing);
        bind_symbol(handle, "MPI_Test", a.Test, missing);
        bind_symbol(handle, "MPI_Request_free", a.Request_free, missing);
        bind_symbol(handle, "MPI_Error_string", a.Error_string, missing);
        a.comm_world = static_cast<Comm>(dlsym(handle, "ompi_mpi_comm_world"));
        a.byte = static_cast<Datatype>(dlsym(handle, "ompi_mpi_byte"));
        a.errors_return = static_cast<Errhandler>(dlsym(handle, "ompi_mpi_errors_return"));
        if (a.comm_world == nullptr || a.byte == nullptr || a.errors_return == nullptr)
            missing += std::string(missing.empty() ? "" : ", ") + "Open MPI's predefined handles (ompi_mpi_comm_world, ...): not Open MPI?";
        if (!missing.empty()) {
            tried += std::string("\n  ") + name + ": lacks " + missing;
            continue;  // kept loaded: unloading MPI libraries is not safe
        }
        a.path = name;
        return a;
    }
    error = "Open MPI's libmpi.so.40 could not be loaded (Debian: apt-get install libopenmpi-dev openmpi-bin; "
            "or set XDIT_MPI_LIB); tried:" + tried;
    return a;
}

}  // namespace

const Api& api() {
    static std::string error;
    static const Api loaded = load(error);
    if (loaded.Init_thread == nullptr || loaded.comm_world == nullptr) fail(XDIT_STATUS_UNAVAILABLE, error);
    return loaded;
}

std::string error_string(int code) {
    char text[kMaxErrorString] = {};
    int length = 0;
    if (api().Error_string(code, text, &length) != kSuccess) return "MPI error " + std::to_string(code);
    return std::string(text, static_cast<size_t>(length));
}

}  // namespace xdit::mpi
