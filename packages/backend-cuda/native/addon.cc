// The Node-API surface of the CUDA backend. Everything runs on one non-blocking stream of device 0:
// allocation (stream-ordered, from the device's memory pool), uploads, kernel launches and frees are
// enqueued and return at once; only read() and synchronize() wait, on a libuv worker thread, and resolve
// a promise. Device pointers cross into JavaScript as Numbers (user-space addresses fit in 53 bits).
//
// Errors: every CUDA failure throws (or rejects with) an Error whose message names the call and the CUDA
// error string, with `cudaError` (the number) and `cudaErrorName` set, so the JavaScript side can make a
// typed DeviceError of it. Nothing here aborts the process: init() reports a missing driver or device
// as a value instead of throwing.
#include <napi.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attention.cuh"
#include "kernels.h"
#include "training.h"

namespace {

struct State {
  bool ready = false;
  int device = 0;
  dtx::DeviceLimits limits{1, 48 * 1024};
  bool force_simt = false;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  // Page-locked staging buffers for readback, reused (device-to-host copies into pageable memory would
  // block the calling thread). Only the main thread touches this list.
  std::vector<std::pair<void*, size_t>> pinned;
  size_t pinned_bytes = 0;
};
State state;

constexpr size_t kPinnedCacheBytes = size_t(256) << 20;
// Reads larger than the cache go through one staging buffer of this size, chunk by chunk.
constexpr size_t kReadChunkBytes = size_t(64) << 20;

Napi::Error cuda_error(Napi::Env env, const std::string& what, cudaError_t error) {
  // A non-sticky error (e.g. out of memory) is also the "last error": clear it so later calls start clean.
  cudaGetLastError();
  Napi::Error e = Napi::Error::New(env, what + ": " + cudaGetErrorString(error) + " (" + cudaGetErrorName(error) + ")");
  e.Set("cudaError", Napi::Number::New(env, static_cast<double>(error)));
  e.Set("cudaErrorName", Napi::String::New(env, cudaGetErrorName(error)));
  return e;
}

void check(Napi::Env env, const char* what, cudaError_t error) {
  if (error != cudaSuccess) throw cuda_error(env, what, error);
}

// Every entry point starts here. A non-sticky error that an earlier call left behind (one whose status was
// not checked, such as a stream-ordered free) is cleared, so a launcher's cudaGetLastError() reports its own.
void begin(Napi::Env env) {
  if (!state.ready) throw Napi::Error::New(env, "the CUDA backend is not initialised (call init() first)");
  cudaGetLastError();
}

template <typename T = void>
T* pointer(const Napi::Value& v) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(v.As<Napi::Number>().Int64Value()));
}
int64_t integer(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }
int int32(const Napi::Value& v) { return v.As<Napi::Number>().Int32Value(); }
float real(const Napi::Value& v) { return v.As<Napi::Number>().FloatValue(); }
bool flag(const Napi::Value& v) { return v.ToBoolean().Value(); }

