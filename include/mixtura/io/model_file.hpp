#pragma once
/// The mixtura model file: a versioned, checksummed container of named, typed arrays and texts.
///
/// Layout (all integers little-endian; docs/model-format.md has it byte by byte):
///
///   header, 32 bytes: magic "MIXTURA\0" | u32 format version (1) | u32 flags (0) |
///                     u64 total file size | u32 section count | u32 kind length
///   kind:             kind length bytes of ASCII ("KMeans", "GaussianMixture", ...)
///   each section:     u32 name length | name (ASCII) | u8 dtype | u8 ndim | u16 reserved (0) |
///                     ndim x u64 shape | payload (product(shape) x item size bytes, row-major)
///   trailer:          u32 CRC-32 (zlib's polynomial) of every byte before it
///
/// Reading never trusts the file: every length and shape is checked against the bytes that remain
/// before anything is allocated, counts and name lengths are capped, the checksum is verified and
/// an unknown format version is refused. Every failure throws InvalidArgument naming the reader,
/// the condition and the value.

#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define MIXTURA_POSIX_FILES 1
#endif

#include "mixtura/core/errors.hpp"

namespace mixtura {

/// Reading or writing a model file failed at the operating-system level (OSError in Python).
class ModelFileIoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Element type of a section. The codes are part of the format: never renumber.
enum class DType : std::uint8_t {
  f32 = 1,   ///< IEEE-754 binary32
  f64 = 2,   ///< IEEE-754 binary64
  i32 = 3,   ///< two's complement 32-bit
  i64 = 4,   ///< two's complement 64-bit
  text = 5,  ///< UTF-8 text; one dimension, its length in bytes
};

inline const char* to_string(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::text: return "text";
  }
  return "unknown";
}

/// Bytes per element (1 for text).
inline std::size_t item_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::text: return 1;
  }
  return 0;
}

/// The format this build writes and the newest it reads.
constexpr std::uint32_t kModelFormatVersion = 1;
/// The 8 bytes every model file starts with.
constexpr char kModelFileMagic[8] = {'M', 'I', 'X', 'T', 'U', 'R', 'A', '\0'};
constexpr std::size_t kModelFileHeaderSize = 32;
constexpr std::size_t kModelFileMaxSections = 4096;
constexpr std::size_t kModelFileMaxNameLength = 255;
constexpr std::size_t kModelFileMaxKindLength = 64;
constexpr std::size_t kModelFileMaxNdim = 4;

namespace detail {

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i64; };

constexpr std::array<std::uint32_t, 256> make_crc32_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

inline void put_u8(std::vector<std::uint8_t>& out, std::uint8_t v) { out.push_back(v); }
inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// Section names and kinds: ASCII letters, digits, '_', '.', '-' (a '.' separates a prefix).
inline bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}
inline bool valid_name(const std::string& s, std::size_t max_length) {
  if (s.empty() || s.size() > max_length) return false;
  for (char c : s)
    if (!valid_name_char(c)) return false;
  return true;
}

/// Offset of the first byte that is not well-formed UTF-8 (overlongs, surrogates and code points
/// above U+10FFFF are refused), or n if all are.
inline std::size_t first_invalid_utf8(const std::uint8_t* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = s[i];
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1Fu; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0Fu; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07u; }
    else return i;
    if (n - i < len) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3Fu);
    }
    const std::uint32_t min_cp = len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u;
    if (cp < min_cp || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) return i;
    i += len;
  }
  return n;
}

inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

/// product(shape), or `cap` + 1 as soon as the product exceeds `cap` (so it never overflows).
inline std::uint64_t checked_element_count(const std::vector<std::uint64_t>& shape, std::uint64_t cap) {
  for (std::uint64_t d : shape)
    if (d == 0) return 0;
  std::uint64_t n = 1;
  for (std::uint64_t d : shape) {
    if (n > cap / d) return cap == UINT64_MAX ? cap : cap + 1;
    n *= d;
  }
  return n;
}

}  // namespace detail

