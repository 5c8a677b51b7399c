#pragma once
/// Error types of mixtura and the validation macro every entry point opens with.
///
/// Bad arguments throw InvalidArgument (a std::invalid_argument; ValueError in Python) whose message
/// names the function, the condition that failed and the offending values. Use before fit throws
/// NotFittedError. Numerical trouble during a fit is handled by policy and recorded, not thrown.

#include <cstdarg>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace mixtura {

/// A caller passed something the function cannot work with (shape, value, NaN, ...).
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A model was used (predict, score, save, ...) before it was fitted or loaded.
class NotFittedError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// A fit was stopped by its caller (a progress callback returned false); the model is unchanged.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// printf-style formatting into a std::string (used to build error messages).
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
inline std::string format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string out;
  if (n > 0) {
    out.resize(static_cast<std::size_t>(n) + 1);
    std::vsnprintf(&out[0], out.size(), fmt, args);
    out.resize(static_cast<std::size_t>(n));
  }
  va_end(args);
  return out;
}

}  // namespace detail
}  // namespace mixtura

/// MIXTURA_EXPECTS(cond, "KMeans::fit: n_samples (%lld) < n_clusters (%d)", n, k)
/// Throws mixtura::InvalidArgument with the formatted message when cond is false.
#define MIXTURA_EXPECTS(cond, ...)                                                   \
  do {                                                                               \
    if (!(cond)) throw ::mixtura::InvalidArgument(::mixtura::detail::format(__VA_ARGS__)); \
  } while (0)