// ---- init ----------------------------------------------------------------------------------------------

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  cudaRuntimeGetVersion(&runtime);
  result.Set("driverVersion", driver);
  result.Set("runtimeVersion", runtime);
  auto fail = [&](const std::string& stage, cudaError_t error) {
    cudaGetLastError();
    result.Set("ok", false);
    result.Set("stage", stage);
    result.Set("cudaError", static_cast<double>(error));
    result.Set("cudaErrorName", cudaGetErrorName(error));
    result.Set("message", cudaGetErrorString(error));
    return result;
  };
  if (state.ready) {
    result.Set("ok", true);
  } else {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return fail("cudaGetDeviceCount", e);
    result.Set("deviceCount", count);
    if (count == 0) return fail("cudaGetDeviceCount", cudaErrorNoDevice);
    if ((e = cudaSetDevice(state.device)) != cudaSuccess) return fail("cudaSetDevice", e);
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, state.device)) != cudaSuccess) return fail("cudaGetDeviceProperties", e);
    result.Set("name", prop.name);
    result.Set("major", prop.major);
    result.Set("minor", prop.minor);
    result.Set("multiprocessors", prop.multiProcessorCount);
    result.Set("totalMemory", static_cast<double>(prop.totalGlobalMem));
    result.Set("sharedMemoryPerBlock", static_cast<double>(prop.sharedMemPerBlockOptin));
    if (prop.major < 8) {
      result.Set("ok", false);
      result.Set("stage", "compute capability");
      result.Set("message", "compute capability " + std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                                " is below 8.0: the kernels need Ampere (sm_80) or newer");
      return result;
    }
    if ((e = cudaStreamCreateWithFlags(&state.stream, cudaStreamNonBlocking)) != cudaSuccess)
      return fail("cudaStreamCreate", e);
    if ((e = cudaDeviceGetDefaultMemPool(&state.pool, state.device)) != cudaSuccess)
      return fail("cudaDeviceGetDefaultMemPool", e);
    // Keep freed blocks in the pool instead of returning them to the driver at every synchronisation.
    uint64_t threshold = UINT64_MAX;
    cudaMemPoolSetAttribute(state.pool, cudaMemPoolAttrReleaseThreshold, &threshold);
    // A first allocation, kernel and readback: proves that the driver runs our kernels on this device.
    void* probe = nullptr;
    if ((e = cudaMallocAsync(&probe, 256, state.stream)) != cudaSuccess) return fail("cudaMallocAsync", e);
    if ((e = dtx::add(probe, probe, probe, 64, dtx::kFloat32, state.stream)) != cudaSuccess) {
      cudaFreeAsync(probe, state.stream);
      return fail("kernel launch", e);
    }
    cudaFreeAsync(probe, state.stream);
    if ((e = cudaStreamSynchronize(state.stream)) != cudaSuccess) return fail("cudaStreamSynchronize", e);
    int shared_optin = 0;
    if (cudaDeviceGetAttribute(&shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, state.device) != cudaSuccess)
      shared_optin = static_cast<int>(prop.sharedMemPerBlock);
    state.limits = dtx::DeviceLimits{prop.multiProcessorCount, shared_optin};
    const char* path = std::getenv("DIFFTX_CUDA_ATTENTION");
    state.force_simt = path != nullptr && std::strcmp(path, "simt") == 0;
    state.ready = true;
    result.Set("ok", true);
  }
  result.Set("forceSimt", state.force_simt);
  return result;
}

// ---- memory --------------------------------------------------------------------------------------------

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  const size_t bytes = static_cast<size_t>(integer(info[0]));
  void* p = nullptr;
  const cudaError_t e = dtx::allocate_async(&p, bytes, state.stream);  // trims the pool and retries once
  if (e != cudaSuccess) throw cuda_error(env, "cudaMallocAsync(" + std::to_string(bytes) + " bytes)", e);
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(p)));
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  // Stream-ordered: kernels already enqueued that read this memory still see it.
  check(env, "cudaFreeAsync", cudaFreeAsync(pointer(info[0]), state.stream));
  return env.Undefined();
}

Napi::Value Zero(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "cudaMemsetAsync", cudaMemsetAsync(pointer(info[0]), 0, static_cast<size_t>(integer(info[1])), state.stream));
  return env.Undefined();
}

// upload(pointer, Float32Array | Int32Array, dtype): float16/bfloat16 are converted on the device.
Napi::Value Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  void* device = pointer(info[0]);
  Napi::TypedArray array = info[1].As<Napi::TypedArray>();
  const int dtype = int32(info[2]);
  const size_t count = array.ElementLength();
  if (count == 0) return env.Undefined();
  const uint8_t* host = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  // From pageable memory the copy returns once the data is staged, so the caller may reuse its array.
  if (dtype == dtx::kFloat32 || dtype == dtx::kInt32) {
    check(env, "cudaMemcpyAsync (upload)", cudaMemcpyAsync(device, host, count * 4, cudaMemcpyHostToDevice, state.stream));
    return env.Undefined();
  }
  void* staging = nullptr;
  check(env, "cudaMallocAsync (upload staging)", dtx::allocate_async(&staging, count * 4, state.stream));
  cudaError_t e = cudaMemcpyAsync(staging, host, count * 4, cudaMemcpyHostToDevice, state.stream);
  if (e == cudaSuccess) e = dtx::convert(staging, dtx::kFloat32, device, dtype, static_cast<int64_t>(count), state.stream);
  cudaFreeAsync(staging, state.stream);
  check(env, "upload", e);
  return env.Undefined();
}

