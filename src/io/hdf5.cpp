#include "io/hdf5.hpp"

#include <H5DSpublic.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "io/sealed_file.hpp"
#include "util/error.hpp"

namespace dualnet::h5 {
namespace {

// HDF5's messages may hold line breaks; dualnet's errors are one line.
std::string flatten(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return text;
}

// Why the last HDF5 call failed, from its error stack: the system's words where a system
// call failed ("errno = 28" in the driver's message: "No space left on device"), else the
// innermost HDF5 message.
std::string error_reason() {
  struct Found {
    int err = 0;
    std::string innermost;
  } found;
  const auto visit = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    auto* f = static_cast<Found*>(data);
    if (e->desc != nullptr) {
      if (const char* p = std::strstr(e->desc, "errno = "); p != nullptr && f->err == 0) f->err = std::atoi(p + 8);
      f->innermost = e->desc;
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, visit, &found);
  if (found.err > 0) return std::strerror(found.err);
  return found.innermost.empty() ? std::string("HDF5 error") : flatten(found.innermost);
}

hid_t check(hid_t id, const std::string& what) {
  if (id < 0) {
    const std::string why = error_reason();
    throw IoError("HDF5: " + what + " failed: " + why, why);
  }
  return id;
}

void check_status(herr_t rc, const std::string& what) { check(rc < 0 ? -1 : 0, what); }

// File access in memory: the core driver without a backing store (HDF5 does no file I/O),
// and a close that closes every object of the file, so nothing outlives it.
Handle memory_access() {
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "file access properties"));
  check_status(H5Pset_fapl_core(fapl.id(), 1 << 20, 0), "in-memory driver");
  check_status(H5Pset_fclose_degree(fapl.id(), H5F_CLOSE_STRONG), "file close degree");
  return fapl;
}

std::string object_name(const Handle& obj) {
  char buf[512] = {0};
  H5Iget_name(obj.id(), buf, sizeof(buf));
  char file[512] = {0};
  H5Fget_name(obj.id(), file, sizeof(file));
  return std::string(file) + ":" + buf;
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    close();
    id_ = std::exchange(o.id_, -1);
  }
  return *this;
}

void Handle::close() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      break;
  }
  id_ = -1;
}

void quiet_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle create_file(const std::string& path) {
  return Handle(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "creating " + path));
}

Handle open_file(const std::string& path, bool writable) {
  return Handle(check(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT), "opening " + path));
}

bool is_hdf5(const std::string& path) { return H5Fis_hdf5(path.c_str()) > 0; }

Handle create_sealable_file(const std::string& name) {
  Handle fcpl(check(H5Pcreate(H5P_FILE_CREATE), "file creation properties"));
  check_status(H5Pset_userblock(fcpl.id(), kSealBytes), "user block");
  Handle fapl = memory_access();
  return Handle(check(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, fcpl.id(), fapl.id()), "creating " + name));
}

Handle open_image(const std::string& name, const std::vector<char>& bytes, bool writable) {
  Handle fapl = memory_access();
  check_status(H5Pset_file_image(fapl.id(), const_cast<char*>(bytes.data()), bytes.size()), "file image");  // copied
  // HDF5 refuses to open an image under the name of a file that exists on disk.
  const std::string image_name = name + "#in-memory";
  return Handle(
      check(H5Fopen(image_name.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.id()), "opening " + name));
}

std::vector<char> file_image(const Handle& file) {
  check_status(H5Fflush(file.id(), H5F_SCOPE_LOCAL), "flushing file");
  const ssize_t n = H5Fget_file_image(file.id(), nullptr, 0);
  check(n < 0 ? -1 : 0, "sizing file image");
  std::vector<char> bytes(static_cast<size_t>(n));
  check(H5Fget_file_image(file.id(), bytes.data(), bytes.size()) != n ? -1 : 0, "copying file image");
  return bytes;
}

void flush(const Handle& file) { check_status(H5Fflush(file.id(), H5F_SCOPE_GLOBAL), "flushing file"); }

namespace {

// The image of the file `open` gives after `build` fills it; any failure is the one line
// "cannot write '<path>': <reason>".
std::vector<char> build_image(const std::string& path, const std::string& advice, const std::function<Handle()>& open,
                              const std::function<void(const Handle& file)>& build) {
  std::vector<char> image;
  as_write(path, advice, [&] {
    Handle file = open();
    build(file);
    image = file_image(file);
  });
  return image;
}

}  // namespace

void write_sealed_file(const std::string& path, const std::string& kind, const std::string& advice,
                       const std::function<void(const Handle& file)>& build) {
  const auto body = build_image(
      path, advice, [&] { return create_sealable_file(path); }, build);
  write_sealed(path, kind, body, advice);
}

void update_sealed_file(const std::string& path, const std::string& kind, const std::string& what,
                        const std::string& advice, const std::function<void(const Handle& file)>& build) {
  std::vector<char> current = read_sealed(path, kind, what);
  const auto body = build_image(
      path, advice,
      [&] {
    Handle file = open_image(path, current, true);
    std::vector<char>().swap(current);  // HDF5 holds its own copy now
    return file;
      },
      build);
  write_sealed(path, kind, body, advice);
}

