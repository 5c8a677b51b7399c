// mixtura._core's model files: the C++ container (include/mixtura/io) for the Python package.
// Sections travel as one ordered dict: numpy arrays (float32, float64, int32, int64; up to 4
// dimensions, 0-d for scalars) and str for text sections. Reading is done by the C++ reader only,
// so Python gets the same checks (magic, version, checksum, bounds) and the same messages.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mixtura/io.hpp"

namespace py = pybind11;

namespace {

template <class T>
bool add_if(mixtura::ModelFile& mf, const std::string& name, const py::array& a) {
  if (!a.dtype().is(py::dtype::of<T>())) return false;
  const auto c = py::array_t<T, py::array::c_style>::ensure(a);
  std::vector<std::uint64_t> shape;
  for (py::ssize_t d = 0; d < c.ndim(); ++d) shape.push_back(static_cast<std::uint64_t>(c.shape(d)));
  mf.add_array(name, c.data(), std::move(shape));
  return true;
}

mixtura::ModelFile model_file_of(const std::string& kind, const py::dict& sections) {
  mixtura::ModelFile mf;
  mf.kind = kind;
  for (const auto& item : sections) {
    const std::string name = py::cast<std::string>(item.first);
    const py::handle v = item.second;
    if (py::isinstance<py::str>(v)) {
      mf.add_text(name, py::cast<std::string>(v));
      continue;
    }
    if (!py::isinstance<py::array>(v))
      throw mixtura::InvalidArgument("model file: section '" + name + "' must be a numpy array or a str, got " +
                                     py::cast<std::string>(py::str(py::type::of(v).attr("__name__"))));
    const py::array a = py::reinterpret_borrow<py::array>(v);
    if (!(add_if<float>(mf, name, a) || add_if<double>(mf, name, a) || add_if<std::int32_t>(mf, name, a) ||
          add_if<std::int64_t>(mf, name, a)))
      throw mixtura::InvalidArgument("model file: section '" + name + "' has dtype " +
                                     py::cast<std::string>(py::str(a.dtype())) +
                                     "; a model file holds float32, float64, int32 and int64 (native byte order)");
  }
  return mf;
}

template <class T>
py::array array_of(const mixtura::ModelFile& mf, const mixtura::Section& s) {
  std::vector<py::ssize_t> shape(s.shape.begin(), s.shape.end());
  py::array_t<T> out(shape);
  const std::vector<T> v = mf.array<T>(s.name);
  std::copy(v.begin(), v.end(), out.mutable_data());
  return std::move(out);
}

py::tuple to_python(const mixtura::ModelFile& mf) {
  py::dict sections;
  for (const mixtura::Section& s : mf.sections) {
    switch (s.dtype) {
      case mixtura::DType::f32: sections[py::str(s.name)] = array_of<float>(mf, s); break;
      case mixtura::DType::f64: sections[py::str(s.name)] = array_of<double>(mf, s); break;
      case mixtura::DType::i32: sections[py::str(s.name)] = array_of<std::int32_t>(mf, s); break;
      case mixtura::DType::i64: sections[py::str(s.name)] = array_of<std::int64_t>(mf, s); break;
      case mixtura::DType::text: sections[py::str(s.name)] = py::str(mf.text(s.name)); break;
    }
  }
  return py::make_tuple(mf.kind, sections);
}

py::bytes to_bytes(const std::string& kind, const py::dict& sections) {
  const std::vector<std::uint8_t> b = mixtura::to_bytes(model_file_of(kind, sections));
  return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
}

py::tuple from_bytes(const py::bytes& data, const std::string& where) {
  const std::string_view b = data;  // no copy
  return to_python(mixtura::detail::parse_model_file(reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), where));
}