// copy2d(dst, dstPitch, src, srcPitch, widthBytes, rows): narrow and cacheWrite are strided copies.
Napi::Value Copy2D(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  const size_t width = static_cast<size_t>(integer(info[4])), rows = static_cast<size_t>(integer(info[5]));
  if (width == 0 || rows == 0) return env.Undefined();
  if (rows == 1) {
    check(env, "cudaMemcpyAsync", cudaMemcpyAsync(pointer(info[0]), pointer(info[2]), width, cudaMemcpyDeviceToDevice, state.stream));
    return env.Undefined();
  }
  const size_t dst_pitch = static_cast<size_t>(integer(info[1])), src_pitch = static_cast<size_t>(integer(info[3]));
  uint8_t* dst = pointer<uint8_t>(info[0]);
  const uint8_t* src = pointer<const uint8_t>(info[2]);
  // cudaMemcpy2DAsync refuses pitches above the device's limit (2³¹ − 1 bytes): a KV cache of more than 2 GiB
  // per batch entry, or logits of B > 1 long sequences. Then one copy per row: rows × pitch fits in device
  // memory, so there are few rows.
  constexpr size_t kMaxPitch = 0x7fffffff;
  if (dst_pitch > kMaxPitch || src_pitch > kMaxPitch) {
    for (size_t r = 0; r < rows; ++r)
      check(env, "cudaMemcpyAsync (a row of a strided copy)",
            cudaMemcpyAsync(dst + r * dst_pitch, src + r * src_pitch, width, cudaMemcpyDeviceToDevice, state.stream));
    return env.Undefined();
  }
  check(env, "cudaMemcpy2DAsync",
        cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice, state.stream));
  return env.Undefined();
}

std::pair<void*, size_t> acquire_pinned(Napi::Env env, size_t bytes) {
  size_t best = state.pinned.size();
  for (size_t i = 0; i < state.pinned.size(); ++i) {
    if (state.pinned[i].second >= bytes && (best == state.pinned.size() || state.pinned[i].second < state.pinned[best].second))
      best = i;
  }
  if (best < state.pinned.size()) {
    auto found = state.pinned[best];
    state.pinned.erase(state.pinned.begin() + static_cast<std::ptrdiff_t>(best));
    state.pinned_bytes -= found.second;
    return found;
  }
  size_t size = 4096;
  while (size < bytes) size <<= 1;
  void* p = nullptr;
  check(env, "cudaMallocHost (readback staging)", cudaMallocHost(&p, size));
  return {p, size};
}

void release_pinned(std::pair<void*, size_t> buffer) {
  state.pinned.push_back(buffer);
  state.pinned_bytes += buffer.second;
  while (state.pinned_bytes > kPinnedCacheBytes && !state.pinned.empty()) {
    size_t largest = 0;
    for (size_t i = 1; i < state.pinned.size(); ++i)
      if (state.pinned[i].second > state.pinned[largest].second) largest = i;
    cudaFreeHost(state.pinned[largest].first);
    state.pinned_bytes -= state.pinned[largest].second;
    state.pinned.erase(state.pinned.begin() + static_cast<std::ptrdiff_t>(largest));
  }
}

// One chunk of a large read, copied from the staging buffer into the result by a host function that runs in
// stream order: the next chunk's copy into the same staging buffer waits for it.
struct HostCopy {
  const void* from;
  void* to;
  size_t bytes;
};
void CUDART_CB copy_to_result(void* data) {
  const auto* c = static_cast<const HostCopy*>(data);
  std::memcpy(c->to, c->from, c->bytes);
}

