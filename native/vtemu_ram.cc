// vtemu guest-RAM addon.
//
// One anonymous MAP_NORESERVE mapping holds all of guest RAM: the kernel
// backs a page only when it is first written, so `-m 64G` costs address
// space, not memory.  JavaScript sees the mapping as 1 GiB chunks (the last
// one may be smaller), each an external ArrayBuffer over its part of the
// mapping, and gets bulk operations (copy in/out, memmove, fill, compare)
// that run in one native call.
//
// Lifetime: the mapping is reference counted.  The JS object owns one
// reference and every chunk ArrayBuffer handed out owns one; the last one
// to be collected unmaps.  So a chunk that outlives its RAM object still
// points at mapped memory.
//
// Safety: every offset and length arrives as a JS number and is checked
// here, with 64-bit arithmetic that cannot overflow, before any byte is
// touched; a bad one throws a RangeError.  No argument can make this code
// read or write outside the mapping or outside the caller's typed array.

#include <napi.h>

#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

namespace {

// log2 of the chunk size handed to JavaScript (1 GiB).
constexpr unsigned kChunkShift = 30;
constexpr uint64_t kChunkSize = uint64_t{1} << kChunkShift;
// Guest RAM sizes are whole 4 KiB pages.
constexpr uint64_t kPageSize = 4096;
// Zero fills at least this long discard pages rather than write them.
constexpr uint64_t kZeroByDiscard = 64 * 1024;
// Largest integer a JS number holds exactly.
constexpr double kMaxSafeInteger = 9007199254740992.0;  // 2^53

// The mapping and its reference count.
struct Mapping {
  uint8_t* base;
  uint64_t size;
  std::atomic<uint64_t> refs;

  Mapping(uint8_t* b, uint64_t s) : base(b), size(s), refs(1) {}

  void Ref() { refs.fetch_add(1, std::memory_order_relaxed); }

  void Unref() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      munmap(base, size);
      delete this;
    }
  }
};

// Finalizer of a chunk ArrayBuffer: drops the chunk's reference.
void ReleaseChunk(Napi::Env /*env*/, void* /*data*/, Mapping* mapping) {
  mapping->Unref();
}