py::array f64_array(const std::vector<double>& v, const std::vector<std::uint64_t>& shape) {
  py::array_t<double> out(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return std::move(out);
}

/// Checks a fitted model's sections (named prefix + attribute) as the C++ loaders do. For a
/// GaussianMixture, returns covariances_ and precisions_ computed as a fit computes them.
py::dict check_model(const std::string& model, const std::string& kind, const py::dict& sections,
                     const std::string& prefix, const std::string& where) {
  const mixtura::ModelFile mf = model_file_of(kind, sections);
  py::dict out;
  if (model == mixtura::kKMeansKind) {
    const mixtura::Section* c = mf.find(prefix + "cluster_centers_");
    if (c && c->dtype == mixtura::DType::f32) mixtura::kmeans_from_sections<float>(mf, prefix, where.c_str());
    else mixtura::kmeans_from_sections<double>(mf, prefix, where.c_str());
  } else if (model == mixtura::kMiniBatchKMeansKind) {
    const mixtura::Section* c = mf.find(prefix + "cluster_centers_");
    if (c && c->dtype == mixtura::DType::f32) mixtura::minibatch_kmeans_from_sections<float>(mf, prefix, where.c_str());
    else mixtura::minibatch_kmeans_from_sections<double>(mf, prefix, where.c_str());
  } else if (model == mixtura::kGaussianMixtureKind) {
    const auto gm = mixtura::gaussian_mixture_from_sections<double>(mf, prefix, where.c_str());
    const mixtura::GmmModel& m = gm.model();
    const auto shape = mixtura::detail::gmm_parameter_shape(m.type, m.n_components, m.n_features);
    out["covariances_"] = f64_array(mixtura::detail::gmm_parameter_values(m, 1), shape);
    out["precisions_"] = f64_array(mixtura::detail::gmm_parameter_values(m, 2), shape);
  } else if (model == mixtura::kDetectorKind) {
    const mixtura::Section* c = mf.find(prefix + "model.cluster_centers_");
    if (c && c->dtype == mixtura::DType::f32) mixtura::detector_from_sections<float>(mf, prefix, where.c_str());
    else mixtura::detector_from_sections<double>(mf, prefix, where.c_str());
  } else {
    throw mixtura::InvalidArgument(where + ": no C++ checks for models of kind '" + model + "'");
  }
  return out;
}

}  // namespace

/// Registers the model-file functions on mixtura._core (called from module.cpp).
void bind_model_io(py::module_& m) {
  py::register_exception<mixtura::ModelFileIoError>(m, "ModelFileIoError", PyExc_OSError);
  m.attr("MODEL_FORMAT_VERSION") = mixtura::kModelFormatVersion;
  m.def("model_file_to_bytes", &to_bytes, py::arg("kind"), py::arg("sections"),
        "The bytes of a model file of `kind` holding `sections` (name -> numpy array or str), in order.");
  m.def("model_file_write",
        [](const std::string& path, const std::string& kind, const py::dict& sections) {
          mixtura::write_model_file(path, model_file_of(kind, sections));
        },
        py::arg("path"), py::arg("kind"), py::arg("sections"), "Writes a model file (atomically).");
  m.def("model_file_from_bytes", &from_bytes, py::arg("data"), py::arg("where") = "from_bytes",
        "(kind, sections) of a model file's bytes; ValueError naming `where` if they are not a valid one.");
  m.def("model_file_check_header",
        [](const py::bytes& head, std::uint64_t file_size, const std::string& where) {
          const std::string_view b = head;
          mixtura::detail::check_model_file_header(reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), file_size,
                                                   where.c_str());
          return mixtura::detail::get_u64(reinterpret_cast<const std::uint8_t*>(b.data()) + 16);
        },
        py::arg("head"), py::arg("file_size"), py::arg("where"),
        "Checks a model file's first 32 bytes (all of a shorter file) against the file's size, as the C++ reader "
        "does before reading the rest; returns the size the header declares. ValueError naming `where`.");
  m.def("model_file_read", [](const std::string& path) { return to_python(mixtura::read_model_file(path)); },
        py::arg("path"), "(kind, sections) of a model file.");
  m.def("model_file_check", &check_model, py::arg("model"), py::arg("kind"), py::arg("sections"), py::arg("prefix"),
        py::arg("where"));
}
