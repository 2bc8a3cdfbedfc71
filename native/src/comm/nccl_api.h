// NCCL's C API, declared here (the types and values of nccl.h, stable since NCCL 2.x) and loaded at run
// time: XDIT_NCCL_LIB, else libnccl.so.2 — on GPU machines it often ships inside PyTorch's packages
// (site-packages/nvidia/nccl/lib). Nothing here needs the CUDA headers: streams are opaque pointers.
#pragma once

#include <cstddef>
#include <string>

namespace xdit::nccl {

struct CommObject;
using Comm = CommObject*;
using Stream = void*;  // cudaStream_t
using Result = int;    // ncclResult_t

constexpr Result kSuccess = 0;
constexpr Result kInProgress = 7;
constexpr int kUint8 = 1;  // ncclUint8: every buffer moves as bytes
constexpr size_t kUniqueIdBytes = 128;

struct UniqueId {
    char internal[kUniqueIdBytes];
};

struct Api {
    Result (*GetVersion)(int*);
    Result (*GetUniqueId)(UniqueId*);
    Result (*CommInitRank)(Comm*, int, UniqueId, int);
    Result (*CommDestroy)(Comm);
    Result (*CommAbort)(Comm);
    Result (*CommGetAsyncError)(Comm, Result*);
    Result (*CommUserRank)(Comm, int*);
    Result (*CommCount)(Comm, int*);
    const char* (*GetErrorString)(Result);
    Result (*AllGather)(const void*, void*, size_t, int, Comm, Stream);
    Result (*Broadcast)(const void*, void*, size_t, int, int, Comm, Stream);
    Result (*Send)(const void*, size_t, int, int, Comm, Stream);
    Result (*Recv)(void*, size_t, int, int, Comm, Stream);
    Result (*GroupStart)();
    Result (*GroupEnd)();
    // Optional (NCCL 2.18+); null where the library is older. The last argument is an ncclConfig_t*,
    // always passed as null (the parent's configuration).
    Result (*CommSplit)(Comm, int, int, Comm*, void*);
    // Optional (NCCL 2.13+): the last error's text in detail.
    const char* (*GetLastError)(Comm);
    std::string path;
};

// The loaded library, or an Unavailable error naming every path tried.
const Api& api();

}  // namespace xdit::nccl
