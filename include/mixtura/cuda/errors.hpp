#pragma once
#include <stdexcept>

namespace mixtura {

/// A CUDA runtime or library call failed; the message names the call and the CUDA error.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mixtura