/// CRC-32 of zlib (and Python's zlib.crc32): reflected polynomial 0xEDB88320, initial and final
/// XOR 0xFFFFFFFF. Pass a previous result as `crc` to continue a running checksum.
inline std::uint32_t crc32(const std::uint8_t* data, std::size_t n, std::uint32_t crc = 0) {
  static constexpr std::array<std::uint32_t, 256> table = detail::make_crc32_table();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

/// One named array (or text) of a model file; the payload is kept little-endian, as in the file.
struct Section {
  std::string name;
  DType dtype = DType::f64;
  std::vector<std::uint64_t> shape;  ///< empty: a scalar; text: one entry, the length in bytes
  std::vector<std::uint8_t> payload;

  /// Number of elements (the product of the shape; 1 for a scalar); UINT64_MAX if it overflows.
  std::uint64_t n_elements() const { return detail::checked_element_count(shape, UINT64_MAX - 1); }
};

/// A model file in memory: the model's kind and its sections, in file order.
struct ModelFile {
  std::string kind;
  std::vector<Section> sections;

  bool has(const std::string& name) const { return find(name) != nullptr; }
  const Section* find(const std::string& name) const {
    for (const Section& s : sections)
      if (s.name == name) return &s;
    return nullptr;
  }
  /// The section called `name`; throws InvalidArgument if there is none.
  const Section& section(const std::string& name) const {
    const Section* s = find(name);
    MIXTURA_EXPECTS(s != nullptr, "ModelFile: the '%s' model file has no section '%s'", kind.c_str(), name.c_str());
    return *s;
  }

  /// Adds an array of `shape` (row-major, product(shape) values at `data`; an empty shape is a scalar).
  template <class T>
  void add_array(const std::string& name, const T* data, std::vector<std::uint64_t> shape) {
    constexpr DType dt = detail::dtype_of<T>::value;
    check_new(name, shape.size());
    Section s;
    s.name = name;
    s.dtype = dt;
    s.shape = std::move(shape);
    const std::uint64_t n = s.n_elements();
    MIXTURA_EXPECTS(n <= UINT64_MAX / 16, "ModelFile::add_array: section '%s' has shape %s, too many elements",
                    name.c_str(), detail::shape_string(s.shape).c_str());
    s.payload.reserve(static_cast<std::size_t>(n * sizeof(T)));
    for (std::uint64_t i = 0; i < n; ++i) {
      if (sizeof(T) == 4) {
        std::uint32_t u;
        std::memcpy(&u, data + i, 4);
        detail::put_u32(s.payload, u);
      } else {
        std::uint64_t u;
        std::memcpy(&u, data + i, 8);
        detail::put_u64(s.payload, u);
      }
    }
    sections.push_back(std::move(s));
  }
  template <class T>
  void add_array(const std::string& name, const std::vector<T>& values, std::vector<std::uint64_t> shape) {
    MIXTURA_EXPECTS(product(shape) == values.size(),
                    "ModelFile::add_array: section '%s' has %zu values for shape %s", name.c_str(), values.size(),
                    detail::shape_string(shape).c_str());
    add_array(name, values.data(), std::move(shape));
  }
  /// A vector of values (shape (n,)).
  template <class T>
  void add_vector(const std::string& name, const std::vector<T>& values) {
    add_array(name, values.data(), {static_cast<std::uint64_t>(values.size())});
  }
  template <class T>
  void add_scalar(const std::string& name, T value) { add_array(name, &value, {}); }
  /// Adds UTF-8 text (JSON, a name, ...).
  void add_text(const std::string& name, const std::string& text) {
    check_new(name, 1);
    const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
    const std::size_t bad = detail::first_invalid_utf8(p, text.size());
    MIXTURA_EXPECTS(bad == text.size(), "ModelFile::add_text: section '%s' is not valid UTF-8 (byte %zu)",
                    name.c_str(), bad);
    Section s;
    s.name = name;
    s.dtype = DType::text;
    s.shape = {static_cast<std::uint64_t>(text.size())};
    s.payload.assign(p, p + text.size());
    sections.push_back(std::move(s));
  }

  /// The values of section `name`, which must hold T; `shape` receives its shape.
  template <class T>
  std::vector<T> array(const std::string& name, std::vector<std::uint64_t>* shape = nullptr) const {
    constexpr DType dt = detail::dtype_of<T>::value;
    const Section& s = section(name);
    MIXTURA_EXPECTS(s.dtype == dt, "ModelFile: section '%s' has dtype %s, expected %s", name.c_str(),
                    to_string(s.dtype), to_string(dt));
    const std::size_t n = s.payload.size() / sizeof(T);
    std::vector<T> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (sizeof(T) == 4) {
        const std::uint32_t u = detail::get_u32(s.payload.data() + 4 * i);
        std::memcpy(&out[i], &u, 4);
      } else {
        const std::uint64_t u = detail::get_u64(s.payload.data() + 8 * i);
        std::memcpy(&out[i], &u, 8);
      }
    }
    if (shape) *shape = s.shape;
    return out;
  }
  /// The values of section `name`, which must hold T with exactly the given shape.
  template <class T>
  std::vector<T> array(const std::string& name, const std::vector<std::uint64_t>& expected) const {
    const Section& s = section(name);
    MIXTURA_EXPECTS(s.dtype == detail::dtype_of<T>::value, "ModelFile: section '%s' has dtype %s, expected %s",
                    name.c_str(), to_string(s.dtype), to_string(detail::dtype_of<T>::value));
    MIXTURA_EXPECTS(s.shape == expected, "ModelFile: section '%s' has shape %s, expected %s", name.c_str(),
                    detail::shape_string(s.shape).c_str(), detail::shape_string(expected).c_str());
    return array<T>(name);
  }
  /// The single value of a scalar section (shape ()).
  template <class T>
  T scalar(const std::string& name) const { return array<T>(name, std::vector<std::uint64_t>{}).front(); }
  /// The text of a text section.
  std::string text(const std::string& name) const {
    const Section& s = section(name);
    MIXTURA_EXPECTS(s.dtype == DType::text, "ModelFile: section '%s' has dtype %s, expected text", name.c_str(),
                    to_string(s.dtype));
    return std::string(s.payload.begin(), s.payload.end());
  }

 private:
  static std::uint64_t product(const std::vector<std::uint64_t>& shape) {
    return detail::checked_element_count(shape, UINT64_MAX - 1);
  }
  void check_new(const std::string& name, std::size_t ndim) const {
    MIXTURA_EXPECTS(detail::valid_name(name, kModelFileMaxNameLength),
                    "ModelFile: section name '%s' must be 1 to %zu characters among A-Z a-z 0-9 _ . -", name.c_str(),
                    kModelFileMaxNameLength);
    MIXTURA_EXPECTS(!has(name), "ModelFile: a section '%s' already exists", name.c_str());
    MIXTURA_EXPECTS(ndim <= kModelFileMaxNdim, "ModelFile: section '%s' has %zu dimensions, at most %zu allowed",
                    name.c_str(), ndim, kModelFileMaxNdim);
    MIXTURA_EXPECTS(sections.size() < kModelFileMaxSections, "ModelFile: more than %zu sections",
                    kModelFileMaxSections);
  }
};

