// A communicator over NCCL: one rank per GPU, buffers in the device memory of the rank's CUDA context,
// every transfer ordered on that context's stream after the kernels that produced its data. Each call
// then waits (polling an event and NCCL's asynchronous error) at most the timeout for its transfer, and
// on expiry aborts the communicator: a rank that failed or diverged becomes a Timeout error, never a hang.
#pragma once

#include <memory>

#include "../core/context.h"
#include "communicator.h"

namespace xdit {

// Creates the NCCL rank `rank` of `size` on `context` (a CUDA context), from the unique id that one rank
// made and every rank received. UNAVAILABLE in a build without CUDA or without NCCL.
xdit_comm* create_nccl_comm(std::shared_ptr<Context> context, const uint8_t* id, int rank, int size, double timeout_seconds);

}  // namespace xdit