// Waits for an event on a worker thread, then (for a read) copies the staged bytes into the result, unless host
// functions on the stream already did (`copies`, a large read).
class EventWorker : public Napi::AsyncWorker {
 public:
  EventWorker(Napi::Env env, cudaEvent_t event, std::pair<void*, size_t> staging, Napi::TypedArray result, size_t bytes,
              const char* what, std::unique_ptr<std::vector<HostCopy>> copies = nullptr)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), event_(event), staging_(staging),
        bytes_(bytes), what_(what), copies_(std::move(copies)) {
    if (bytes > 0) {
      result_ = Napi::Persistent(result);
      destination_ = static_cast<uint8_t*>(result.ArrayBuffer().Data()) + result.ByteOffset();
    }
  }
  ~EventWorker() override {
    cudaEventDestroy(event_);
    if (staging_.first) release_pinned(staging_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    error_ = cudaEventSynchronize(event_);
    if (error_ != cudaSuccess) {
      SetError("failed");
      return;
    }
    if (bytes_ > 0 && !copies_) std::memcpy(destination_, staging_.first, bytes_);
  }
  void OnOK() override {
    if (bytes_ > 0) deferred_.Resolve(result_.Value());
    else deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(cuda_error(Env(), what_, error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  cudaEvent_t event_;
  std::pair<void*, size_t> staging_;
  Napi::Reference<Napi::TypedArray> result_;
  uint8_t* destination_ = nullptr;
  size_t bytes_;
  const char* what_;
  std::unique_ptr<std::vector<HostCopy>> copies_;
  cudaError_t error_ = cudaSuccess;
};

cudaEvent_t record_event(Napi::Env env) {
  cudaEvent_t event = nullptr;
  check(env, "cudaEventCreate", cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  const cudaError_t e = cudaEventRecord(event, state.stream);
  if (e != cudaSuccess) {
    cudaEventDestroy(event);
    throw cuda_error(env, "cudaEventRecord", e);
  }
  return event;
}

// read(pointer, count, dtype) → Promise<Float32Array | Int32Array>. The copy is enqueued now (so it sees
// exactly the work enqueued before it); the wait happens on a worker thread.
Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  void* device = pointer(info[0]);
  const size_t count = static_cast<size_t>(integer(info[1]));
  const int dtype = int32(info[2]);
  const size_t bytes = count * 4;
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
  Napi::TypedArray result = dtype == dtx::kInt32 ? Napi::TypedArray(Napi::Int32Array::New(env, count, buffer, 0))
                                                 : Napi::TypedArray(Napi::Float32Array::New(env, count, buffer, 0));
  if (count == 0) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(result);
    return deferred.Promise();
  }
  const bool half = dtype == dtx::kFloat16 || dtype == dtx::kBFloat16;
  if (bytes > kPinnedCacheBytes) {
    // Chunk by chunk through one cached staging buffer: no page-locked allocation of the whole size, and no
    // cudaFreeHost of it afterwards (both synchronise the device).
    auto staging = acquire_pinned(env, kReadChunkBytes);
    uint8_t* destination = static_cast<uint8_t*>(buffer.Data());
    const size_t chunks = (bytes + kReadChunkBytes - 1) / kReadChunkBytes;
    auto copies = std::make_unique<std::vector<HostCopy>>();
    copies->reserve(chunks);  // the host functions hold pointers into it
    void* widened = nullptr;
    cudaError_t e = half ? dtx::allocate_async(&widened, kReadChunkBytes, state.stream) : cudaSuccess;
    for (size_t offset = 0; e == cudaSuccess && offset < bytes; offset += kReadChunkBytes) {
      const size_t n = bytes - offset < kReadChunkBytes ? bytes - offset : kReadChunkBytes;
      const size_t first = offset / 4;  // elements
      if (half) {
        e = dtx::convert(static_cast<const uint8_t*>(device) + first * 2, dtype, widened, dtx::kFloat32,
                         static_cast<int64_t>(n / 4), state.stream);
        if (e == cudaSuccess) e = cudaMemcpyAsync(staging.first, widened, n, cudaMemcpyDeviceToHost, state.stream);
      } else {
        e = cudaMemcpyAsync(staging.first, static_cast<const uint8_t*>(device) + offset, n, cudaMemcpyDeviceToHost,
                            state.stream);
      }
      if (e == cudaSuccess) {
        copies->push_back(HostCopy{staging.first, destination + offset, n});
        e = cudaLaunchHostFunc(state.stream, copy_to_result, &copies->back());
      }
    }
    if (widened) cudaFreeAsync(widened, state.stream);
    cudaEvent_t event = nullptr;
    if (e == cudaSuccess) {
      e = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
      if (e == cudaSuccess) e = cudaEventRecord(event, state.stream);
    }
    if (e != cudaSuccess) {
      // Host functions already enqueued still point at `copies` and the staging buffer: let them run first.
      cudaStreamSynchronize(state.stream);
      if (event) cudaEventDestroy(event);
      release_pinned(staging);
      throw cuda_error(env, "read", e);
    }
    auto* worker = new EventWorker(env, event, staging, result, bytes, "read", std::move(copies));
    worker->Queue();
    return worker->Promise();
  }
  auto staging = acquire_pinned(env, bytes);
  cudaError_t e = cudaSuccess;
  if (half) {
    void* widened = nullptr;
    e = dtx::allocate_async(&widened, bytes, state.stream);
    if (e == cudaSuccess) {
      e = dtx::convert(device, dtype, widened, dtx::kFloat32, static_cast<int64_t>(count), state.stream);
      if (e == cudaSuccess) e = cudaMemcpyAsync(staging.first, widened, bytes, cudaMemcpyDeviceToHost, state.stream);
      cudaFreeAsync(widened, state.stream);
    }
  } else {
    e = cudaMemcpyAsync(staging.first, device, bytes, cudaMemcpyDeviceToHost, state.stream);
  }
  if (e != cudaSuccess) {
    cudaStreamSynchronize(state.stream);  // a copy into the staging buffer may be enqueued
    release_pinned(staging);
    throw cuda_error(env, "read", e);
  }
  cudaEvent_t event;
  try {
    event = record_event(env);
  } catch (...) {
    cudaStreamSynchronize(state.stream);
    release_pinned(staging);
    throw;
  }
  auto* worker = new EventWorker(env, event, staging, result, bytes, "read");
  worker->Queue();
  return worker->Promise();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  auto* worker = new EventWorker(env, record_event(env), {nullptr, 0}, Napi::TypedArray(), 0, "synchronize");
  worker->Queue();
  return worker->Promise();
}

Napi::Value MemoryInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  size_t free_bytes = 0, total = 0;
  check(env, "cudaMemGetInfo", cudaMemGetInfo(&free_bytes, &total));
  uint64_t reserved = 0, used = 0;
  cudaMemPoolGetAttribute(state.pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
  cudaMemPoolGetAttribute(state.pool, cudaMemPoolAttrUsedMemCurrent, &used);
  Napi::Object o = Napi::Object::New(env);
  o.Set("free", static_cast<double>(free_bytes));
  o.Set("total", static_cast<double>(total));
  o.Set("poolReserved", static_cast<double>(reserved));
  o.Set("poolUsed", static_cast<double>(used));
  o.Set("pinnedCached", static_cast<double>(state.pinned_bytes));
  return o;
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state.ready) return env.Undefined();
  cudaStreamSynchronize(state.stream);
  for (auto& b : state.pinned) cudaFreeHost(b.first);
  state.pinned.clear();
  state.pinned_bytes = 0;
  cudaMemPoolTrimTo(state.pool, 0);
  cudaStreamDestroy(state.stream);
  state.stream = nullptr;
  state.ready = false;
  cudaGetLastError();
  return env.Undefined();
}

// ---- kernels -------------------------------------------------------------------------------------------

Napi::Value Add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "add", dtx::add(pointer(info[0]), pointer(info[1]), pointer(info[2]), integer(info[3]), int32(info[4]), state.stream));
  return env.Undefined();
}

Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "swiglu",
        dtx::swiglu(pointer(info[0]), pointer(info[1]), pointer(info[2]), integer(info[3]), int32(info[4]), state.stream));
  return env.Undefined();
}