/// The bytes of a model file (format version 1).
inline std::vector<std::uint8_t> to_bytes(const ModelFile& mf) {
  MIXTURA_EXPECTS(detail::valid_name(mf.kind, kModelFileMaxKindLength),
                  "to_bytes: kind '%s' must be 1 to %zu characters among A-Z a-z 0-9 _ . -", mf.kind.c_str(),
                  kModelFileMaxKindLength);
  MIXTURA_EXPECTS(mf.sections.size() <= kModelFileMaxSections, "to_bytes: %zu sections, at most %zu allowed",
                  mf.sections.size(), kModelFileMaxSections);
  std::vector<std::uint8_t> out(kModelFileMagic, kModelFileMagic + 8);
  detail::put_u32(out, kModelFormatVersion);
  detail::put_u32(out, 0);  // flags
  detail::put_u64(out, 0);  // total size, patched below
  detail::put_u32(out, static_cast<std::uint32_t>(mf.sections.size()));
  detail::put_u32(out, static_cast<std::uint32_t>(mf.kind.size()));
  out.insert(out.end(), mf.kind.begin(), mf.kind.end());
  for (std::size_t i = 0; i < mf.sections.size(); ++i) {
    const Section& s = mf.sections[i];
    MIXTURA_EXPECTS(detail::valid_name(s.name, kModelFileMaxNameLength), "to_bytes: section %zu has an invalid name '%s'",
                    i, s.name.c_str());
    for (std::size_t j = 0; j < i; ++j)
      MIXTURA_EXPECTS(mf.sections[j].name != s.name, "to_bytes: section '%s' appears twice", s.name.c_str());
    MIXTURA_EXPECTS(s.shape.size() <= kModelFileMaxNdim, "to_bytes: section '%s' has %zu dimensions, at most %zu",
                    s.name.c_str(), s.shape.size(), kModelFileMaxNdim);
    MIXTURA_EXPECTS(s.dtype != DType::text || s.shape.size() == 1, "to_bytes: text section '%s' must have one dimension",
                    s.name.c_str());
    MIXTURA_EXPECTS(item_size(s.dtype) != 0, "to_bytes: section '%s' has an unknown dtype code %d", s.name.c_str(),
                    static_cast<int>(s.dtype));
    const std::uint64_t fits = s.payload.size() / item_size(s.dtype);  // compared without overflow
    MIXTURA_EXPECTS(s.n_elements() <= fits && s.n_elements() * item_size(s.dtype) == s.payload.size(),
                    "to_bytes: section '%s' has %zu payload bytes for shape %s of %s", s.name.c_str(), s.payload.size(),
                    detail::shape_string(s.shape).c_str(), to_string(s.dtype));
    detail::put_u32(out, static_cast<std::uint32_t>(s.name.size()));
    out.insert(out.end(), s.name.begin(), s.name.end());
    detail::put_u8(out, static_cast<std::uint8_t>(s.dtype));
    detail::put_u8(out, static_cast<std::uint8_t>(s.shape.size()));
    detail::put_u16(out, 0);
    for (std::uint64_t d : s.shape) detail::put_u64(out, d);
    out.insert(out.end(), s.payload.begin(), s.payload.end());
  }
  const std::uint64_t total = out.size() + 4;
  for (int i = 0; i < 8; ++i) out[16 + i] = static_cast<std::uint8_t>(total >> (8 * i));
  detail::put_u32(out, crc32(out.data(), out.size()));
  return out;
}