Handle open_sealed_file(const std::string& path, const std::string& kind, const std::string& what,
                        const std::string& advice) {
  const std::vector<char> bytes = read_sealed(path, kind, what, advice);
  try {
    return open_image(path, bytes, false);
  } catch (const Error& e) {
    // Sealed by dualnet yet unreadable: written by a faulty dualnet; say so rather than crash.
    throw UsageError(what + " '" + path + "' cannot be parsed although its checksum matches: " + e.what());
  }
}

Handle create_group(const Handle& parent, const std::string& name) {
  return Handle(
      check(H5Gcreate2(parent.id(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "creating group " + name));
}

Handle open_group(const Handle& parent, const std::string& name) {
  return Handle(check(H5Gopen2(parent.id(), name.c_str(), H5P_DEFAULT), "opening group " + name));
}

Handle open_dataset(const Handle& parent, const std::string& name) {
  return Handle(check(H5Dopen2(parent.id(), name.c_str(), H5P_DEFAULT), "opening dataset " + name));
}

bool exists(const Handle& parent, const std::string& name) {
  return H5Lexists(parent.id(), name.c_str(), H5P_DEFAULT) > 0;
}

void write_attr(const Handle& obj, const std::string& name, const std::string& value) {
  Handle type(check(H5Tcopy(H5T_C_S1), "string type"));
  check_status(H5Tset_size(type.id(), H5T_VARIABLE), "string size");
  check_status(H5Tset_cset(type.id(), H5T_CSET_UTF8), "string charset");
  Handle space(check(H5Screate(H5S_SCALAR), "scalar space"));
  if (H5Aexists(obj.id(), name.c_str()) > 0) check_status(H5Adelete(obj.id(), name.c_str()), "deleting " + name);
  Handle attr(check(H5Acreate2(obj.id(), name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT),
                    "creating attribute " + name));
  const char* p = value.c_str();
  check_status(H5Awrite(attr.id(), type.id(), &p), "writing attribute " + name);
}

namespace {

void write_scalar_attr(const Handle& obj, const std::string& name, hid_t file_type, hid_t mem_type, const void* v) {
  Handle space(check(H5Screate(H5S_SCALAR), "scalar space"));
  if (H5Aexists(obj.id(), name.c_str()) > 0) check_status(H5Adelete(obj.id(), name.c_str()), "deleting " + name);
  Handle attr(check(H5Acreate2(obj.id(), name.c_str(), file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                    "creating attribute " + name));
  check_status(H5Awrite(attr.id(), mem_type, v), "writing attribute " + name);
}

template <class T>
T read_scalar_attr(const Handle& obj, const std::string& name, H5T_class_t cls, hid_t mem_type, const char* kind) {
  if (!has_attr(obj, name)) throw RuntimeError("HDF5: " + object_name(obj) + " has no attribute '" + name + "'");
  Handle attr(check(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT), "opening attribute " + name));
  Handle ftype(check(H5Aget_type(attr.id()), "attribute type"));
  if (H5Tget_class(ftype.id()) != cls)
    throw RuntimeError("HDF5: attribute '" + name + "' of " + object_name(obj) + " is not " + kind);
  T v{};
  check_status(H5Aread(attr.id(), mem_type, &v), "reading attribute " + name);
  return v;
}

}  // namespace

void write_attr(const Handle& obj, const std::string& name, std::int64_t value) {
  write_scalar_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void write_attr(const Handle& obj, const std::string& name, double value) {
  write_scalar_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

bool has_attr(const Handle& obj, const std::string& name) { return H5Aexists(obj.id(), name.c_str()) > 0; }

std::string read_attr_string(const Handle& obj, const std::string& name) {
  if (!has_attr(obj, name)) throw RuntimeError("HDF5: " + object_name(obj) + " has no attribute '" + name + "'");
  Handle attr(check(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT), "opening attribute " + name));
  Handle ftype(check(H5Aget_type(attr.id()), "attribute type"));
  if (H5Tget_class(ftype.id()) != H5T_STRING)
    throw RuntimeError("HDF5: attribute '" + name + "' of " + object_name(obj) + " is not a string");
  if (H5Tis_variable_str(ftype.id()) > 0) {
    Handle mtype(check(H5Tcopy(H5T_C_S1), "string type"));
    check_status(H5Tset_size(mtype.id(), H5T_VARIABLE), "string size");
    check_status(H5Tset_cset(mtype.id(), H5Tget_cset(ftype.id())), "string charset");
    char* p = nullptr;
    check_status(H5Aread(attr.id(), mtype.id(), &p), "reading attribute " + name);
    std::string s = p ? p : "";
    Handle space(check(H5Aget_space(attr.id()), "attribute space"));
    H5Dvlen_reclaim(mtype.id(), space.id(), H5P_DEFAULT, &p);
    return s;
  }
  const size_t n = H5Tget_size(ftype.id());
  std::string s(n, '\0');
  check_status(H5Aread(attr.id(), ftype.id(), s.data()), "reading attribute " + name);
  return s.substr(0, s.find('\0'));
}

std::int64_t read_attr_int(const Handle& obj, const std::string& name) {
  return read_scalar_attr<std::int64_t>(obj, name, H5T_INTEGER, H5T_NATIVE_INT64, "an integer");
}

double read_attr_double(const Handle& obj, const std::string& name) {
  return read_scalar_attr<double>(obj, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, "a number");
}

namespace {

Handle write_fixed(const Handle& parent, const std::string& name, const std::vector<hsize_t>& dims, hid_t file_type,
                   hid_t mem_type, const void* data) {
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "dataspace"));
  Handle ds(check(H5Dcreate2(parent.id(), name.c_str(), file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                  "creating dataset " + name));
  check_status(H5Dwrite(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "writing dataset " + name);
  return ds;
}

template <class T>
std::vector<T> read_all(const Handle& parent, const std::string& name, hid_t mem_type) {
  Handle ds = open_dataset(parent, name);
  hsize_t n = 1;
  for (auto d : shape(ds)) n *= d;
  std::vector<T> v(n);
  if (n > 0) check_status(H5Dread(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "reading " + name);
  return v;
}

}  // namespace

Handle write_dataset(const Handle& parent, const std::string& name, const std::vector<hsize_t>& dims,
                     const double* data) {
  return write_fixed(parent, name, dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data);
}

Handle write_dataset(const Handle& parent, const std::string& name, const std::vector<hsize_t>& dims,
                     const std::int64_t* data) {
  return write_fixed(parent, name, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, data);
}

std::vector<double> read_doubles(const Handle& parent, const std::string& name) {
  return read_all<double>(parent, name, H5T_NATIVE_DOUBLE);
}

std::vector<std::int64_t> read_ints(const Handle& parent, const std::string& name) {
  return read_all<std::int64_t>(parent, name, H5T_NATIVE_INT64);
}

std::vector<hsize_t> shape(const Handle& dataset) {
  Handle space(check(H5Dget_space(dataset.id()), "dataset space"));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  check(rank, "dataset rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  return dims;
}

Handle create_rows(const Handle& parent, const std::string& name, const std::vector<hsize_t>& row_dims, hid_t type) {
  std::vector<hsize_t> dims{0}, maxdims{H5S_UNLIMITED}, chunk{1};
  for (auto d : row_dims) {
    dims.push_back(d);
    maxdims.push_back(d);
    chunk.push_back(d > 0 ? d : 1);
  }
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), maxdims.data()), "dataspace"));
  Handle props(check(H5Pcreate(H5P_DATASET_CREATE), "dataset properties"));
  check_status(H5Pset_chunk(props.id(), static_cast<int>(chunk.size()), chunk.data()), "chunking " + name);
  if (H5Tequal(type, H5T_NATIVE_DOUBLE) > 0) {
    const double nan = __builtin_nan("");
    check_status(H5Pset_fill_value(props.id(), H5T_NATIVE_DOUBLE, &nan), "fill value " + name);
  }
  const hid_t file_type = H5Tequal(type, H5T_NATIVE_DOUBLE) > 0 ? H5T_IEEE_F64LE : H5T_STD_I64LE;
  return Handle(
      check(H5Dcreate2(parent.id(), name.c_str(), file_type, space.id(), H5P_DEFAULT, props.id(), H5P_DEFAULT),
            "creating dataset " + name));
}

hsize_t row_count(const Handle& dataset) { return shape(dataset).at(0); }

void set_row_count(const Handle& dataset, hsize_t rows) {
  auto dims = shape(dataset);
  dims[0] = rows;
  check_status(H5Dset_extent(dataset.id(), dims.data()), "resizing dataset");
}

void write_row(const Handle& dataset, hsize_t row, const void* data, hid_t type) {
  auto dims = shape(dataset);
  if (dims[0] <= row) {
    dims[0] = row + 1;
    check_status(H5Dset_extent(dataset.id(), dims.data()), "extending dataset");
  }
  Handle file_space(check(H5Dget_space(dataset.id()), "dataset space"));
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = row;
  count[0] = 1;
  check_status(H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
               "selecting row");
  Handle mem_space(check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), "row space"));
  check_status(H5Dwrite(dataset.id(), type, mem_space.id(), file_space.id(), H5P_DEFAULT, data), "writing row");
}

void make_scale(const Handle& dataset, const std::string& dim_name) {
  check_status(H5DSset_scale(dataset.id(), dim_name.c_str()), "making dimension scale " + dim_name);
}

void attach_scale(const Handle& dataset, const Handle& scale, unsigned axis) {
  check_status(H5DSattach_scale(dataset.id(), scale.id(), axis), "attaching dimension scale");
}

}  // namespace dualnet::h5