Napi::Value Sigmoid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "sigmoid", dtx::sigmoid(pointer(info[0]), pointer(info[1]), integer(info[2]), int32(info[3]), state.stream));
  return env.Undefined();
}

// rmsNorm(x, weight | 0, weightDtype, out, rows, width, eps, dtype)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "rmsNorm",
        dtx::rms_norm(pointer(info[0]), pointer(info[1]), int32(info[2]), pointer(info[3]), integer(info[4]), int32(info[5]),
                      real(info[6]), int32(info[7]), state.stream));
  return env.Undefined();
}

// rotary(x, cos, sin, tableDtype, out, batch, tokens, heads, width, half, positionOffset, interleaved, dtype)
Napi::Value Rotary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "rotary",
        dtx::rotary(pointer(info[0]), pointer(info[1]), pointer(info[2]), int32(info[3]), pointer(info[4]), int32(info[5]),
                    int32(info[6]), int32(info[7]), int32(info[8]), int32(info[9]), int32(info[10]), flag(info[11]),
                    int32(info[12]), state.stream));
  return env.Undefined();
}

// embedding(table, ids, out, count, width, dtype)
Napi::Value Embedding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "embedding",
        dtx::embedding(pointer(info[0]), pointer<int32_t>(info[1]), pointer(info[2]), integer(info[3]), int32(info[4]),
                       int32(info[5]), state.stream));
  return env.Undefined();
}