namespace detail {

/// Checks the fixed header of a file of `file_size` bytes, given its first `n` bytes (all of them
/// when the file is shorter than the header): magic, version, flags, and the size the header
/// declares against the real one, so that a reader can refuse a file before reading all of it.
inline void check_model_file_header(const std::uint8_t* data, std::size_t n, std::uint64_t file_size,
                                    const char* where) {
  const std::size_t magic_n = n < 8 ? n : 8;
  MIXTURA_EXPECTS(file_size > 0, "%s: the file is empty; not a mixtura model file", where);
  MIXTURA_EXPECTS(std::memcmp(data, kModelFileMagic, magic_n) == 0,
                  "%s: not a mixtura model file (it does not start with the magic bytes \"MIXTURA\\0\")", where);
  MIXTURA_EXPECTS(file_size >= 12 && n >= 12, "%s: file truncated: %llu bytes, a model file has at least %zu", where,
                  static_cast<unsigned long long>(file_size), kModelFileHeaderSize + 5);
  const std::uint32_t version = get_u32(data + 8);
  MIXTURA_EXPECTS(version != 0, "%s: invalid format version 0", where);
  MIXTURA_EXPECTS(version <= kModelFormatVersion,
                  "%s: format version %u is newer than this build of mixtura reads (%u); upgrade mixtura to read it",
                  where, version, kModelFormatVersion);
  MIXTURA_EXPECTS(file_size >= kModelFileHeaderSize + 4 && n >= kModelFileHeaderSize,
                  "%s: file truncated: %llu bytes, a model file has at least %zu", where,
                  static_cast<unsigned long long>(file_size), kModelFileHeaderSize + 5);
  const std::uint32_t flags = get_u32(data + 12);
  MIXTURA_EXPECTS(flags == 0, "%s: unknown flags 0x%08x (format version %u defines none)", where, flags, version);
  const std::uint64_t total = get_u64(data + 16);
  MIXTURA_EXPECTS(total <= file_size, "%s: file truncated: the header declares %llu bytes, only %llu present", where,
                  static_cast<unsigned long long>(total), static_cast<unsigned long long>(file_size));
  MIXTURA_EXPECTS(total == file_size, "%s: %llu bytes where the header declares %llu: trailing data after the model",
                  where, static_cast<unsigned long long>(file_size), static_cast<unsigned long long>(total));
}

/// Reads a model file from `n` bytes; errors start with `where`.
inline ModelFile parse_model_file(const std::uint8_t* data, std::size_t n, const std::string& where_s) {
  const char* where = where_s.c_str();
  check_model_file_header(data, n, n, where);
  const std::uint32_t stored = get_u32(data + n - 4);
  const std::uint32_t computed = crc32(data, n - 4);
  MIXTURA_EXPECTS(stored == computed, "%s: checksum mismatch (stored 0x%08x, computed 0x%08x): the file is corrupted",
                  where, stored, computed);

  // The checksum only proves the bytes are what the writer wrote; the writer may be hostile.
  const std::size_t end = n - 4;
  std::size_t pos = kModelFileHeaderSize;
  auto need = [&](std::size_t k, const char* what) {
    MIXTURA_EXPECTS(end - pos >= k, "%s: %s needs %zu bytes at offset %zu but only %zu remain", where, what, k, pos,
                    end - pos);
  };
  const std::uint32_t n_sections = get_u32(data + 24);
  const std::uint32_t kind_len = get_u32(data + 28);
  MIXTURA_EXPECTS(n_sections <= kModelFileMaxSections, "%s: %u sections declared, at most %zu allowed", where,
                  n_sections, kModelFileMaxSections);
  MIXTURA_EXPECTS(kind_len >= 1 && kind_len <= kModelFileMaxKindLength,
                  "%s: kind length %u is outside [1, %zu]", where, kind_len, kModelFileMaxKindLength);
  need(kind_len, "the kind");
  ModelFile mf;
  mf.kind.assign(reinterpret_cast<const char*>(data + pos), kind_len);
  pos += kind_len;
  MIXTURA_EXPECTS(valid_name(mf.kind, kModelFileMaxKindLength),
                  "%s: the kind holds a character outside A-Z a-z 0-9 _ . -", where);
  // Each section takes at least 9 bytes (name length, a 1-byte name, dtype, ndim, reserved).
  MIXTURA_EXPECTS(static_cast<std::uint64_t>(n_sections) * 9 <= end - pos,
                  "%s: %u sections declared but only %zu bytes remain", where, n_sections, end - pos);
  mf.sections.reserve(n_sections);
  for (std::uint32_t i = 0; i < n_sections; ++i) {
    need(4, "a section's name length");
    const std::uint32_t name_len = get_u32(data + pos);
    pos += 4;
    MIXTURA_EXPECTS(name_len >= 1 && name_len <= kModelFileMaxNameLength,
                    "%s: section %u has name length %u, outside [1, %zu]", where, i, name_len, kModelFileMaxNameLength);
    need(name_len + 4, "a section's name and type");
    Section s;
    s.name.assign(reinterpret_cast<const char*>(data + pos), name_len);
    pos += name_len;
    MIXTURA_EXPECTS(valid_name(s.name, kModelFileMaxNameLength),
                    "%s: section %u has a name with a character outside A-Z a-z 0-9 _ . -", where, i);
    for (const Section& prev : mf.sections)
      MIXTURA_EXPECTS(prev.name != s.name, "%s: section '%s' appears twice", where, s.name.c_str());
    const std::uint8_t code = data[pos], ndim = data[pos + 1];
    const std::uint32_t reserved = static_cast<std::uint32_t>(data[pos + 2]) | (static_cast<std::uint32_t>(data[pos + 3]) << 8);
    pos += 4;
    MIXTURA_EXPECTS(code >= 1 && code <= 5, "%s: section '%s' has unknown dtype code %u", where, s.name.c_str(),
                    static_cast<unsigned>(code));
    s.dtype = static_cast<DType>(code);
    MIXTURA_EXPECTS(ndim <= kModelFileMaxNdim, "%s: section '%s' has %u dimensions, at most %zu allowed", where,
                    s.name.c_str(), static_cast<unsigned>(ndim), kModelFileMaxNdim);
    MIXTURA_EXPECTS(reserved == 0, "%s: section '%s' has reserved bytes 0x%04x, expected 0", where, s.name.c_str(),
                    reserved);
    MIXTURA_EXPECTS(s.dtype != DType::text || ndim == 1, "%s: text section '%s' has %u dimensions, expected 1", where,
                    s.name.c_str(), static_cast<unsigned>(ndim));
    need(8u * ndim, "a section's shape");
    s.shape.resize(ndim);
    for (std::uint8_t d = 0; d < ndim; ++d) s.shape[d] = get_u64(data + pos + 8u * d);
    pos += 8u * ndim;
    // Overflow-safe: the element count is compared with what fits in the remaining bytes, factor by
    // factor, and once more at the end, since a scalar (no factors) still needs one element.
    const std::size_t item = item_size(s.dtype);
    const std::uint64_t fit = (end - pos) / item;
    const std::uint64_t count = checked_element_count(s.shape, fit);
    MIXTURA_EXPECTS(count <= fit, "%s: section '%s' declares shape %s of %s (%zu bytes each) but only %zu bytes remain",
                    where, s.name.c_str(), shape_string(s.shape).c_str(), to_string(s.dtype), item, end - pos);
    const std::size_t bytes = static_cast<std::size_t>(count) * item;
    s.payload.assign(data + pos, data + pos + bytes);
    pos += bytes;
    if (s.dtype == DType::text) {
      const std::size_t bad = first_invalid_utf8(s.payload.data(), s.payload.size());
      MIXTURA_EXPECTS(bad == s.payload.size(), "%s: text section '%s' is not valid UTF-8 (byte %zu)", where,
                      s.name.c_str(), bad);
    }
    mf.sections.push_back(std::move(s));
  }
  MIXTURA_EXPECTS(pos == end, "%s: %zu bytes after the last of %u sections, expected none", where, end - pos,
                  n_sections);
  return mf;
}

/// The model-file bytes once the file is open and judged regular: `size` bytes by read(dst, n) (false
/// on a short read); the header is checked against the size before the rest is read, so a large file
/// that is not a model file is refused after 32 bytes.
template <class Read>
std::vector<std::uint8_t> read_opened_model_file(std::uintmax_t size, Read read, const std::string& path,
                                                 const char* where) {
  const std::size_t head_n = size < kModelFileHeaderSize ? static_cast<std::size_t>(size) : kModelFileHeaderSize;
  std::uint8_t head[kModelFileHeaderSize] = {};
  if (head_n > 0 && !read(head, head_n))
    throw ModelFileIoError(detail::format("%s: cannot read '%s'", where, path.c_str()));
  check_model_file_header(head, head_n, size, where);
  MIXTURA_EXPECTS(size <= SIZE_MAX, "%s: '%s' has %llu bytes, more than this machine can address", where,
                  path.c_str(), static_cast<unsigned long long>(size));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  std::memcpy(bytes.data(), head, head_n);
  if (size > head_n && !read(bytes.data() + head_n, static_cast<std::size_t>(size - head_n)))
    throw ModelFileIoError(detail::format("%s: cannot read '%s' (it has fewer than the %llu bytes it had when opened)",
                                          where, path.c_str(), static_cast<unsigned long long>(size)));
  return bytes;
}

/// The bytes of the model file at `path`. Only a regular file is read (a FIFO would block, a
/// device or directory has no size): on POSIX systems the file is opened without waiting for a
/// writer (O_NONBLOCK) and judged by fstat on what was opened, so a path swapped for a FIFO after a
/// check cannot make the reader block.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, const char* where) {
  auto not_regular = [&](bool directory) {
    return ModelFileIoError(detail::format("%s: '%s' is not a regular file (%s)", where, path.c_str(),
                                           directory ? "a directory" : "a device, FIFO or socket"));
  };
#if defined(MIXTURA_POSIX_FILES)
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  if (f.fd < 0)
    throw ModelFileIoError(detail::format("%s: cannot open '%s': %s", where, path.c_str(), std::strerror(errno)));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0)
    throw ModelFileIoError(detail::format("%s: cannot read the size of '%s': %s", where, path.c_str(),
                                          std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw not_regular(S_ISDIR(st.st_mode));
  auto read = [&](std::uint8_t* dst, std::size_t n) {
    while (n > 0) {
      const ssize_t got = ::read(f.fd, dst, n);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      dst += got;
      n -= static_cast<std::size_t>(got);
    }
    return true;
  };
  return read_opened_model_file(static_cast<std::uintmax_t>(st.st_size), read, path, where);
#else
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    throw ModelFileIoError(detail::format("%s: cannot open '%s': %s", where, path.c_str(),
                                          ec ? ec.message().c_str() : std::strerror(ENOENT)));
  if (!fs::is_regular_file(st)) throw not_regular(fs::is_directory(st));
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw ModelFileIoError(detail::format("%s: cannot read the size of '%s': %s", where, path.c_str(),
                                                ec.message().c_str()));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ModelFileIoError(detail::format("%s: cannot open '%s': %s", where, path.c_str(), std::strerror(errno)));
  auto read = [&](std::uint8_t* dst, std::size_t n) {
    return static_cast<bool>(in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n)));
  };
  return read_opened_model_file(size, read, path, where);