// Reads argument `index` as an exact non-negative integer <= 2^53.  On
// failure throws a RangeError (or TypeError) and returns false.
bool ToU64(const Napi::CallbackInfo& info, size_t index, const char* what, uint64_t* out) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsNumber()) {
    Napi::TypeError::New(env, std::string("vtemu_ram: ") + what + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  double v = info[index].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v < 0 || v > kMaxSafeInteger || std::floor(v) != v) {
    Napi::RangeError::New(env, std::string("vtemu_ram: ") + what + " must be an integer in 0..2^53")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<uint64_t>(v);
  return true;
}

// Reads argument `index` as a Uint8Array.
bool ToBytes(const Napi::CallbackInfo& info, size_t index, uint8_t** data, uint64_t* length) {
  if (index >= info.Length() || !info[index].IsTypedArray() ||
      info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(info.Env(), "vtemu_ram: expected a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array a = info[index].As<Napi::Uint8Array>();
  *data = a.Data();
  *length = a.ElementLength();
  return true;
}

// The JS-visible RAM object.
class Ram : public Napi::ObjectWrap<Ram> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeRam",
                       {
                           InstanceAccessor<&Ram::Size>("size"),
                           InstanceAccessor<&Ram::ChunkCount>("chunkCount"),
                           InstanceMethod<&Ram::Chunk>("chunk"),
                           InstanceMethod<&Ram::CopyOut>("copyOut"),
                           InstanceMethod<&Ram::CopyIn>("copyIn"),
                           InstanceMethod<&Ram::CopyWithin>("copyWithin"),
                           InstanceMethod<&Ram::Fill>("fill"),
                           InstanceMethod<&Ram::Compare>("compare"),
                       });
  }

  // new NativeRam(size): size a positive multiple of 4096.
  explicit Ram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Ram>(info) {
    uint64_t size = 0;
    if (!ToU64(info, 0, "size", &size)) return;
    if (size == 0 || size % kPageSize != 0) {
      Napi::RangeError::New(info.Env(), "vtemu_ram: size must be a positive multiple of 4096")
          .ThrowAsJavaScriptException();
      return;
    }
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      Napi::Error::New(info.Env(), "vtemu_ram: cannot reserve " + std::to_string(size) + " bytes of address space")
          .ThrowAsJavaScriptException();
      return;
    }
    mapping_ = new Mapping(static_cast<uint8_t*>(p), size);
  }

  ~Ram() override {
    if (mapping_) mapping_->Unref();
  }

 private:
  // False (with a JS exception pending) when construction failed.
  bool Ready(const Napi::CallbackInfo& info) {
    if (mapping_) return true;
    Napi::Error::New(info.Env(), "vtemu_ram: no mapping").ThrowAsJavaScriptException();
    return false;
  }

  // True when [offset, offset+length) lies inside the mapping; throws otherwise.
  bool InRange(const Napi::CallbackInfo& info, uint64_t offset, uint64_t length) {
    const uint64_t size = mapping_->size;
    if (offset <= size && length <= size - offset) return true;
    Napi::RangeError::New(info.Env(), "vtemu_ram: range " + std::to_string(offset) + "+" + std::to_string(length) +
                                          " outside 0.." + std::to_string(size))
        .ThrowAsJavaScriptException();
    return false;
  }

  // Reads the (offset, Uint8Array) arguments of copyOut/copyIn/compare and
  // checks that [offset, offset + array length) lies inside the mapping.
  bool OffsetAndBytes(const Napi::CallbackInfo& info, uint64_t* offset, uint8_t** data, uint64_t* length) {
    return Ready(info) && ToU64(info, 0, "offset", offset) && ToBytes(info, 1, data, length) &&
           InRange(info, *offset, *length);
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    if (!Ready(info)) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), static_cast<double>(mapping_->size));
  }

  Napi::Value ChunkCount(const Napi::CallbackInfo& info) {
    if (!Ready(info)) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), static_cast<double>((mapping_->size + kChunkSize - 1) >> kChunkShift));
  }

  // chunk(index) -> ArrayBuffer over [index << 30, min(size, (index+1) << 30)).
  Napi::Value Chunk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Ready(info)) return env.Undefined();
    uint64_t index = 0;
    if (!ToU64(info, 0, "chunk index", &index)) return env.Undefined();
    const uint64_t count = (mapping_->size + kChunkSize - 1) >> kChunkShift;
    if (index >= count) {
      Napi::RangeError::New(env, "vtemu_ram: chunk index out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const uint64_t start = index << kChunkShift;
    const uint64_t rest = mapping_->size - start;
    const uint64_t length = rest < kChunkSize ? rest : kChunkSize;
    mapping_->Ref();
    napi_value buf = nullptr;
    napi_status st = napi_create_external_arraybuffer(
        env, mapping_->base + start, static_cast<size_t>(length),
        [](napi_env e, void* data, void* hint) { ReleaseChunk(Napi::Env(e), data, static_cast<Mapping*>(hint)); },
        mapping_, &buf);
    if (st != napi_ok) {
      mapping_->Unref();
      Napi::Error::New(env, "vtemu_ram: external ArrayBuffers are not allowed in this runtime")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Value(env, buf);
  }

  // copyOut(offset, dst): RAM -> dst.
  Napi::Value CopyOut(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t offset = 0, length = 0;
    uint8_t* data = nullptr;
    if (!OffsetAndBytes(info, &offset, &data, &length)) return env.Undefined();
    if (length) std::memmove(data, mapping_->base + offset, length);
    return env.Undefined();
  }

  // copyIn(offset, src): src -> RAM.
  Napi::Value CopyIn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t offset = 0, length = 0;
    uint8_t* data = nullptr;
    if (!OffsetAndBytes(info, &offset, &data, &length)) return env.Undefined();
    if (length) std::memmove(mapping_->base + offset, data, length);
    return env.Undefined();
  }

  // copyWithin(dst, src, length): memmove inside RAM.
  Napi::Value CopyWithin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t dst = 0, src = 0, length = 0;
    if (!Ready(info) || !ToU64(info, 0, "destination", &dst) || !ToU64(info, 1, "source", &src) ||
        !ToU64(info, 2, "length", &length) || !InRange(info, dst, length) || !InRange(info, src, length)) {
      return env.Undefined();
    }
    if (length) std::memmove(mapping_->base + dst, mapping_->base + src, length);
    return env.Undefined();
  }

  // fill(offset, length, byte): memset; the value is taken modulo 256.
  Napi::Value Fill(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t offset = 0, length = 0;
    if (!Ready(info) || !ToU64(info, 0, "offset", &offset) || !ToU64(info, 1, "length", &length) ||
        !InRange(info, offset, length)) {
      return env.Undefined();
    }
    if (info.Length() < 3 || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "vtemu_ram: fill value must be a number").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const int value = static_cast<int>(static_cast<uint32_t>(info[2].As<Napi::Number>().Int32Value()) & 0xffu);
    if (length == 0) return env.Undefined();
    uint8_t* p = mapping_->base + offset;
    if (value == 0 && length >= kZeroByDiscard) {
      // Zeroing whole pages: give them back instead of writing them.  A
      // private anonymous page reads as zeros again after MADV_DONTNEED,
      // so zeroing a large range does not make it resident.
      const uint64_t first = (offset + kPageSize - 1) & ~(kPageSize - 1);
      const uint64_t last = (offset + length) & ~(kPageSize - 1);
      if (last > first && madvise(mapping_->base + first, last - first, MADV_DONTNEED) == 0) {
        std::memset(p, 0, first - offset);
        std::memset(mapping_->base + last, 0, offset + length - last);
        return env.Undefined();
      }
    }
    std::memset(p, value, length);
    return env.Undefined();
  }

  // compare(offset, bytes) -> true when RAM at offset equals bytes.
  Napi::Value Compare(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t offset = 0, length = 0;
    uint8_t* data = nullptr;
    if (!OffsetAndBytes(info, &offset, &data, &length)) return env.Undefined();
    const bool same = length == 0 || std::memcmp(mapping_->base + offset, data, length) == 0;
    return Napi::Boolean::New(env, same);
  }

  Mapping* mapping_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeRam", Ram::Define(env));
  exports.Set("chunkShift", Napi::Number::New(env, kChunkShift));
  return exports;
}

}  // namespace

NODE_API_MODULE(vtemu_ram, Init)
