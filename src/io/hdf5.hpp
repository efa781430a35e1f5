#pragma once
// A thin RAII layer over the HDF5 C API: every call is checked, failures throw with the
// call and the file named. Only what dualnet needs: groups, string/int attributes, fixed
// and row-extendible datasets of double/int64, and dimension scales for named axes.
// Files dualnet keeps are handled as in-memory images (see create_sealable_file): HDF5
// never writes them to disk itself.
#include <hdf5.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dualnet::h5 {

// Owns one HDF5 identifier and closes it with the right H5*close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { close(); }
  hid_t id() const { return id_; }
  void close();

 private:
  hid_t id_ = -1;
};

// Silences HDF5's own error printing; dualnet reports errors itself, one line each.
void quiet_errors();

Handle create_file(const std::string& path);  // truncates
Handle open_file(const std::string& path, bool writable);
bool is_hdf5(const std::string& path);
void flush(const Handle& file);

// A new HDF5 file held in memory (the core driver, no backing store) whose addresses start
// after a kSealBytes user block, for a sealed file (io/sealed_file.hpp). HDF5 never writes
// it to disk: dualnet writes file_image() itself, so a full disk is an error dualnet
// reports, never a failed H5Fclose (HDF5 1.10 keeps a half-freed file after one and
// crashes at exit). `name` only names the file in messages.
Handle create_sealable_file(const std::string& name);
// Opens the bytes of a whole sealed file (user block included), in memory, as above. The
// file `name` + "#in-memory" must not exist (HDF5 refuses to open an image under the name
// of a file on disk).
Handle open_image(const std::string& name, const std::vector<char>& bytes, bool writable);
// Everything after the user block, as it would be on disk; flushes the file first.
std::vector<char> file_image(const Handle& file);

// Writes the sealed file `path` whole: `build` fills a new in-memory file, which then
// replaces `path` atomically (write_sealed). Any failure is one RuntimeError line
// "cannot write '<path>': <reason>[; <advice>]" and leaves `path` as it was.
void write_sealed_file(const std::string& path, const std::string& kind, const std::string& advice,
                       const std::function<void(const Handle& file)>& build);
// The same, starting from the current `path` (checked first: a UsageError "<what> '<path>'
// ..." if it is damaged), e.g. to append a row: a sealed file is never changed in place.
void update_sealed_file(const std::string& path, const std::string& kind, const std::string& what,
                        const std::string& advice, const std::function<void(const Handle& file)>& build);
// A sealed file opened read-only in memory after its check (refusals as in read_sealed).
Handle open_sealed_file(const std::string& path, const std::string& kind, const std::string& what,
                        const std::string& advice = "");

Handle create_group(const Handle& parent, const std::string& name);
Handle open_group(const Handle& parent, const std::string& name);
Handle open_dataset(const Handle& parent, const std::string& name);
bool exists(const Handle& parent, const std::string& name);

void write_attr(const Handle& obj, const std::string& name, const std::string& value);
void write_attr(const Handle& obj, const std::string& name, std::int64_t value);
void write_attr(const Handle& obj, const std::string& name, double value);
bool has_attr(const Handle& obj, const std::string& name);
std::string read_attr_string(const Handle& obj, const std::string& name);
std::int64_t read_attr_int(const Handle& obj, const std::string& name);
double read_attr_double(const Handle& obj, const std::string& name);

// A dataset of fixed shape, written whole.
Handle write_dataset(const Handle& parent, const std::string& name, const std::vector<hsize_t>& dims,
                     const double* data);
Handle write_dataset(const Handle& parent, const std::string& name, const std::vector<hsize_t>& dims,
                     const std::int64_t* data);
std::vector<double> read_doubles(const Handle& parent, const std::string& name);
std::vector<std::int64_t> read_ints(const Handle& parent, const std::string& name);
std::vector<hsize_t> shape(const Handle& dataset);

// A dataset whose first axis grows one row at a time: shape [rows, row_dims...].
Handle create_rows(const Handle& parent, const std::string& name, const std::vector<hsize_t>& row_dims, hid_t type);
hsize_t row_count(const Handle& dataset);
void set_row_count(const Handle& dataset, hsize_t rows);  // grows or truncates
void write_row(const Handle& dataset, hsize_t row, const void* data, hid_t type);

// Dimension scales, so xarray (h5netcdf) shows named axes.
void make_scale(const Handle& dataset, const std::string& dim_name);
void attach_scale(const Handle& dataset, const Handle& scale, unsigned axis);

}  // namespace dualnet::h5
