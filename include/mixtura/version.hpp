#pragma once
#define MIXTURA_VERSION_MAJOR 0
#define MIXTURA_VERSION_MINOR 1
#define MIXTURA_VERSION_PATCH 0
#define MIXTURA_VERSION_STRING "0.1.0"

namespace mixtura {
/// The library version, "MAJOR.MINOR.PATCH".
inline const char* version() { return MIXTURA_VERSION_STRING; }
}  // namespace mixtura