#endif
}

/// Writes `bytes` to a temporary file beside `path`, then renames it: readers never see half a file.
inline void write_file_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes, const char* where) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw ModelFileIoError(detail::format("%s: cannot create '%s': %s", where, tmp.c_str(), std::strerror(errno)));
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw ModelFileIoError(detail::format("%s: cannot write '%s'", where, tmp.c_str()));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw ModelFileIoError(detail::format("%s: cannot rename '%s' to '%s': %s", where, tmp.c_str(), path.c_str(),
                                          std::strerror(err)));
  }
}

}  // namespace detail

/// Reads a model file from memory; throws InvalidArgument if it is not a valid one.
inline ModelFile from_bytes(const std::uint8_t* data, std::size_t n) {
  return detail::parse_model_file(data, n, "from_bytes");
}
inline ModelFile from_bytes(const std::vector<std::uint8_t>& bytes) { return from_bytes(bytes.data(), bytes.size()); }

/// Reads a model file; InvalidArgument if it is not a valid one, ModelFileIoError if it cannot be read.
inline ModelFile read_model_file(const std::string& path) {
  const std::vector<std::uint8_t> bytes = detail::read_file_bytes(path, "read_model_file");
  return detail::parse_model_file(bytes.data(), bytes.size(), "read_model_file('" + path + "')");
}

/// Writes a model file (atomically: a temporary file renamed over `path`).
inline void write_model_file(const std::string& path, const ModelFile& mf) {
  detail::write_file_bytes(path, to_bytes(mf), "write_model_file");
}

}  // namespace mixtura
