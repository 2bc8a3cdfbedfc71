// Open MPI's C API, declared here and loaded at run time (dlopen "libmpi.so.40"), so that the library
// builds without MPI headers and loads without MPI: only --comm mpi needs it. These are Open MPI's ABI
// (handles are pointers to exported globals such as ompi_mpi_comm_world); MPICH's differs and is not
// supported.
#pragma once

#include <string>

namespace xdit::mpi {

struct Object;  // every Open MPI handle is a pointer to one of its internal structs
using Comm = Object*;
using Datatype = Object*;
using Request = Object*;
using Errhandler = Object*;

constexpr int kSuccess = 0;
constexpr int kThreadSerialized = 2;
constexpr int kThreadMultiple = 3;
constexpr int kMaxErrorString = 256;

struct Api {
    int (*Initialized)(int*);
    int (*Finalized)(int*);
    int (*Init_thread)(int*, char***, int, int*);
    int (*Finalize)();
    int (*Comm_rank)(Comm, int*);
    int (*Comm_size)(Comm, int*);
    int (*Comm_dup)(Comm, Comm*);
    int (*Comm_split)(Comm, int, int, Comm*);
    int (*Comm_free)(Comm*);
    int (*Comm_set_errhandler)(Comm, Errhandler);
    int (*Iallgather)(const void*, int, Datatype, void*, int, Datatype, Comm, Request*);
    int (*Ialltoall)(const void*, int, Datatype, void*, int, Datatype, Comm, Request*);
    int (*Ibcast)(void*, int, Datatype, int, Comm, Request*);
    int (*Isend)(const void*, int, Datatype, int, int, Comm, Request*);
    int (*Irecv)(void*, int, Datatype, int, int, Comm, Request*);
    int (*Ibarrier)(Comm, Request*);
    int (*Test)(Request*, int*, void*);
    int (*Request_free)(Request*);
    int (*Error_string)(int, char*, int*);
    Comm comm_world;
    Datatype byte;
    Errhandler errors_return;
    std::string path;
};

// The loaded library, or an Unavailable error naming every path tried.
const Api& api();

// MPI's message for an error code.
std::string error_string(int code);

}  // namespace xdit::mpi