// softmax(x, out, rows, width, inverseTemperature, dtype)
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "softmax",
        dtx::softmax(pointer(info[0]), pointer(info[1]), integer(info[2]), int32(info[3]), real(info[4]), int32(info[5]),
                     state.stream));
  return env.Undefined();
}

// argmax(x, out, rows, width, dtype)
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "argmax",
        dtx::argmax(pointer(info[0]), pointer<int32_t>(info[1]), integer(info[2]), int32(info[3]), int32(info[4]), state.stream));
  return env.Undefined();
}

// matmul(a, b, out, batches, m, n, k, transposeA, transposeB, bShared, dtype)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "matmul",
        dtx::matmul(pointer(info[0]), pointer(info[1]), pointer(info[2]), integer(info[3]), int32(info[4]), int32(info[5]),
                    int32(info[6]), flag(info[7]), flag(info[8]), flag(info[9]), int32(info[10]), state.limits,
                    state.stream));
  return env.Undefined();
}

// The attention parameters travel as one Float64Array, in this order (see src/kernels/attention.ts).
dtx::AttentionParams attention_params(const Napi::Value& v) {
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  auto ptr = [&](size_t i) { return reinterpret_cast<void*>(static_cast<uintptr_t>(a[i])); };
  dtx::AttentionParams p{};
  p.q = ptr(0);
  p.k = ptr(1);
  p.v = ptr(2);
  p.lambda = ptr(3);
  p.norm_weight = ptr(4);
  p.out = ptr(5);
  p.dtype = static_cast<int>(a[6]);
  p.lambda_dtype = static_cast<int>(a[7]);
  p.norm_weight_dtype = static_cast<int>(a[8]);
  p.batch = static_cast<int>(a[9]);
  p.tokens = static_cast<int>(a[10]);
  p.keys = static_cast<int>(a[11]);
  p.heads = static_cast<int>(a[12]);
  p.kv_heads = static_cast<int>(a[13]);
  p.key_heads = static_cast<int>(a[14]);
  p.dk = static_cast<int>(a[15]);
  p.dv = static_cast<int>(a[16]);
  p.diff = a[17] != 0;
  p.causal = a[18] != 0;
  p.lambda_per_token = a[19] != 0;
  p.norm = a[20] != 0;
  p.key_offset = static_cast<int>(a[21]);
  p.key_length = static_cast<int>(a[22]);
  p.scale = static_cast<float>(a[23]);
  p.eps = static_cast<float>(a[24]);
  p.output_scale = static_cast<float>(a[25]);
  if (a.ElementLength() > 27) {
    p.log_sum_exp = reinterpret_cast<float*>(static_cast<uintptr_t>(a[26]));
    p.map_outputs = reinterpret_cast<float*>(static_cast<uintptr_t>(a[27]));
  }
  return p;
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  const dtx::AttentionParams p = attention_params(info[0]);
  check(env, p.diff ? "diffAttention" : "attention", dtx::attention(p, state.force_simt, state.limits, state.stream));
  return env.Undefined();
}

// attentionPlan(params[, { multiprocessors, sharedMemoryPerBlock }]): what attention() would run on this device
// (or on the one described), { path: 'flash' | 'rows', splits, stages }. Tests and benchmarks report it.
Napi::Value AttentionPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  dtx::DeviceLimits limits = state.limits;
  if (info.Length() > 1 && info[1].IsObject()) {
    const Napi::Object o = info[1].As<Napi::Object>();
    limits = dtx::DeviceLimits{int32(o.Get("multiprocessors")), int32(o.Get("sharedMemoryPerBlock"))};
  }
  const dtx::AttentionPlan plan = dtx::attention_plan(attention_params(info[0]), state.force_simt, limits);
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", plan.path == dtx::kPathFlash ? "flash" : "rows");
  o.Set("splits", plan.splits);
  o.Set("stages", plan.stages);
  return o;
}

