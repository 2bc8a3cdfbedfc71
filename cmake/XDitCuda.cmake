# CUDA detection for the optional CUDA backend.
#
# Debian's CUDA 11.8 nvcc rejects g++-12, and check_language(CUDA) runs a sub-project that only
# honours the CUDAHOSTCXX environment variable: pick a supported host compiler before detection, or
# detection silently fails. XDIT_CUDA=ON turns a missing toolchain into an error (CI uses it so that
# a lost toolchain cannot quietly produce a CPU-only build).
include(CheckLanguage)

set(XDIT_CUDA_ENABLED OFF)
if(NOT XDIT_CUDA STREQUAL "OFF")
  if(NOT DEFINED ENV{CUDAHOSTCXX} AND NOT CMAKE_CUDA_HOST_COMPILER)
    find_program(XDIT_CUDA_NVCC nvcc PATHS /usr/local/cuda/bin)
    if(XDIT_CUDA_NVCC)
      execute_process(COMMAND ${XDIT_CUDA_NVCC} --version OUTPUT_VARIABLE nvcc_version ERROR_QUIET)
      if(nvcc_version MATCHES "release 11\\.")
        find_program(XDIT_CUDA_HOST_CXX NAMES g++-11 clang++-14 g++-10)
        if(XDIT_CUDA_HOST_CXX)
          set(ENV{CUDAHOSTCXX} ${XDIT_CUDA_HOST_CXX})
          set(CMAKE_CUDA_HOST_COMPILER ${XDIT_CUDA_HOST_CXX} CACHE FILEPATH "Host compiler for nvcc")
        endif()
      endif()
    endif()
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(XDIT_CUDA_ENABLED ON)
  elseif(XDIT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "XDIT_CUDA=ON but no working CUDA compiler was found. On Debian 12: enable the "
      "'contrib non-free' components, then apt-get install nvidia-cuda-toolkit g++-11. Or configure with "
      "-DXDIT_CUDA=OFF for a CPU-only build.")
  else()
    message(STATUS "XDitNative: no CUDA compiler found; building the CPU backend only")
  endif()
endif()

# Adds the CUDA backend to `target`: kernels for CMAKE_CUDA_ARCHITECTURES, the CUDA runtime linked
# statically (the library then loads on machines without CUDA), cuBLASLt loaded at run time.
function(xdit_add_cuda_backend target)
  target_sources(${target} PRIVATE
    native/src/comm/nccl_comm.cpp
    native/src/cuda/cuda_backend.cpp
    native/src/cuda/cuda_conv.cpp
    native/src/cuda/cuda_graph.cpp
    native/src/cuda/cublaslt.cpp
    native/src/cuda/cuda_gemm.cpp
    native/src/cuda/attention.cu
    native/src/cuda/attention_flash.cu
    native/src/cuda/convolution.cu
    native/src/cuda/elementwise.cu
    native/src/cuda/normalization.cu
    native/src/cuda/rope.cu)
  set_target_properties(${target} PROPERTIES
    CUDA_RUNTIME_LIBRARY Static
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON
    CUDA_SEPARABLE_COMPILATION OFF)
  target_include_directories(${target} PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
  target_compile_definitions(${target} PRIVATE XDIT_WITH_CUDA=1
    XDIT_CUDA_LIBRARY_DIR="${CUDAToolkit_LIBRARY_DIR}")
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo>)
  target_link_libraries(${target} PRIVATE CUDA::cudart_static)
endfunction()