// flashShape(dtype, maps, dk, dv, keyMaps, stages): { sharedBytes, keysPerTile, threads } of the flash kernel's
// instantiation (sharedBytes 0: none). Needs no device; the emulation's Config must agree.
Napi::Value FlashShape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dtx::FlashShape shape =
      dtx::flash_shape(int32(info[0]), int32(info[1]), int32(info[2]), int32(info[3]), int32(info[4]), int32(info[5]));
  Napi::Object o = Napi::Object::New(env);
  o.Set("sharedBytes", static_cast<double>(shape.shared_bytes));
  o.Set("keysPerTile", shape.keys_per_tile);
  o.Set("threads", shape.threads);
  return o;
}

// setAttentionPath('auto' | 'simt'): lets checks compare the tensor-core kernel with the SIMT one.
Napi::Value SetAttentionPath(const Napi::CallbackInfo& info) {
  state.force_simt = info[0].As<Napi::String>().Utf8Value() == "simt";
  return info.Env().Undefined();
}

// ---- training: elementwise helpers, swiglu's backward, AdamW ----------------------------------------------

// exp(x, out, n, dtype)
Napi::Value Exp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "exp",
        dtx::elementwise_exp(pointer(info[0]), pointer(info[1]), integer(info[2]), int32(info[3]), state.stream));
  return env.Undefined();
}

// mul(a, b, out, n, dtype)
Napi::Value Mul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "mul",
        dtx::elementwise_mul(pointer(info[0]), pointer(info[1]), pointer(info[2]), integer(info[3]), int32(info[4]),
                             state.stream));
  return env.Undefined();
}

// scale(x, out, n, alpha, beta, dtype)
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "scale",
        dtx::elementwise_scale(pointer(info[0]), pointer(info[1]), integer(info[2]), real(info[3]), real(info[4]),
                               int32(info[5]), state.stream));
  return env.Undefined();
}

// swigluBackward(gate, up, dy, dGate, dUp, n, dtype)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "swigluBackward",
        dtx::swiglu_backward(pointer(info[0]), pointer(info[1]), pointer(info[2]), pointer(info[3]), pointer(info[4]),
                             integer(info[5]), int32(info[6]), state.stream));
  return env.Undefined();
}

// adamw(param, grad, m, v, n, dtype, [beta1, beta2, eps, gradScale, decay, stepSize, inverseCorrection2])
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  Napi::Float64Array a = info[6].As<Napi::Float64Array>();
  dtx::AdamWParams params{};
  params.beta1 = static_cast<float>(a[0]);
  params.beta2 = static_cast<float>(a[1]);
  params.eps = static_cast<float>(a[2]);
  params.grad_scale = static_cast<float>(a[3]);
  params.decay = static_cast<float>(a[4]);
  params.step_size = static_cast<float>(a[5]);
  params.inverse_correction2 = static_cast<float>(a[6]);
  check(env, "adamw",
        dtx::adamw(pointer(info[0]), pointer(info[1]), pointer<float>(info[2]), pointer<float>(info[3]),
                   integer(info[4]), params, int32(info[5]), state.stream));
  return env.Undefined();
}

// ---- training: reductions, the loss, embedding's backward --------------------------------------------------

// sumSquares(x, out, n, dtype)
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "sumSquares",
        dtx::sum_squares(pointer(info[0]), pointer<float>(info[1]), integer(info[2]), int32(info[3]), state.stream));
  return env.Undefined();
}

// rmsNormBackward(x, weight | 0, weightDtype, dy, dx, dWeight | 0, rows, width, eps, dtype)
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "rmsNormBackward",
        dtx::rms_norm_backward(pointer(info[0]), pointer(info[1]), int32(info[2]), pointer(info[3]), pointer(info[4]),
                               pointer(info[5]), integer(info[6]), int32(info[7]), real(info[8]), int32(info[9]),
                               state.stream));
  return env.Undefined();
}

// crossEntropy(logits, targets, loss, dLogits, rows, vocab, ignoreIndex, scale, dtype)
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "crossEntropy",
        dtx::cross_entropy(pointer(info[0]), pointer<int32_t>(info[1]), pointer<float>(info[2]), pointer(info[3]),
                           integer(info[4]), int32(info[5]), int32(info[6]), real(info[7]), int32(info[8]),
                           state.stream));
  return env.Undefined();
}

// embeddingBackward(ids, dy, out, count, width, vocab, dtype)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  check(env, "embeddingBackward",
        dtx::embedding_backward(pointer<int32_t>(info[0]), pointer(info[1]), pointer(info[2]), integer(info[3]),
                                int32(info[4]), int32(info[5]), int32(info[6]), state.stream));
  return env.Undefined();
}

// ---- training: attention backward ----------------------------------------------------------------------------

// attentionBackward(params): the forward's layout (attention_params), whose statistics slots [26] and [27] hold
// the saved log-sum-exp and map outputs, then [28] output [29] dOut [30] dq [31] dk [32] dv [33] dLambda
// [34] dNormWeight (see src/kernels/attention-training.ts).
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  begin(env);
  Napi::Float64Array a = info[0].As<Napi::Float64Array>();
  if (a.ElementLength() != 35) throw Napi::Error::New(env, "attentionBackward: expected 35 parameters");
  auto ptr = [&](size_t i) { return reinterpret_cast<void*>(static_cast<uintptr_t>(a[i])); };
  dtx::AttentionBackwardParams p{};
  p.forward = attention_params(a);
  p.log_sum_exp = p.forward.log_sum_exp;
  p.map_outputs = p.forward.map_outputs;
  p.forward.log_sum_exp = nullptr;  // read here, never written
  p.forward.map_outputs = nullptr;
  p.output = ptr(28);
  p.d_out = ptr(29);
  p.dq = ptr(30);
  p.dk = ptr(31);
  p.dv = ptr(32);
  p.d_lambda = ptr(33);
  p.d_norm_weight = ptr(34);
  check(env, p.forward.diff ? "diffAttentionBackward" : "attentionBackward", dtx::attention_backward(p, state.stream));
  return env.Undefined();
}

// attentionBackwardTile(dk, dv): keys per tile of the backward kernels for these widths; 0 = unsupported.
Napi::Value AttentionBackwardTile(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), dtx::attention_backward_tile(int32(info[0]), int32(info[1])));
}

Napi::Object Module(Napi::Env env, Napi::Object exports) {
  exports.Set("setAttentionPath", Napi::Function::New(env, SetAttentionPath));
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("zero", Napi::Function::New(env, Zero));
  exports.Set("upload", Napi::Function::New(env, Upload));
  exports.Set("copy2d", Napi::Function::New(env, Copy2D));
  exports.Set("read", Napi::Function::New(env, Read));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("memoryInfo", Napi::Function::New(env, MemoryInfo));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("add", Napi::Function::New(env, Add));
  exports.Set("swiglu", Napi::Function::New(env, Swiglu));
  exports.Set("sigmoid", Napi::Function::New(env, Sigmoid));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("rotary", Napi::Function::New(env, Rotary));
  exports.Set("embedding", Napi::Function::New(env, Embedding));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("argmax", Napi::Function::New(env, Argmax));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionPlan", Napi::Function::New(env, AttentionPlan));
  exports.Set("flashShape", Napi::Function::New(env, FlashShape));
  exports.Set("exp", Napi::Function::New(env, Exp));
  exports.Set("mul", Napi::Function::New(env, Mul));
  exports.Set("scale", Napi::Function::New(env, Scale));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward));
  exports.Set("adamw", Napi::Function::New(env, AdamW));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("rmsNormBackward", Napi::Function::New(env, RmsNormBackward));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy));
  exports.Set("embeddingBackward", Napi::Function::New(env, EmbeddingBackward));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
  exports.Set("attentionBackwardTile", Napi::Function::New(env, AttentionBackwardTile));
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  return exports;
}

}  // namespace

NODE_API_MODULE(diff_transformer_cuda, Module)
